/**
 * Queries on the webhook tables (`webhooks`, `webhook_events`, `webhook_deliveries`, and the
 * `notify_url` / `notify_secret` columns of `data_exports`), shared by the API, the export
 * transitions (db/exports.ts) and the delivery activities. The rules are in docs/webhooks.md.
 */
import type { Sql } from "./client.ts";
import {
  markOutboxStarted,
  type OutboxRow,
  type UnstartedOptions,
  unstartedOutboxRows,
} from "./outbox.ts";
import type { ExportStatus } from "./job_progress.ts";

/** The events a webhook can subscribe to: one per way an export ends. */
export const WEBHOOK_EVENT_TYPES = [
  "export.succeeded",
  "export.failed",
  "export.revoked",
  "export.expired",
] as const;

/** One of {@link WEBHOOK_EVENT_TYPES}. */
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/**
 * The event type of an end status: SUCCESS → `export.succeeded`, FAILURE → `export.failed`,
 * REVOKED → `export.revoked`, EXPIRED (the retention feature's status) → `export.expired`.
 */
export function endEventType(status: ExportStatus): WebhookEventType | undefined {
  const types: Record<string, WebhookEventType> = {
    SUCCESS: "export.succeeded",
    FAILURE: "export.failed",
    REVOKED: "export.revoked",
    EXPIRED: "export.expired",
  };
  return types[status];
}

/** A `webhooks` row (the secret is never read back by the API). */
export interface WebhookRow {
  id: number;
  project_id: number;
  user_id: number | null;
  url: string;
  events: WebhookEventType[];
  created_at: Date;
}

/** Creates a webhook of a project; returns the row (without its secret). */
export async function insertWebhook(
  sql: Sql,
  input: {
    projectId: number;
    userId: number;
    url: string;
    events: readonly WebhookEventType[];
    secret: string;
  },
): Promise<WebhookRow> {
  const [row] = await sql<WebhookRow[]>`
    insert into webhooks (project_id, user_id, url, events, secret)
    values (${input.projectId}, ${input.userId}, ${input.url}, ${input.events as string[]},
            ${input.secret})
    returning id, project_id, user_id, url, events, created_at`;
  return row;
}

/** The webhooks of a project, oldest first. */
export async function listWebhooks(sql: Sql, projectId: number): Promise<WebhookRow[]> {
  return await sql<WebhookRow[]>`
    select id, project_id, user_id, url, events, created_at from webhooks
    where project_id = ${projectId} order by id`;
}

/**
 * Deletes a webhook of a project; its pending events and their attempts go with it (a delivery
 * workflow that then finds no event ends quietly). False when the project has no such webhook.
 */
export async function deleteWebhook(sql: Sql, projectId: number, id: number): Promise<boolean> {
  const deleted = await sql`delete from webhooks where id = ${id} and project_id = ${projectId}`;
  return deleted.count > 0;
}

/** Records an export's `notify_url` and the secret that signs its events. */
export async function setExportNotify(
  sql: Sql,
  exportId: number,
  notify: { url: string; secret: string },
): Promise<void> {
  await sql`
    update data_exports set notify_url = ${notify.url}, notify_secret = ${notify.secret}
    where id = ${exportId}`;
}

/**
 * Writes the outbox rows of an export's end inside the transition's transaction `tx`: one event
 * per webhook of the export's project subscribed to the event type, and one for the export's
 * `notify_url` (every end event). Transactional outbox: the event exists if and only if the
 * transition committed (docs/webhooks.md, "Delivery"). Returns the new event ids.
 */
export async function insertEndEvents(
  tx: Sql,
  exportId: number,
  status: ExportStatus,
): Promise<string[]> {
  const type = endEventType(status);
  if (!type) return [];
  const rows = await tx<{ id: string }[]>`
    insert into webhook_events (export_id, webhook_id, type)
    select e.id, w.id, ${type}::text from data_exports e
    join webhooks w on w.project_id = e.project_id and ${type}::text = any(w.events)
    where e.id = ${exportId}
    union all
    select e.id, null::bigint, ${type}::text from data_exports e
    where e.id = ${exportId} and e.notify_url is not null
    returning id::text`;
  return rows.map((r) => r.id);
}

/** Events whose delivery workflow was never started: {@link unstartedOutboxRows} of `webhook_events`. */
export function unstartedEvents(sql: Sql, options: UnstartedOptions): Promise<OutboxRow[]> {
  return unstartedOutboxRows(sql, "webhook_events", options);
}

/** Notes that a row's delivery workflow runs: {@link markOutboxStarted} of `webhook_events`. */
export function markEventStarted(sql: Sql, eventId: string): Promise<void> {
  return markOutboxStarted(sql, "webhook_events", eventId);
}

/** What a delivery attempt needs: the event, where it goes and the secret that signs it. */
export interface EventTarget {
  id: string;
  export_id: number;
  type: WebhookEventType;
  created_at: Date;
  state: "pending" | "delivered" | "failed";
  payload: string | null;
  url: string | null;
  secret: string | null;
}

/** The event and its target, or undefined when the event is gone (its export or webhook was deleted). */
export async function findEventTarget(sql: Sql, eventId: string): Promise<EventTarget | undefined> {
  const [row] = await sql<EventTarget[]>`
    select v.id::text, v.export_id, v.type, v.created_at, v.state, v.payload,
      coalesce(w.url, e.notify_url) as url, coalesce(w.secret, e.notify_secret) as secret
    from webhook_events v
    join data_exports e on e.id = v.export_id
    left join webhooks w on w.id = v.webhook_id
    where v.id = ${eventId}`;
  return row;
}

/**
 * Stores the event's body unless one is stored already, and returns the stored one: every
 * attempt sends the same bytes (receivers deduplicate by `Webhook-Id` and may compare bodies).
 */
export async function freezePayload(sql: Sql, eventId: string, payload: string): Promise<string> {
  await sql`update webhook_events set payload = ${payload} where id = ${eventId} and payload is null`;
  const [row] = await sql<{ payload: string }[]>`
    select payload from webhook_events where id = ${eventId}`;
  return row?.payload ?? payload;
}

/** Records one attempt (an attempt run again after a crash overwrites its own row). */
export async function recordAttempt(
  sql: Sql,
  attempt: {
    eventId: string;
    attempt: number;
    statusCode: number | null;
    error: string | null;
    nextTryAt: Date | null;
  },
): Promise<void> {
  await sql`
    insert into webhook_deliveries (event_id, attempt, status_code, error, next_try_at)
    values (${attempt.eventId}, ${attempt.attempt}, ${attempt.statusCode}, ${attempt.error},
            ${attempt.nextTryAt})
    on conflict (event_id, attempt) do update set status_code = excluded.status_code,
      error = excluded.error, next_try_at = excluded.next_try_at, at = now()`;
}

/** Ends an event: `delivered` (a 2xx answer) or `failed` (no more attempts). */
export async function endEvent(
  sql: Sql,
  eventId: string,
  state: "delivered" | "failed",
): Promise<void> {
  await sql`
    update webhook_events set state = ${state}, ended_at = now()
    where id = ${eventId} and state = 'pending'`;
}

/** One event of an export with its attempts, for `GET /api/v2/exports/<id>/deliveries/`. */
export interface EventWithAttempts {
  id: string;
  type: WebhookEventType;
  webhook_id: number | null;
  url: string | null;
  state: "pending" | "delivered" | "failed";
  created_at: Date;
  ended_at: Date | null;
  attempts: {
    attempt: number;
    status_code: number | null;
    error: string | null;
    at: Date;
    next_try_at: Date | null;
  }[];
}

/** The events of an export, oldest first, each with its attempts in order. */
export async function listExportDeliveries(
  sql: Sql,
  exportId: number,
): Promise<EventWithAttempts[]> {
  const events = await sql<Omit<EventWithAttempts, "attempts">[]>`
    select v.id::text, v.type, v.webhook_id, coalesce(w.url, e.notify_url) as url, v.state,
      v.created_at, v.ended_at
    from webhook_events v
    join data_exports e on e.id = v.export_id
    left join webhooks w on w.id = v.webhook_id
    where v.export_id = ${exportId} order by v.created_at, v.id`;
  if (events.length === 0) return [];
  const attempts = await sql<(EventWithAttempts["attempts"][number] & { event_id: string })[]>`
    select event_id::text, attempt, status_code, error, at, next_try_at from webhook_deliveries
    where event_id = any(${events.map((e) => e.id)}::uuid[]) order by event_id, attempt`;
  return events.map((event) => ({
    ...event,
    attempts: attempts.filter((a) => a.event_id === event.id).map(({ event_id: _, ...a }) => a),
  }));
}
