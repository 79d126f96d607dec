/**
 * `awaitAdmission`: the first stage of an export (docs/fair-scheduling.md). It waits, PENDING,
 * until the export's turn comes under the running caps per user and per project
 * (`EXPORT_MAX_RUNNING_PER_USER`, `EXPORT_MAX_RUNNING_PER_PROJECT`), then admits it (PENDING →
 * STARTED, db/export_queue.ts). It polls the database about every second (with jitter, slower
 * for long queues), heartbeating its place, so a cancel or a delete reaches it within a
 * heartbeat and a dead worker is noticed within the heartbeat timeout. It runs on its own task
 * queue (`<queue>-admission`, many slots), so that waiting exports never hold a control slot.
 */
import { Context } from "@temporalio/activity";
import { admitExport } from "../db/export_queue.ts";
import type { ExportAccess } from "./export_access.ts";

/** Result of `awaitAdmission`. */
export type AdmissionResult =
  /** The export may run (or has ended meanwhile: the next stage reports that). */
  | { admitted: true }
  /** Still waiting after `maxWaitSeconds`: its 1-based position among `waiting` exports. */
  | { admitted: false; position: number; waiting: number };

/** Heartbeat details of `awaitAdmission`, as the Temporal UI shows them. */
export interface AdmissionHeartbeat {
  /** "waiting for a slot: position 3 of 12". */
  message: string;
  position: number;
  waiting: number;
}

/**
 * Milliseconds before the next poll: about a second, ±25 % jitter so that waiting exports do not
 * poll in lockstep, plus 10 ms per waiting export (at most 4 s), so a long queue does not cost the
 * database a planning per export per second.
 */
export function pollDelayMs(waiting: number, random: () => number = Math.random): number {
  return Math.round(1000 * (0.75 + random() * 0.5) + Math.min(4000, waiting * 10));
}

/** `awaitAdmission`. */
// deno-lint-ignore explicit-function-return-type
export function createAdmissionActivities(access: ExportAccess) {
  const { sql, config, requireExport, requireExporter, queryContext } = access;
  return {
    /**
     * Checks the export as `resolveExporter` does first (non-retryable `ExportNotFound`,
     * `UnknownFormat`, `InvalidFilters`), then waits until it is admitted, at most
     * `maxWaitSeconds` (default 120) per call: the workflow then shows the position
     * (`setCurrentDetails`) and calls again. Cancellable: the sleep between polls ends at once on
     * a cancel delivered by a heartbeat.
     */
    async awaitAdmission(
      input: { exportId: number; maxWaitSeconds?: number },
    ): Promise<AdmissionResult> {
      const ctx = Context.current();
      const { workflowExecution } = ctx.info;
      // what resolveExporter checks first, so that an export that cannot run (gone, unknown
      // format, capture set deleted) fails at once from PENDING and never takes a slot
      const row = await requireExport(input.exportId);
      requireExporter(row.format);
      await queryContext(row);
      const deadline = Date.now() + (input.maxWaitSeconds ?? 120) * 1000;
      while (true) {
        const outcome = await admitExport(sql, input.exportId, {
          caps: config.exportMaxRunning,
          runId: workflowExecution?.runId ?? null,
          workflowId: workflowExecution?.workflowId ?? null,
        });
        if (outcome.state !== "waiting") return { admitted: true };
        const { position, waiting } = outcome;
        const details: AdmissionHeartbeat = {
          message: `waiting for a slot: position ${position} of ${waiting}`,
          position,
          waiting,
        };
        ctx.heartbeat(details);
        if (Date.now() >= deadline) return { admitted: false, position, waiting };
        // rejects with a CancelledFailure when a cancel arrives
        await ctx.sleep(Math.min(pollDelayMs(waiting), Math.max(0, deadline - Date.now())));
      }
    },
  };
}
