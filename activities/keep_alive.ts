/**
 * What every long activity does while it works: heartbeat (so that a dead worker is noticed), and
 * describe an error for a job log line.
 */
import { Context } from "@temporalio/activity";

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
