-- Reuse only what would be produced again: the settings that shape an export's bytes (format
-- revision, TIME_ZONE, MEDIA_URL, PLATFORM_URL) as a digest, recorded by the worker that
-- produced the file (registry/settings_key.ts). Null for exports that never started and those
-- older than this migration, which are never reused once ended.
alter table data_exports add column settings_key text;
