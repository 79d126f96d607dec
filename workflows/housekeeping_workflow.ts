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
  /**
   * Running exports unchanged for less than this are not looked up (default
   * `LOST_EXPORT_GRACE_SECONDS`, activities/lost_exports.ts).
   */
  lostAfterSeconds?: number;
}

/**
 * Aborts orphaned uploads and removes files of deleted exports, then expires the SUCCESS
 * exports whose retention ended (file deleted, status EXPIRED: GBIF download `eraseAfter`,
 * docs/retention.md), then ends FAILURE the exports that look running but whose workflow is
 * gone (activities/lost_exports.ts); returns what it removed, `expiredExports` `[{id, key}]`
 * and `lostExports` (ids) included. A run that expired exports carries `ExportStatus` EXPIRED.
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
  // runs started before it completed here: only new runs end the exports whose workflow is gone
  if (!patched("lost-exports")) return { ...report, expiredExports: expiry.expired };
  const lost = await acts.failLostExports({ afterSeconds: input.lostAfterSeconds });
  return { ...report, expiredExports: expiry.expired, lostExports: lost.failed };
}
