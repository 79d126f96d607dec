-- Read-your-writes when an identical request reuses a running export (docs/replica.md): the
-- request position (`request_lsn`) the export's reads are fixed to. `awaitReplica` sets it to
-- `request_lsn` once the export read database has replayed that position, just before the
-- count reads; a reuse of an export that has not counted yet moves `request_lsn` up to its own
-- moment, which is only enough while the two differ (the reads have not begun). A retry moves
-- `request_lsn`, so a retried export is reusable again until its own wait has passed. Null: not
-- reached yet (and rows from before this migration).
alter table data_exports add column read_lsn pg_lsn;
