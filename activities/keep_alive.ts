/**
 * What every long activity does while it works: heartbeat (so that a dead worker is noticed), and
 * describe an error for a job log line.
 */
import { Context } from "@temporalio/activity";
import type { Sql } from "../db/client.ts";

/** An error's message, for a job log line. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Heartbeats every second while `work` runs, so that Temporal notices a dead worker within the
 * heartbeat timeout even during one long statement or upload; a live but slow call is not
 * mistaken for a dead one. `details` gives the heartbeat details to send (the checkpoint).
 */
export async function keepAlive<T>(work: () => Promise<T>, details?: () => unknown): Promise<T> {
  const ctx = Context.current();
  const timer = setInterval(() => ctx.heartbeat(details?.()), 1000);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/** Margin left between a statement's own timeout and its activity attempt's (ms). */
const STATEMENT_MARGIN_MS = 1000;

/**
 * Sets `statement_timeout` for the rest of transaction `tx` (`set local`) to what is left of
 * this activity attempt's start-to-close timeout, less a second: a statement still running when
 * Temporal gives the attempt up (and retries it, on this worker or another) is cancelled by
 * PostgreSQL itself (SQLSTATE 57014), so retries never pile up copies of one long COUNT on the
 * database. Call it first in the transaction, at the start of the activity. Outside an activity,
 * or without a start-to-close timeout, it sets nothing.
 */
export async function endStatementsWithAttempt(tx: Sql): Promise<void> {
  let timeoutMs: number;
  try {
    timeoutMs = Context.current().info.startToCloseTimeoutMs;
  } catch {
    return; // not in an activity
  }
  if (!(timeoutMs > 0)) return;
  const left = Math.max(1, Math.floor(timeoutMs - STATEMENT_MARGIN_MS));
  await tx`select set_config('statement_timeout', ${String(left)}, true)`;
}
