-- Source tables: a mirror of the monitoring platform's model (see DESIGN.md, "Data model").

create table users (
  id bigserial primary key,
  email text not null unique,
  name text not null default '',
  is_superuser boolean not null default false,
  created_at timestamptz not null default now()
);

create table api_tokens (
  id bigserial primary key,
  user_id bigint not null references users (id) on delete cascade,
  -- sha256 hex of the token; the token itself is never stored
  token_hash text not null unique,
  name text not null default '',
  created_at timestamptz not null default now(),
  revoked_at timestamptz
);

create table projects (
  id bigserial primary key,
  name text not null,
  slug text not null unique,
  description text not null default '',
  draft boolean not null default false,
  owner_id bigint references users (id) on delete set null,
  license text,
  default_score_threshold double precision,
  created_at timestamptz not null default now()
);

create table project_memberships (
  id bigserial primary key,
  project_id bigint not null references projects (id) on delete cascade,
  user_id bigint not null references users (id) on delete cascade,
  role text not null check (role in ('basic_member', 'researcher', 'ml_data_manager', 'project_manager')),
  unique (project_id, user_id)
);

create table deployments (
  id bigserial primary key,
  project_id bigint not null references projects (id) on delete cascade,
  name text not null,
  description text not null default '',
  latitude double precision,
  longitude double precision,
  country_code text
);
create index on deployments (project_id);

create table events (
  id bigserial primary key,
  project_id bigint not null references projects (id) on delete cascade,
  deployment_id bigint not null references deployments (id) on delete cascade,
  start timestamptz not null,
  "end" timestamptz not null
);
create index on events (deployment_id);
create index on events (project_id);

create table source_images (
  id bigserial primary key,
  project_id bigint not null references projects (id) on delete cascade,
  deployment_id bigint not null references deployments (id) on delete cascade,
  event_id bigint references events (id) on delete set null,
  path text not null,
  public_base_url text not null,
  timestamp timestamptz not null,
  width integer,
  height integer,
  size bigint
);
create index on source_images (event_id);
create index on source_images (deployment_id);

create table source_image_collections (
  id bigserial primary key,
  project_id bigint not null references projects (id) on delete cascade,
  name text not null,
  description text not null default ''
);
create index on source_image_collections (project_id);

create table source_image_collection_images (
  collection_id bigint not null references source_image_collections (id) on delete cascade,
  source_image_id bigint not null references source_images (id) on delete cascade,
  primary key (collection_id, source_image_id)
);
create index on source_image_collection_images (source_image_id);

create table taxa (
  id bigserial primary key,
  name text not null,
  rank text not null,
  parent_id bigint references taxa (id) on delete set null,
  -- ancestors from the root down: [{"id":…, "name":…, "rank":…}, …]
  parents jsonb not null default '[]',
  gbif_taxon_key bigint,
  common_name_en text
);
create index on taxa (parent_id);

create table algorithms (
  id bigserial primary key,
  name text not null,
  key text not null unique,
  version text not null default '1'
);

create table occurrences (
  id bigserial primary key,
  project_id bigint not null references projects (id) on delete cascade,
  deployment_id bigint references deployments (id) on delete set null,
  event_id bigint references events (id) on delete set null,
  determination_id bigint references taxa (id) on delete set null,
  determination_score double precision,
  created_at timestamptz not null default now()
);
create index on occurrences (project_id, id);
create index on occurrences (event_id);
create index on occurrences (deployment_id);
create index on occurrences (determination_id);

create table detections (
  id bigserial primary key,
  occurrence_id bigint references occurrences (id) on delete cascade,
  source_image_id bigint not null references source_images (id) on delete cascade,
  -- [x1, y1, x2, y2] in pixels; null when the detector produced no box
  bbox double precision[],
  timestamp timestamptz not null,
  path text
);
create index on detections (occurrence_id);
create index on detections (source_image_id);

create table classifications (
  id bigserial primary key,
  detection_id bigint not null references detections (id) on delete cascade,
  taxon_id bigint not null references taxa (id) on delete cascade,
  algorithm_id bigint not null references algorithms (id) on delete cascade,
  score double precision not null,
  terminal boolean not null default true,
  created_at timestamptz not null default now()
);
create index on classifications (detection_id);

create table identifications (
  id bigserial primary key,
  occurrence_id bigint not null references occurrences (id) on delete cascade,
  user_id bigint not null references users (id) on delete cascade,
  taxon_id bigint not null references taxa (id) on delete cascade,
  withdrawn boolean not null default false,
  agreed_with_identification_id bigint references identifications (id) on delete set null,
  agreed_with_prediction_id bigint references classifications (id) on delete set null,
  comment text not null default '',
  created_at timestamptz not null default now()
);
create index on identifications (occurrence_id);

-- Export tables

create table data_exports (
  id bigserial primary key,
  user_id bigint references users (id) on delete set null,
  project_id bigint not null references projects (id) on delete cascade,
  format text not null,
  filters jsonb not null default '{}',
  filters_display jsonb not null default '{}',
  status text not null default 'PENDING'
    check (status in ('PENDING', 'STARTED', 'SUCCESS', 'FAILURE', 'REVOKED')),
  error text,
  error_stage text,
  file_key text,
  record_count bigint not null default 0,
  file_size bigint not null default 0,
  checksum text,
  workflow_id text,
  run_id text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz
);
create index on data_exports (project_id, id);

create table jobs (
  id bigserial primary key,
  data_export_id bigint not null unique references data_exports (id) on delete cascade,
  job_type_key text not null default 'data_export',
  name text not null,
  status text not null default 'PENDING',
  -- {"summary": {"status", "progress"}, "stages": [{key, name, status, progress, params: [{key, name, value}]}]}
  progress jsonb not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz
);

create table job_logs (
  id bigserial primary key,
  job_id bigint not null references jobs (id) on delete cascade,
  level text not null default 'info',
  message text not null,
  created_at timestamptz not null default now()
);
create index on job_logs (job_id, id);
