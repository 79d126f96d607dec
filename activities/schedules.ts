/**
 * Activities of scheduled exports: create the run's export row (as the schedule's owner, through
 * the same checks as the API) and find the exports that `keep_last` no longer keeps.
 */
import { Context } from "@temporalio/activity";
import { ApplicationFailure } from "@temporalio/common";
import { type Client, ScheduleNotFoundError } from "@temporalio/client";
import { validateFilters } from "../domain/filter_validation.ts";
import { can, canRead } from "../domain/permissions.ts";
import { loadProjectAccess } from "../domain/project_access.ts";
import { findUserById } from "../domain/users.ts";
import { logEvent } from "../domain/log.ts";
import type { Config } from "../config/mod.ts";
import type { Sql } from "../db/client.ts";
import {
  deleteWorkflowId,
  type ExportIdentity,
  exportWorkflowId,
  insertExport,
} from "../db/exports.ts";
import { findSchedule, scheduleTemporalId } from "../db/schedules.ts";
import { getExporter } from "../registry/mod.ts";

/** What a scheduled run starts: the export and its workflow settings. */
export interface ScheduledRun {
  exportId: number;
  /** The id its export workflow must have (`exportWorkflowId`). */
  workflowId: string;
  heartbeatTimeoutSeconds: number;
  maxAttempts: number;
  keepLast: number | null;
}

/**
 * Deletes the Temporal Schedule `export-schedule-<scheduleId>` whose row is gone (its user or
 * project was deleted, and the row with it: `on delete cascade`), so that it stops starting runs
 * that nothing can stop through the API any more (it answers 404 for the row). An already
 * deleted Schedule is fine; without a client the run only says so.
 */
async function deleteOrphanedSchedule(
  temporal: Client | undefined,
  scheduleId: number,
): Promise<void> {
  const id = scheduleTemporalId(scheduleId);
  if (!temporal) {
    logEvent("export schedule row gone; Temporal Schedule kept", { schedule_id: id }, "warning");
    return;
  }
  try {
    await temporal.schedule.getHandle(id).delete();
    logEvent("export schedule row gone; Temporal Schedule deleted", { schedule_id: id });
  } catch (error) {
    if (!(error instanceof ScheduleNotFoundError)) throw error;
  }
}

/**
 * The core of `createScheduledExport`: creates the export of scheduled run `runId` (the run's
 * workflow id) of schedule `scheduleId`, or returns the one an earlier attempt of the same run
 * made: the row is inserted with its `schedule_id` and `schedule_run_id` in one statement
 * (`insertExport`), and `schedule_run_id` is unique, so a retry after a crash at any point, or
 * two attempts at once, yield one export. Returns null when the schedule no longer exists,
 * after deleting its Temporal Schedule ({@link deleteOrphanedSchedule}). Throws non-retryable `NotPermitted`, `UnknownFormat` or
 * `InvalidFilters` when the schedule's owner, format or filters no longer hold.
 */
export async function createScheduledRunExport(
  deps: { sql: Sql; config: Config; temporal?: Client },
  input: { scheduleId: number; runId: string },
): Promise<ScheduledRun | null> {
  const { sql, config, temporal } = deps;
  const { runId } = input;
  const schedule = await findSchedule(sql, input.scheduleId);
  if (!schedule) {
    await deleteOrphanedSchedule(temporal, input.scheduleId);
    return null;
  }
  const run = (export_: ExportIdentity): ScheduledRun => ({
    exportId: export_.id,
    workflowId: exportWorkflowId(export_),
    heartbeatTimeoutSeconds: config.heartbeatTimeoutSeconds,
    maxAttempts: config.exportMaxAttempts,
    keepLast: schedule.keep_last,
  });
  const [existing] = await sql<ExportIdentity[]>`
    select id, file_uuid::text from data_exports where schedule_run_id = ${runId}`;
  if (existing) return run(existing);

  const user = await findUserById(sql, schedule.user_id);
  const access = user && await loadProjectAccess(sql, user, schedule.project_id);
  if (!access || !canRead(access) || !can(access, "create")) {
    throw ApplicationFailure.nonRetryable(
      `the schedule's owner may no longer create exports in project ${schedule.project_id}`,
      "NotPermitted",
    );
  }
  const exporter = getExporter(schedule.format);
  if (!exporter) {
    throw ApplicationFailure.nonRetryable(
      `unknown export format: ${schedule.format}`,
      "UnknownFormat",
    );
  }
  const checked = await validateFilters(sql, exporter, schedule.project_id, schedule.filters);
  if (!checked.ok) throw ApplicationFailure.nonRetryable(checked.message, "InvalidFilters");
  try {
    // the run id in the INSERT itself: a retry after any crash finds this row (above)
    return run(
      await insertExport(sql, {
        userId: schedule.user_id,
        projectId: schedule.project_id,
        format: exporter.key,
        filters: checked.filters as Record<string, unknown>,
        filtersDisplay: checked.display,
        schedule: { scheduleId: schedule.id, runId },
      }),
    );
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "23505") {
      // an earlier attempt of this run, still running when this one started, inserted it
      const [inserted] = await sql<ExportIdentity[]>`
        select id, file_uuid::text from data_exports where schedule_run_id = ${runId}`;
      if (inserted) return run(inserted);
    }
    // the schedule was deleted meanwhile (foreign key): nothing was inserted
    if (code === "23503" && !(await findSchedule(sql, input.scheduleId))) return null;
    throw error;
  }
}

/**
 * Builds the schedule activities over the database, the configuration and (to delete a
 * Schedule whose row is gone) the Temporal client.
 */
// deno-lint-ignore explicit-function-return-type
export function createScheduleActivities(deps: { sql: Sql; config: Config; temporal?: Client }) {
  const { sql } = deps;
  return {
    /**
     * Creates the export of one scheduled run (idempotent per run: a retry finds the row it
     * made). Returns null when the schedule no longer exists, after deleting its Temporal
     * Schedule ({@link deleteOrphanedSchedule}).
     */
    async createScheduledExport(input: { scheduleId: number }): Promise<ScheduledRun | null> {
      const info = Context.current().info;
      const runId = info.workflowExecution?.workflowId ?? `activity-${info.activityId}`;
      return await createScheduledRunExport(deps, { scheduleId: input.scheduleId, runId });
    },

    /**
     * Finished exports of the schedule that `keepLast` no longer keeps, oldest first, with the
     * id their delete workflow must have (`deleteWorkflowId`): those that are neither among the
     * newest `keepLast` exports of the schedule nor among its newest `keepLast` SUCCESS ones. So
     * failed runs never push out the last good files (keep_last 1 and one failed run deleted
     * the only file), and at most `keepLast` files plus `keepLast` other runs are kept; the
     * rule of backup rotations, which count successful backups (docs/http-api.md).
     */
    async exportsBeyondKeepLast(
      input: { scheduleId: number; keepLast: number },
    ): Promise<{ exportId: number; deleteWorkflowId: string }[]> {
      const rows = await sql<ExportIdentity[]>`
        select id, file_uuid::text from data_exports
        where schedule_id = ${input.scheduleId} and status not in ('PENDING', 'STARTED')
          and id not in (
            select id from data_exports where schedule_id = ${input.scheduleId}
            order by id desc limit ${input.keepLast})
          and id not in (
            select id from data_exports
            where schedule_id = ${input.scheduleId} and status = 'SUCCESS'
            order by id desc limit ${input.keepLast})
        order by id`;
      return rows.map((r) => ({ exportId: r.id, deleteWorkflowId: deleteWorkflowId(r) }));
    },
  };
}

/** The schedule activities, as workflows see them. */
export type ScheduleActivities = ReturnType<typeof createScheduleActivities>;
