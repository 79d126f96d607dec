-- Read-your-writes for exports read from a replica (docs/replica.md): every export row records
-- the primary's WAL position when it was requested (`pg_current_wal_lsn()`, PostgreSQL docs,
-- "Backup Control Functions"), and the export waits until the replica it reads has replayed
-- that position. A column default, so that every way an export row is created (the API, a
-- rerun, a schedule, the CLI) records it in its own insert; a retry moves it (db/replica.ts).
-- Rows from before this migration have none and never wait.
alter table data_exports add column request_lsn pg_lsn;
alter table data_exports alter column request_lsn set default pg_current_wal_lsn();
