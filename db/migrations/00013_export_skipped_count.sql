-- Images (crops, frames) an image export left out, as listed in its skipped.csv (issue 19):
-- written by the streaming activity after each batch from its checkpointed state, so exact after
-- a resume; null for formats that fetch no images.
alter table data_exports add column skipped_count integer;
