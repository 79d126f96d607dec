/**
 * Exports whose workflow is gone. An export row says PENDING or STARTED only while its workflow
 * runs; when the workflow ends without recording an outcome (an operator terminated it in the
 * Temporal UI, its start was lost with the process that requested it, the namespace was reset),
 * nothing else would end the row: it would read as running for ever, be returned to every
 * identical request (`createOrReuseExport`), and hold one of its user's and its project's
 * running slots for ever (db/export_queue.ts), so that user's further exports would wait for
 * ever. {@link failIfWorkflowLost} ends such a row FAILURE, naming the workflow and its state;
 * the API calls it before reusing a running export and when one is read, and housekeeping
 * (`failLostExports`) for every export that has looked running for a while
 * (docs/operations.md, "Rules every read keeps").
 */
import { type Client, WorkflowNotFoundError } from "@temporalio/client";
import { Context } from "@temporalio/activity";
import type { Config } from "../config/mod.ts";
import type { Sql } from "../db/client.ts";
import { markExportEnded } from "../db/export_transitions.ts";
import { type ExportIdentity, exportWorkflowId, unchangedSeconds } from "../db/exports.ts";
import { logEvent } from "../domain/log.ts";
import { startExportEmails } from "./email_outbox.ts";
import { startExportDeliveries } from "./webhook_outbox.ts";
import type { ExportAccess } from "./export_access.ts";

/**
 * Seconds an export row may look running, unchanged, before its workflow is looked up: a request
 * creates the row, then starts the workflow (and a retry sets it PENDING, then starts a new run
 * while the closed one is still the latest), so a younger row may be one whose run is about to
 * start.
 */
export const LOST_EXPORT_GRACE_SECONDS = 120;

/**
 * Seconds an export row must be unchanged before a workflow that is not found at all counts as
 * lost: a scheduled export's row is created by an activity and its workflow started by the
 * scheduling workflow's next task, which a restarting workflows worker can delay for minutes.
 */
export const UNSTARTED_EXPORT_GRACE_SECONDS = 600;

/** Exports read per page of a housekeeping run (every page is looked up, the oldest first). */
const LOST_EXPORT_BATCH = 500;

/** What {@link failIfWorkflowLost} needs. */
export interface LostExportDependencies {
  sql: Sql;
  config: Config;
  temporal: Client;
}

/**
 * The state of the export's workflow (`data-export-<id>-<file_uuid>`, its latest run): null
 * while it runs, else its status name (`TERMINATED`, `COMPLETED`, …) or `not found` (never
 * started, or gone from Temporal's retention).
 */
export async function workflowGone(
  temporal: Client,
  export_: ExportIdentity,
): Promise<string | null> {
  try {
    const described = await temporal.workflow.getHandle(exportWorkflowId(export_)).describe();
    return described.status.name === "RUNNING" ? null : described.status.name;
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return "not found";
    throw error;
  }
}

/**
 * Ends `export_`, a PENDING or STARTED row unchanged for `unchangedSeconds` (at least
 * {@link LOST_EXPORT_GRACE_SECONDS}: the caller selects by it), FAILURE when its workflow is
 * not running (see {@link workflowGone}; one not found at all only after
 * {@link UNSTARTED_EXPORT_GRACE_SECONDS}); the error names the workflow and its state, the job
 * log says so, and the end's webhooks and email go out as for any failure. Returns true when it
 * ended the export; false when the workflow runs (or may yet start), when Temporal cannot be
 * asked now (logged: `export workflow not looked up`), or when the row was no longer PENDING or
 * STARTED.
 */
export async function failIfWorkflowLost(
  deps: LostExportDependencies,
  export_: ExportIdentity,
  unchangedSeconds: number,
): Promise<boolean> {
  let gone: string | null;
  try {
    gone = await workflowGone(deps.temporal, export_);
  } catch (error) {
    // Temporal cannot tell now (unreachable): the export is left as it is, the read goes on
    logEvent("export workflow not looked up", {
      export_id: export_.id,
      stage: "workflow",
      error: error instanceof Error ? error.message : String(error),
    });
    return false;
  }
  if (gone === null) return false;
  if (gone === "not found" && unchangedSeconds < UNSTARTED_EXPORT_GRACE_SECONDS) return false;
  const ended = await markExportEnded(deps.sql, export_.id, {
    status: "FAILURE",
    message: `its workflow ${exportWorkflowId(export_)} is ${gone}: the export ended ` +
      "without an outcome (terminated, or never started); request it again",
    stage: "workflow",
    email: deps.config.email.smtpUrl !== undefined, // docs/email.md
    onlyRunning: true,
  });
  if (!ended) return false;
  await startExportDeliveries(deps, export_.id); // docs/webhooks.md
  await startExportEmails(deps, export_.id); // docs/email.md
  return true;
}

/** `failLostExports`. */
// deno-lint-ignore explicit-function-return-type
export function createLostExportActivities(access: ExportAccess) {
  const { sql, config, temporal } = access;
  return {
    /**
     * Housekeeping: every export PENDING or STARTED, unchanged for `afterSeconds` (default
     * {@link LOST_EXPORT_GRACE_SECONDS}), whose workflow is not running is ended FAILURE
     * ({@link failIfWorkflowLost}), the oldest first, in pages of {@link LOST_EXPORT_BATCH}.
     * Returns the ids it ended. Idempotent. Without a Temporal client (tests of other
     * activities), looks nothing up.
     */
    async failLostExports(
      input: { afterSeconds?: number } = {},
    ): Promise<{ failed: number[] }> {
      if (!temporal) return { failed: [] };
      const ctx = Context.current();
      const after = input.afterSeconds ?? LOST_EXPORT_GRACE_SECONDS;
      const failed: number[] = [];
      let looked = 0;
      // every candidate, the oldest first, a page at a time: exports waiting their turn look
      // running and unchanged too, so a fixed first page could hide every lost one behind them
      // (updated_at as text, sent as text: a Date, which postgres.js makes of a timestamptz
      // parameter, would drop its microseconds and read the last row again)
      let cursor: { at: string; id: number } | null = null;
      for (;;) {
        const after_ = cursor === null
          ? sql``
          : sql`and (updated_at, id) > (${cursor.at}::text::timestamptz, ${cursor.id})`;
        const rows: (ExportIdentity & { unchanged: number; at: string })[] = await sql`
          select id, file_uuid::text, updated_at::text as at,
            ${unchangedSeconds(sql)} as unchanged
          from data_exports e
          where status in ('PENDING', 'STARTED')
            and ${unchangedSeconds(sql)} >= ${after} ${after_}
          order by updated_at, id limit ${LOST_EXPORT_BATCH}`;
        for (const row of rows) {
          ctx.heartbeat({ looked: looked++, failed: failed.length });
          const identity = { id: row.id, file_uuid: row.file_uuid };
          if (await failIfWorkflowLost({ sql, config, temporal }, identity, row.unchanged)) {
            failed.push(row.id);
          }
        }
        if (rows.length < LOST_EXPORT_BATCH) break;
        cursor = rows[rows.length - 1];
      }
      if (failed.length > 0) {
        console.log(JSON.stringify({ msg: "exports without a running workflow failed", failed }));
      }
      return { failed };
    },
  };
}
