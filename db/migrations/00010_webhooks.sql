-- Webhooks when an export ends (issue 20, part 1; docs/webhooks.md).
-- A project's subscriptions: the URL, the event types it wants and the HMAC secret that signs
-- its deliveries (kept in clear: signing needs it; shown to the caller once, at creation).
create table webhooks (
  id bigserial primary key,
  project_id bigint not null references projects (id) on delete cascade,
  user_id bigint references users (id) on delete set null,
  url text not null,
  events text[] not null,
  secret text not null,
  created_at timestamptz not null default now()
);
create index on webhooks (project_id, id);

-- An export's own notification address and the secret that signs what is sent there.
alter table data_exports add column notify_url text;
alter table data_exports add column notify_secret text;

-- The outbox: one row per (end of an export, matching webhook or notify_url), written in the
-- transaction of the transition; each row is delivered by workflow webhook-delivery-<id>.
-- webhook_id null: the export's notify_url. payload: the body, frozen at the first attempt.
create table webhook_events (
  id uuid primary key default gen_random_uuid(),
  export_id bigint not null references data_exports (id) on delete cascade,
  webhook_id bigint references webhooks (id) on delete cascade,
  type text not null,
  created_at timestamptz not null default now(),
  payload text,
  state text not null default 'pending' check (state in ('pending', 'delivered', 'failed')),
  workflow_started_at timestamptz,
  ended_at timestamptz
);
create index on webhook_events (export_id, created_at);
create index webhook_events_unstarted on webhook_events (created_at)
  where workflow_started_at is null;

-- Every attempt of a delivery: its status code or error and when the next one is due.
create table webhook_deliveries (
  id bigserial primary key,
  event_id uuid not null references webhook_events (id) on delete cascade,
  attempt integer not null,
  status_code integer,
  error text,
  at timestamptz not null default now(),
  next_try_at timestamptz,
  unique (event_id, attempt)
);
