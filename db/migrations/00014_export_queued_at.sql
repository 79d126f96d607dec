-- When the export last entered the admission queue (db/export_queue.ts): its request, or its
-- latest retry. A wait for a slot is measured from it (a retried export keeps its place in the
-- queue, by `created_at`, but its wait starts at the retry).
alter table data_exports add column queued_at timestamptz;
update data_exports set queued_at = created_at;
alter table data_exports alter column queued_at set default now(),
  alter column queued_at set not null;
