-- Issue 14: identical export requests reuse a SUCCESS export while the source data is unchanged.
-- "Unchanged" is exact: every committed write to a table that exports read moves a change marker
-- (a fresh value of one sequence) in the same transaction, and an export records the markers it
-- started from. Per project for the project's tables; row 0 for the global tables every
-- project's exports read (taxa, algorithms, users) and for TRUNCATE of any exported table.
create sequence export_source_version_seq;

create table export_source_versions (
  -- a project id, or 0: the global tables
  project_id bigint primary key,
  version bigint not null
);

insert into export_source_versions (project_id, version)
select id, nextval('export_source_version_seq') from projects
union all select 0, nextval('export_source_version_seq');

-- The markers an export started from (recorded by resolveExporter before it counts or reads a
-- row); null for exports older than this migration, which are never reused.
alter table data_exports
  add column source_version bigint,
  add column global_source_version bigint;
create index data_exports_reuse on data_exports (project_id, format) where status = 'SUCCESS';

-- Statement-level: one marker move per statement and project, however many rows it wrote.
-- tg_argv[0] is a query over CHANGED (the statement's transition rows) giving the project ids.
create function export_source_changed() returns trigger language plpgsql as $$
declare
  changed text := case tg_op
    when 'INSERT' then '(select * from new_rows)'
    when 'DELETE' then '(select * from old_rows)'
    else '(select * from new_rows union all select * from old_rows)' end;
begin
  execute format(
    'insert into export_source_versions (project_id, version)
     select p.project_id, nextval(''export_source_version_seq'')
     from (select distinct project_id from (%s) q where project_id is not null) p
     on conflict (project_id) do update set version = excluded.version',
    replace(tg_argv[0], 'CHANGED', changed));
  return null;
end $$;

create function export_source_truncated() returns trigger language plpgsql as $$
begin
  insert into export_source_versions (project_id, version)
  values (0, nextval('export_source_version_seq'))
  on conflict (project_id) do update set version = excluded.version;
  return null;
end $$;

-- Transition tables need one trigger per event.
create function ami_track_export_source(tab text, projects text) returns void
language plpgsql as $$
begin
  execute format('create trigger %I after insert on %I referencing new table as new_rows
    for each statement execute function export_source_changed(%L)',
    tab || '_source_insert', tab, projects);
  execute format('create trigger %I after update on %I
    referencing old table as old_rows new table as new_rows
    for each statement execute function export_source_changed(%L)',
    tab || '_source_update', tab, projects);
  execute format('create trigger %I after delete on %I referencing old table as old_rows
    for each statement execute function export_source_changed(%L)',
    tab || '_source_delete', tab, projects);
  execute format('create trigger %I after truncate on %I
    for each statement execute function export_source_truncated()',
    tab || '_source_truncate', tab);
end $$;

select ami_track_export_source('projects', 'select id as project_id from CHANGED c');
select ami_track_export_source(t, 'select project_id from CHANGED c')
from unnest(array['deployments', 'events', 'source_images', 'source_image_collections',
  'occurrences', 'project_default_include_taxa', 'project_default_exclude_taxa']) t;
select ami_track_export_source('source_image_collection_images',
  'select s.project_id from CHANGED c join source_image_collections s on s.id = c.collection_id');
select ami_track_export_source('detections',
  'select o.project_id from CHANGED c join occurrences o on o.id = c.occurrence_id
   union select s.project_id from CHANGED c join source_images s on s.id = c.source_image_id');
select ami_track_export_source('classifications',
  'select o.project_id from CHANGED c join detections d on d.id = c.detection_id
   join occurrences o on o.id = d.occurrence_id');
select ami_track_export_source('identifications',
  'select o.project_id from CHANGED c join occurrences o on o.id = c.occurrence_id');
select ami_track_export_source(t, 'select 0::bigint as project_id from CHANGED c')
from unnest(array['taxa', 'algorithms', 'users']) t;
