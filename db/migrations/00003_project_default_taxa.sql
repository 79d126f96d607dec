-- The project's default taxa filters, applied by exports with `apply_project_defaults` (with
-- `projects.default_score_threshold`). Include: when a project lists any, only occurrences
-- determined as one of them or a descendant pass. Exclude: those taxa and their descendants never
-- pass.
create table project_default_include_taxa (
  project_id bigint not null references projects (id) on delete cascade,
  taxon_id bigint not null references taxa (id) on delete cascade,
  primary key (project_id, taxon_id)
);

create table project_default_exclude_taxa (
  project_id bigint not null references projects (id) on delete cascade,
  taxon_id bigint not null references taxa (id) on delete cascade,
  primary key (project_id, taxon_id)
);
