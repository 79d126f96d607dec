-- Object keys unique to each export across databases and deployments that share one bucket or
-- directory: exports/<file_uuid>/<project slug>_export-<id>.<extension> (README, "Storage").
alter table data_exports add column file_uuid uuid not null default gen_random_uuid();
create unique index data_exports_file_uuid on data_exports (file_uuid);

-- What storage may still hold for an export whose row is gone (a crash between removing the
-- file and deleting the row, a row deleted by hand): the housekeeping sweep removes exactly
-- these objects and uploads, never anything it cannot find in this database.
create table deleted_export_files (
  file_uuid uuid primary key,
  export_id bigint not null,
  file_key text,
  upload_id text,
  deleted_at timestamptz not null default now()
);

create function record_deleted_export_file() returns trigger language plpgsql as $$
begin
  insert into deleted_export_files (file_uuid, export_id, file_key, upload_id)
  values (old.file_uuid, old.id, old.file_key, old.upload_id)
  on conflict (file_uuid) do nothing;
  return old;
end $$;

create trigger data_exports_record_deleted_file after delete on data_exports
  for each row execute function record_deleted_export_file();
