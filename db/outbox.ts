/**
 * What the two transactional outboxes share: `email_events` (db/emails.ts) and
 * `webhook_events` (db/webhooks.ts). A row is written in the transaction of the export's end;
 * its delivery workflow is started afterwards and noted in `workflow_started_at`, so a row
 * whose start was lost (the process died in between) is found again and started by the next
 * end of the same export or by housekeeping.
 */
import type { Sql } from "./client.ts";

/** A table of outbox rows: `id`, `export_id`, `created_at`, `workflow_started_at`. */
export type OutboxTable = "email_events" | "webhook_events";

/** Which unstarted rows {@link unstartedOutboxRows} returns. */
export interface UnstartedOptions {
  /** Only this export's rows. */
  exportId?: number;
  /** Only rows created at least this many seconds ago (the housekeeping sweep). */
  minAgeSeconds?: number;
  /** At most this many ids, the oldest first (default 1,000). */
  limit?: number;
}

/** An outbox row to start the delivery of: its id (uuid text), its export and its event type. */
export interface OutboxRow {
  id: string;
  exportId: number;
  /** `export.succeeded`, `export.failed`, … (db/webhooks.ts `endEventType`). */
  type: string;
}

/**
 * The rows of `table` whose delivery workflow was never started (or not recorded as started),
 * the oldest first.
 */
export async function unstartedOutboxRows(
  sql: Sql,
  table: OutboxTable,
  options: UnstartedOptions,
): Promise<OutboxRow[]> {
  const exportFilter = options.exportId === undefined
    ? sql``
    : sql`and export_id = ${options.exportId}`;
  const ageFilter = options.minAgeSeconds === undefined
    ? sql``
    : sql`and created_at <= now() - make_interval(secs => ${options.minAgeSeconds})`;
  return await sql<OutboxRow[]>`
    select id::text, export_id as "exportId", type from ${sql(table)}
    where workflow_started_at is null ${exportFilter} ${ageFilter}
    order by created_at limit ${options.limit ?? 1000}`;
}

/** Notes that a row's delivery workflow runs (started now, or found already started). */
export async function markOutboxStarted(sql: Sql, table: OutboxTable, id: string): Promise<void> {
  await sql`
    update ${sql(table)} set workflow_started_at = coalesce(workflow_started_at, now())
    where id = ${id}`;
}
