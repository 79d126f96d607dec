/**
 * The export activities, built by a factory over their dependencies (database, storage, config,
 * Temporal client) so that the worker and the tests pass the same real services. Each stage's
 * activities live in their own module; this factory puts them together under the names the
 * worker registers (and recorded histories name).
 */
import { createAdmissionActivities } from "./admission.ts";
import { createAwaitReplicaActivities } from "./await_replica.ts";
import { createDeleteExportActivities } from "./delete_export.ts";
import { createEmailActivities } from "./email.ts";
import { type ActivityDependencies, createExportAccess } from "./export_access.ts";
import { createExportOutcomeActivities } from "./export_outcome.ts";
import { createExportRecordsActivities } from "./export_records.ts";
import { createHousekeepingActivities } from "./housekeeping.ts";
import { createLostExportActivities } from "./lost_exports.ts";
import { createResolveAndCountActivities } from "./resolve_and_count.ts";
import { createRetentionActivities } from "./retention.ts";
import { createShardActivities } from "./shards.ts";

export type { ActivityDependencies } from "./export_access.ts";
export type { AdmissionResult } from "./admission.ts";
export { exportDownloadUrl, exportFileKey, exportsRoot, shardPrefix } from "./file_keys.ts";
export { MAX_SHARDS } from "./shards.ts";

// deno-lint-ignore explicit-function-return-type
export function createActivities(deps: ActivityDependencies) {
  const access = createExportAccess(deps);
  return {
    ...createAdmissionActivities(access),
    ...createResolveAndCountActivities(access),
    ...createAwaitReplicaActivities(access),
    ...createExportRecordsActivities(access),
    ...createShardActivities(access),
    ...createExportOutcomeActivities(access),
    ...createDeleteExportActivities(access),
    ...createHousekeepingActivities(access),
    ...createLostExportActivities(access),
    ...createRetentionActivities(access),
    ...createEmailActivities(access),
  };
}

/** The activity functions, as workflows see them. */
export type ExportActivities = ReturnType<typeof createActivities>;
