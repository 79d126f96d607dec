/** deleteExportWorkflow: stop the export's workflow, remove its file, delete its rows. */
import { proxyActivities, workflowInfo } from "@temporalio/workflow";
import type { ExportActivities } from "../activities/mod.ts";
import { controlTaskQueue } from "./task_queues.ts";

/** Deletes one export; every step is idempotent, so running it twice is harmless. */
export async function deleteExportWorkflow(input: { exportId: number }): Promise<void> {
  const acts = proxyActivities<ExportActivities>({
    taskQueue: controlTaskQueue(workflowInfo().taskQueue), // never behind long exports
    startToCloseTimeout: "5 minutes",
    heartbeatTimeout: "30 seconds",
    retry: { initialInterval: "1 second", maximumInterval: "30 seconds", maximumAttempts: 10 },
  });
  await acts.stopExportWorkflow(input);
  await acts.removeExportFile(input);
  await acts.deleteExportRows(input);
}
