-- Retention of export files, after GBIF's downloads (`eraseAfter`): a SUCCESS export expires at
-- `expires_at` (its finish + EXPORT_RETENTION_DAYS; null: kept forever), housekeeping then
-- deletes its file and marks it EXPIRED; the row, its request, counts and checksum stay
-- (docs/retention.md). Exports that succeeded before this migration have no expiry.
alter table data_exports add column expires_at timestamptz;

alter table data_exports drop constraint data_exports_status_check;
alter table data_exports add constraint data_exports_status_check
  check (status in ('PENDING', 'STARTED', 'SUCCESS', 'FAILURE', 'REVOKED', 'EXPIRED'));

-- what each housekeeping run looks for: SUCCESS exports whose expiry has passed
create index data_exports_expiring on data_exports (expires_at) where status = 'SUCCESS';
