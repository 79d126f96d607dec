/**
 * Queries on `email_events`, the outbox of the email a user gets when an export of theirs ends
 * (docs/email.md): written by the export transitions (db/export_transitions.ts), started by
 * activities/email_outbox.ts, sent by activities/email.ts.
 */
import type { Sql } from "./client.ts";
import {
  markOutboxStarted,
  type OutboxRow,
  type UnstartedOptions,
  unstartedOutboxRows,
} from "./outbox.ts";
import type { ExportStatus } from "./job_progress.ts";
import { endEventType, type WebhookEventType } from "./webhooks.ts";

/** The ends that send an email: SUCCESS, FAILURE and REVOKED (not EXPIRED). */
export const EMAIL_END_STATUSES: readonly ExportStatus[] = ["SUCCESS", "FAILURE", "REVOKED"];

/**
 * Writes the email of an export's end inside the transition's transaction `tx` (transactional
 * outbox, as db/webhooks.ts `insertEndEvents`): one row addressed to the export's user, none
 * when the export has no user (deleted) or the status sends no email. Returns the new ids.
 */
export async function insertEndEmail(
  tx: Sql,
  exportId: number,
  status: ExportStatus,
): Promise<string[]> {
  const type = endEventType(status);
  if (!type || !EMAIL_END_STATUSES.includes(status)) return [];
  const rows = await tx<{ id: string }[]>`
    insert into email_events (export_id, type, to_address)
    select e.id, ${type}::text, u.email from data_exports e
    join users u on u.id = e.user_id
    where e.id = ${exportId} and u.email <> ''
    returning id::text`;
  return rows.map((r) => r.id);
}

/** Emails whose delivery workflow was never started: {@link unstartedOutboxRows} of `email_events`. */
export function unstartedEmails(sql: Sql, options: UnstartedOptions): Promise<OutboxRow[]> {
  return unstartedOutboxRows(sql, "email_events", options);
}

/** Notes that a row's delivery workflow runs: {@link markOutboxStarted} of `email_events`. */
export function markEmailStarted(sql: Sql, emailId: string): Promise<void> {
  return markOutboxStarted(sql, "email_events", emailId);
}

/** An email to send, with what its text needs from the export and its project. */
export interface EmailEvent {
  id: string;
  export_id: number;
  type: WebhookEventType;
  to_address: string;
  created_at: Date;
  state: "pending" | "sent" | "failed";
  attempts: number;
  project_name: string;
  format: string;
  status: ExportStatus;
  record_count: number;
  file_size: number;
  checksum: string | null;
  error: string | null;
  error_stage: string | null;
  expires_at: Date | null;
}

/** The email and its export, or undefined when it is gone (its export was deleted). */
export async function findEmailEvent(sql: Sql, emailId: string): Promise<EmailEvent | undefined> {
  const [row] = await sql<EmailEvent[]>`
    select m.id::text, m.export_id, m.type, m.to_address, m.created_at, m.state, m.attempts,
      p.name as project_name, e.format, e.status, e.record_count,
      e.file_size, e.checksum, e.error, e.error_stage, e.expires_at
    from email_events m
    join data_exports e on e.id = m.export_id
    join projects p on p.id = e.project_id
    where m.id = ${emailId}`;
  return row;
}

/**
 * Counts one more send begun, before the SMTP conversation: the count says how many times the
 * message may have reached the server. Returns the new count.
 */
export async function beginEmailAttempt(sql: Sql, emailId: string): Promise<number> {
  const [row] = await sql<{ attempts: number }[]>`
    update email_events set attempts = attempts + 1, last_error = null
    where id = ${emailId} returning attempts`;
  return row?.attempts ?? 0;
}

/** Records why a send failed (the attempt stays counted). */
export async function recordEmailError(sql: Sql, emailId: string, error: string): Promise<void> {
  await sql`update email_events set last_error = ${error.slice(0, 1000)} where id = ${emailId}`;
}

/** Records that the SMTP server accepted the message: state `sent`. */
export async function markEmailSent(sql: Sql, emailId: string): Promise<void> {
  await sql`
    update email_events set state = 'sent', sent_at = now(), ended_at = now()
    where id = ${emailId} and state = 'pending'`;
}

/** Ends an email without sending it (refused, out of time, SMTP_URL unset): state `failed`. */
export async function markEmailFailed(sql: Sql, emailId: string, reason: string): Promise<void> {
  await sql`
    update email_events set state = 'failed', ended_at = now(),
      last_error = coalesce(${reason.slice(0, 1000)}, last_error)
    where id = ${emailId} and state = 'pending'`;
}
