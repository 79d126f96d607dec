-- Scheduled exports: one Temporal Schedule (id export-schedule-<id>) per row; each run creates a
-- normal export owned by the schedule's user, tagged with the schedule and the run's workflow id.
create table export_schedules (
  id bigserial primary key,
  user_id bigint not null references users (id) on delete cascade,
  project_id bigint not null references projects (id) on delete cascade,
  format text not null,
  filters jsonb not null default '{}',
  filters_display jsonb not null default '{}',
  cron text,
  interval_seconds integer check (interval_seconds > 0),
  timezone text not null default 'UTC',
  keep_last integer check (keep_last > 0),
  paused boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check ((cron is null) <> (interval_seconds is null))
);
create index on export_schedules (project_id, id);

alter table data_exports
  add column schedule_id bigint references export_schedules (id) on delete set null;
-- the scheduled run (workflow id) that created the export: a retried activity finds its export
alter table data_exports add column schedule_run_id text unique;
create index on data_exports (schedule_id, id);
