/** housekeepingWorkflow: one storage sweep, run by the `export-housekeeping` Schedule. */
import { proxyActivities, workflowInfo } from "@temporalio/workflow";
import type { ExportActivities } from "../activities/mod.ts";
import type { HousekeepingReport } from "../activities/types.ts";
import { controlTaskQueue } from "./task_queues.ts";

/** Input of {@link housekeepingWorkflow}. */
export interface HousekeepingInput {
  /** Incomplete uploads younger than this are left alone (default one hour). */
  minAgeSeconds?: number;
}

/** Aborts orphaned uploads and removes files of deleted exports; returns what it removed. */
export async function housekeepingWorkflow(
  input: HousekeepingInput = {},
): Promise<HousekeepingReport> {
  const acts = proxyActivities<ExportActivities>({
    taskQueue: controlTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: "30 minutes",
    heartbeatTimeout: "1 minute",
    retry: { initialInterval: "5 seconds", maximumInterval: "1 minute", maximumAttempts: 5 },
  });
  return await acts.sweepOrphans({ minAgeSeconds: input.minAgeSeconds });
}
