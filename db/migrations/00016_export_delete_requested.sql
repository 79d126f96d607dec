-- When the delete workflow began deleting the export (its first step, under the row lock):
-- identical-request reuse never hands out an export being deleted (db/exports.ts,
-- `createOrReuseExport`). Null: not being deleted.
alter table data_exports add column delete_requested_at timestamptz;
