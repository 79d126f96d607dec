-- The upload currently in progress for an export, so that a retried or cancelled export can
-- abort it even when no heartbeat checkpoint was ever delivered (nothing is left behind).
alter table data_exports add column upload_id text;
-- The stage that was running when the export failed, and how many times it resumed.
alter table data_exports add column resumed_count integer not null default 0;
