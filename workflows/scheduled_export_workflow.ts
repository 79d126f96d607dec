/**
 * scheduledExportWorkflow: what the Temporal Schedule `export-schedule-<id>` starts each time. It
 * creates a normal export (owned by the schedule's user), runs `exportWorkflow` as a child with
 * the usual id `data-export-<exportId>-<file_uuid>`, then deletes the schedule's exports beyond `keep_last`
 * through `deleteExportWorkflow` children.
 */
import {
  ApplicationFailure,
  executeChild,
  ParentClosePolicy,
  proxyActivities,
  workflowInfo,
} from "@temporalio/workflow";
import type { ScheduleActivities } from "../activities/schedules.ts";
import type { deleteExportWorkflow } from "./delete_export_workflow.ts";
import type { exportWorkflow } from "./export_workflow.ts";
import { controlTaskQueue } from "./task_queues.ts";

/** Input of {@link scheduledExportWorkflow}. */
export interface ScheduledExportInput {
  scheduleId: number;
}

/** Result of one scheduled run. */
export interface ScheduledExportResult {
  exportId: number | null;
  pruned: number[];
}

/** One run of an export schedule. */
export async function scheduledExportWorkflow(
  input: ScheduledExportInput,
): Promise<ScheduledExportResult> {
  const acts = proxyActivities<ScheduleActivities>({
    taskQueue: controlTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: "1 minute",
    retry: {
      initialInterval: "1 second",
      maximumInterval: "30 seconds",
      maximumAttempts: 10,
      nonRetryableErrorTypes: ["NotPermitted", "UnknownFormat", "InvalidFilters"],
    },
  });
  const run = await acts.createScheduledExport({ scheduleId: input.scheduleId });
  if (!run) return { exportId: null, pruned: [] };

  let failure: unknown;
  try {
    await executeChild<typeof exportWorkflow>("exportWorkflow", {
      workflowId: run.workflowId,
      args: [{
        exportId: run.exportId,
        heartbeatTimeoutSeconds: run.heartbeatTimeoutSeconds,
        maxAttempts: run.maxAttempts,
      }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
    });
  } catch (error) {
    failure = error;
  }

  const pruned: number[] = [];
  if (run.keepLast !== null) {
    const stale = await acts.exportsBeyondKeepLast({
      scheduleId: input.scheduleId,
      keepLast: run.keepLast,
    });
    for (const { exportId, deleteWorkflowId } of stale) {
      await executeChild<typeof deleteExportWorkflow>("deleteExportWorkflow", {
        workflowId: deleteWorkflowId,
        args: [{ exportId }],
        workflowIdReusePolicy: "ALLOW_DUPLICATE",
      });
      pruned.push(exportId);
    }
  }
  if (failure) {
    throw ApplicationFailure.nonRetryable(
      `scheduled export ${run.exportId} failed: ${(failure as Error).message}`,
      "ScheduledExportFailed",
    );
  }
  return { exportId: run.exportId, pruned };
}
