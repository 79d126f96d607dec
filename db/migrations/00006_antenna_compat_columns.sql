-- What the original platform's occurrence objects carry (antenna-compat README §7), plus the
-- station time zone that every local timestamp of the original's formats uses (§2).

-- An IANA zone name ('America/New_York', 'UTC'), as the server's zone database knows it.
-- Abbreviations ('EST') and POSIX strings ('UTC+5') are refused: they carry no DST rules.
create function ami_is_iana_time_zone(zone text) returns boolean
language sql stable
as $$
  select zone ~ '^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$'
    and exists (select 1 from pg_timezone_names where name = zone)
$$;

alter table deployments add column time_zone text
  constraint deployments_time_zone_iana check (time_zone is null or ami_is_iana_time_zone(time_zone));

alter table occurrences add column updated_at timestamptz not null default now();
update occurrences set updated_at = created_at;

alter table users add column image text;

alter table taxa
  add column fieldguide_id text,
  add column inat_taxon_id bigint,
  add column cover_image_url text,
  add column cover_image_credit text;

alter table algorithms
  add column description text not null default '',
  add column uri text,
  add column version_number integer not null default 1,
  add column task_type text,
  add column category_map_id bigint,
  add column created_at timestamptz not null default now(),
  add column updated_at timestamptz not null default now();

alter table classifications
  add column applied_to_id bigint references classifications (id) on delete set null;
