/** housekeepingWorkflow: one storage sweep, run by the `export-housekeeping` Schedule. */
import {
  patched,
  proxyActivities,
  upsertSearchAttributes,
  workflowInfo,
} from "@temporalio/workflow";
import type { ExportActivities } from "../activities/mod.ts";
import type { HousekeepingReport } from "../activities/types.ts";
import { EXPIRED_STATUS, EXPORT_STATUS } from "./search_attributes.ts";
import { controlTaskQueue } from "./task_queues.ts";

/** Input of {@link housekeepingWorkflow}. */
export interface HousekeepingInput {
  /** Incomplete uploads younger than this are left alone (default one hour). */
  minAgeSeconds?: number;
}

/**
 * Aborts orphaned uploads and removes files of deleted exports, then expires the SUCCESS
 * exports whose retention ended (file deleted, status EXPIRED: GBIF download `eraseAfter`,
 * docs/retention.md); returns what it removed, `expiredExports` `[{id, key}]` included. A run
 * that expired exports carries `ExportStatus` EXPIRED.
 */
export async function housekeepingWorkflow(
  input: HousekeepingInput = {},
): Promise<HousekeepingReport> {
  const acts = proxyActivities<ExportActivities>({
    taskQueue: controlTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: "30 minutes",
    heartbeatTimeout: "1 minute",
    retry: { initialInterval: "5 seconds", maximumInterval: "1 minute", maximumAttempts: 5 },
  });
  const report = await acts.sweepOrphans({ minAgeSeconds: input.minAgeSeconds });
  // runs started before retention existed completed after the sweep: only new runs expire
  if (!patched("export-retention")) return report;
  const expiry = await acts.expireExports();
  // find the runs that expired exports: `ExportStatus = "EXPIRED"` (the exports' own workflows
  // have closed; their search attributes can no longer change)
  if (expiry.expired.length > 0) {
    upsertSearchAttributes([{ key: EXPORT_STATUS, value: EXPIRED_STATUS }]);
  }
  return { ...report, expiredExports: expiry.expired };
}
