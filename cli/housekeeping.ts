/**
 * The `export-housekeeping` Temporal Schedule: every N minutes a `housekeepingWorkflow` sweeps
 * storage for orphaned multipart uploads and files of deleted exports, and expires the SUCCESS
 * exports whose retention ended (file deleted, status EXPIRED; docs/retention.md).
 */
import { type Client, ScheduleAlreadyRunning } from "@temporalio/client";
import type { HousekeepingReport } from "../activities/types.ts";
import type {
  HousekeepingInput,
  housekeepingWorkflow,
} from "../workflows/housekeeping_workflow.ts";

/** The schedule id operators see in the Temporal UI (`temporal schedule describe`). */
export const HOUSEKEEPING_SCHEDULE_ID = "export-housekeeping";

/**
 * Creates the housekeeping schedule unless it exists (idempotent: safe from every worker at
 * start). Returns "created" or "exists".
 */
export async function ensureHousekeepingSchedule(
  client: Client,
  options: {
    taskQueue: string;
    everyMinutes: number;
    scheduleId?: string;
    minAgeSeconds?: number;
  },
): Promise<"created" | "exists"> {
  const scheduleId = options.scheduleId ?? HOUSEKEEPING_SCHEDULE_ID;
  const args: [HousekeepingInput] = [{ minAgeSeconds: options.minAgeSeconds }];
  try {
    await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: options.everyMinutes * 60_000 }] },
      action: {
        type: "startWorkflow",
        workflowType: "housekeepingWorkflow",
        workflowId: `${scheduleId}-run`,
        taskQueue: options.taskQueue,
        args,
      },
      policies: { overlap: "SKIP", catchupWindow: 60_000 },
    });
    return "created";
  } catch (error) {
    if (error instanceof ScheduleAlreadyRunning) return "exists";
    throw error;
  }
}

/** Runs one sweep now (as a workflow on `taskQueue`) and returns its report. */
export async function runHousekeeping(
  client: Client,
  options: { taskQueue: string; minAgeSeconds?: number; lostAfterSeconds?: number },
): Promise<HousekeepingReport> {
  return await client.workflow.execute<typeof housekeepingWorkflow>("housekeepingWorkflow", {
    taskQueue: options.taskQueue,
    workflowId: `export-housekeeping-manual-${Date.now()}`,
    args: [{ minAgeSeconds: options.minAgeSeconds, lostAfterSeconds: options.lostAfterSeconds }],
  });
}
