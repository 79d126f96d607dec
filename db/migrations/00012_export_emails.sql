-- An email to the requesting user when an export ends (issue 20, part 2; docs/email.md).
-- The outbox of the email: one row per end of an export (SUCCESS, FAILURE, REVOKED), written in
-- the transaction of the transition when SMTP_URL is set, delivered by workflow
-- export-email-<id>. to_address: the user's email at the end (a later change does not move it).
-- attempts: SMTP sends begun; sent_at: when the server accepted it (state 'sent').
create table email_events (
  id uuid primary key default gen_random_uuid(),
  export_id bigint not null references data_exports (id) on delete cascade,
  type text not null,
  to_address text not null,
  created_at timestamptz not null default now(),
  state text not null default 'pending' check (state in ('pending', 'sent', 'failed')),
  workflow_started_at timestamptz,
  attempts integer not null default 0,
  last_error text,
  sent_at timestamptz,
  ended_at timestamptz
);
create index on email_events (export_id, created_at);
create index email_events_unstarted on email_events (created_at)
  where workflow_started_at is null;
