/**
 * exportWorkflow: awaitAdmission (a slot under the running caps: docs/fair-scheduling.md) →
 * resolveExporter → countRecords → exportRecords → finishUpload → saveStats;
 * above `EXPORT_SHARD_RECORDS` records: resolveExporter → countRecords → planShards →
 * exportShard × N in parallel → composeShards → saveStats. Between resolveExporter and
 * countRecords, awaitReplica waits until the export read database has replayed the request
 * (docs/replica.md; returns at once with one database; the export holds its slot meanwhile).
 * Deterministic: imports only `@temporalio/workflow` and types; all I/O is in activities.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  isCancellation,
  patched,
  proxyActivities,
  type RetryPolicy,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from "@temporalio/workflow";
import type { ExportActivities } from "../activities/mod.ts";
import type { ExportedShard, ResolvedExport, ShardPlan, ShardSpec } from "../activities/types.ts";
import {
  EXPORT_FORMAT,
  EXPORT_ID,
  EXPORT_STATUS,
  PROJECT_ID,
  REQUESTED_BY,
} from "./search_attributes.ts";
import { admissionTaskQueue, controlTaskQueue } from "./task_queues.ts";

/** Input of {@link exportWorkflow}. */
export interface ExportWorkflowInput {
  exportId: number;
  /** How long a silent `exportRecords` attempt may go before Temporal retries it elsewhere. */
  heartbeatTimeoutSeconds?: number;
  /** Attempts of each activity before the export fails (`EXPORT_MAX_ATTEMPTS`, default 10). */
  maxAttempts?: number;
}

/**
 * Result of a successful export, or of one whose row was deleted while it ran, or cancelled
 * without the cancel reaching this run.
 */
export interface ExportWorkflowResult {
  exportId: number;
  /** True when the export row was deleted mid-way: the workflow stopped and cleaned up. */
  deleted?: boolean;
  /**
   * True when the run found its export REVOKED (the API's cancel found no open run while this
   * one was starting; a reset of a cancelled export): the run stopped, removed what was left
   * under the export's folder and completed, as the row reads, instead of failing.
   */
  revoked?: boolean;
  records: number;
  fileSize: number;
  checksum: string;
  fileKey: string;
}

/** What `progressQuery` answers. */
export interface ExportProgress {
  exportId: number;
  stage: string;
  totalRecords: number | null;
  records: number | null;
  /** A sharded export: shards planned and shards exported so far (absent when unsharded). */
  shards?: { total: number; done: number };
  /**
   * While it waits for a slot (stage `resolve_exporter`, before the export is STARTED): its
   * 1-based place in the queue, from the last `awaitAdmission` call that returned still waiting.
   */
  queuePosition?: number;
}

/** Query: the stage the workflow is in and the totals it knows. */
export const progressQuery = defineQuery<ExportProgress>("progress");

/** Error types that fail the export at once instead of retrying (see activities/failures.ts). */
const NON_RETRYABLE_ERRORS = [
  "ExportNotFound",
  "ExportEnded",
  "UnknownFormat",
  "InvalidFilters",
  "ProjectNotFound",
  // a key storage could never accept (storage/errors.ts): retrying cannot help
  "InvalidKeyError",
  "KeyOutOfBoundsError",
];

/** Transient errors retry with exponential backoff: 1 s, 2 s, 4 s … 30 s, at most 10 times. */
const defaultRetry: RetryPolicy = {
  initialInterval: "1 second",
  backoffCoefficient: 2,
  maximumInterval: "30 seconds",
  maximumAttempts: 10,
  nonRetryableErrorTypes: NON_RETRYABLE_ERRORS,
};

/** Runs one export; on failure or cancel it marks the export and cleans up before ending. */
export async function exportWorkflow(input: ExportWorkflowInput): Promise<ExportWorkflowResult> {
  // Every activity heartbeats (a background beat while it works), so a dead worker is noticed
  // within the heartbeat timeout; scheduleToClose bounds the total time spent retrying.
  const heartbeatTimeout = (input.heartbeatTimeoutSeconds ?? 20) * 1000;
  const retry: RetryPolicy = { ...defaultRetry, maximumAttempts: input.maxAttempts ?? 10 };
  // Control activities run on their own queue (never behind exportRecords for a slot).
  const control = controlTaskQueue(workflowInfo().taskQueue);
  const short = proxyActivities<ExportActivities>({
    taskQueue: control,
    startToCloseTimeout: "2 minutes",
    scheduleToCloseTimeout: "10 minutes",
    heartbeatTimeout,
    retry,
  });
  const streaming = proxyActivities<ExportActivities>({
    startToCloseTimeout: "12 hours",
    heartbeatTimeout,
    retry,
  });
  // The count and the shard plan read the whole export once (a COUNT, the shard bounds): at
  // millions of rows on a busy database, longer than a short activity's 2 minutes, and a retry
  // would only start the same statement again. Heartbeats notice a dead worker; the statements
  // end with their attempt (activities/keep_alive.ts, endStatementsWithAttempt).
  const counting = proxyActivities<ExportActivities>({
    taskQueue: control,
    startToCloseTimeout: "1 hour",
    scheduleToCloseTimeout: "4 hours",
    heartbeatTimeout,
    retry,
  });
  // Cleanup heartbeats too: a worker killed mid-cleanup is noticed within the heartbeat
  // timeout, not after the 2-minute start-to-close timeout.
  const cleanup = proxyActivities<ExportActivities>({
    taskQueue: control,
    startToCloseTimeout: "2 minutes",
    scheduleToCloseTimeout: "30 minutes",
    heartbeatTimeout,
    retry: { ...retry, maximumAttempts: 20 },
  });
  // The replica wait is bounded by EXPORT_REPLICA_MAX_LAG_SECONDS inside the activity (up to a
  // day); heartbeats notice a dead worker, and a retry keeps the first attempt's start.
  const replica = proxyActivities<ExportActivities>({
    taskQueue: control,
    startToCloseTimeout: "25 hours",
    heartbeatTimeout,
    retry,
  });
  // Waiting for a slot: as long as it takes (retried without limit on transient errors, never
  // failed for waiting); each call returns after at most 2 minutes with the position.
  const admission = proxyActivities<ExportActivities>({
    taskQueue: admissionTaskQueue(workflowInfo().taskQueue),
    startToCloseTimeout: "5 minutes",
    heartbeatTimeout,
    // no maximumAttempts: unlimited
    retry: {
      initialInterval: defaultRetry.initialInterval,
      backoffCoefficient: defaultRetry.backoffCoefficient,
      maximumInterval: defaultRetry.maximumInterval,
      nonRetryableErrorTypes: NON_RETRYABLE_ERRORS,
    },
  });
  // Shards: on cancel, wait until each shard activity has stopped, so the cleanup that follows
  // finds every shard upload it could leave.
  const sharding = proxyActivities<ExportActivities>({
    startToCloseTimeout: "12 hours",
    heartbeatTimeout,
    retry,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  });

  const state: ExportProgress = {
    exportId: input.exportId,
    stage: "resolve_exporter",
    totalRecords: null,
    records: null,
  };
  setHandler(progressQuery, () => state);
  // Search attributes (workflows/search_attributes.ts) are upserted by runs started after they
  // were introduced; runs already in flight replay without them.
  const searchable = patched("export-search-attributes");
  const markStatus = (status: string) => {
    setCurrentDetails(`**${status}** · stage ${state.stage}`);
    if (searchable) upsertSearchAttributes([{ key: EXPORT_STATUS, value: status }]);
  };
  const describe = (resolved: ResolvedExport) => {
    if (!searchable) return;
    upsertSearchAttributes([
      { key: EXPORT_ID, value: input.exportId },
      { key: PROJECT_ID, value: resolved.projectId },
      { key: EXPORT_FORMAT, value: resolved.format },
      { key: REQUESTED_BY, value: resolved.requestedBy },
      { key: EXPORT_STATUS, value: "STARTED" },
    ]);
  };

  /**
   * Runs every shard as its own activity, all at once (any worker takes them), but a shard that
   * reads what others left (`reads`: lower indices) once they ended. When one fails for good,
   * the others are cancelled and awaited before the error propagates.
   */
  async function runShards(shards: ShardSpec[]): Promise<ExportedShard[]> {
    state.shards = { total: shards.length, done: 0 };
    const scope = new CancellationScope();
    const running: Promise<ExportedShard>[] = [];
    try {
      return await scope.run(() => {
        for (const shard of shards) {
          const before = (shard.reads ?? []).map((k) => running[k]);
          const started = before.length === 0
            ? sharding.exportShard({ exportId: input.exportId, shard })
            : Promise.all(before).then(() =>
              sharding.exportShard({ exportId: input.exportId, shard })
            );
          running.push(started.then((done) => {
            state.shards!.done++;
            return done;
          }));
        }
        return Promise.all(running);
      });
    } catch (error) {
      scope.cancel();
      await Promise.allSettled(running);
      throw error;
    }
  }

  /**
   * Waits until the export is admitted under the running caps, showing its place in the queue
   * (progress query, Temporal UI current details; the live position is in the activity's
   * heartbeat details).
   */
  async function awaitSlot(): Promise<void> {
    // the stage stays resolve_exporter (what a failure or a cancel while waiting names)
    setCurrentDetails("**PENDING** · waiting for a slot");
    while (true) {
      const turn = await admission.awaitAdmission({ exportId: input.exportId });
      if (turn.admitted) break;
      state.queuePosition = turn.position;
      setCurrentDetails(
        `**PENDING** · waiting for a slot: position ${turn.position} of ${turn.waiting}`,
      );
    }
    delete state.queuePosition;
    setCurrentDetails("**STARTED** · admitted");
  }

  /**
   * `saveStats`: once called, awaited whatever a cancel says (it is short), so that a cancel
   * arriving while it commits ends the run as the row ends: SUCCESS with its file, the cancel
   * too late (before, the run took the cancel at once and its cleanup removed the file under a
   * SUCCESS row). Runs started before replay with the cancellable call.
   */
  const saveStats = (stats: Parameters<ExportActivities["saveStats"]>[0]): Promise<void> =>
    patched("save-stats-uncancelled")
      ? CancellationScope.nonCancellable(() => short.saveStats(stats))
      : short.saveStats(stats);

  let upload: { key: string; uploadId: string } | undefined;
  let plan: ShardPlan | undefined;
  let fileKey: string | undefined;
  try {
    // Runs started before fair admission replay without it.
    if (patched("fair-admission")) await awaitSlot();
    const resolved = await short.resolveExporter({ exportId: input.exportId });
    describe(resolved);
    fileKey = resolved.fileKey;
    // Runs started before exports could read from a replica replay without awaitReplica.
    if (patched("export-replica-wait")) {
      state.stage = "await_replica";
      await replica.awaitReplica({ exportId: input.exportId });
    }
    state.stage = "count_records";
    // Runs started before counts could take an hour replay with the short timeouts.
    const reads = patched("long-counts") ? counting : short;
    state.totalRecords = await reads.countRecords({ exportId: input.exportId });
    // Runs started before sharding existed replay without planShards.
    if (patched("export-shards")) {
      plan = await reads.planShards({
        exportId: input.exportId,
        fileKey: resolved.fileKey,
        totalRecords: state.totalRecords,
      });
    }
    state.stage = "data_export";
    let composed: { shards: ExportedShard[]; file: { size: number; checksum: string } } | null =
      null;
    if (plan && plan.shards.length > 1) {
      const sharded = plan;
      const runAndCompose = async () => {
        const shards = await runShards(sharded.shards);
        state.records = shards.reduce((n, s) => n + s.records, 0);
        state.stage = "uploading_snapshot";
        const file = await streaming.composeShards({
          exportId: input.exportId,
          fileKey: resolved.fileKey,
          contentType: resolved.contentType,
          prefix: sharded.prefix,
          shards,
        });
        return { shards, file };
      };
      // Runs started before a file whose shards refer to each other fell back to one snapshot
      // replay without the fallback.
      if (patched("shards-one-moment")) {
        try {
          composed = await runAndCompose();
        } catch (error) {
          if (failureType(error) !== "ShardSnapshotChanged") throw error;
          // the data changed since the count (seen by a shard or by the composition): the
          // parts would not refer to each other; the file is exported unsharded below, from one
          // snapshot
          await cleanup.discardShards({ prefix: sharded.prefix });
          state.shards = undefined;
          state.records = null;
          state.stage = "data_export";
          plan = undefined;
        }
      } else {
        composed = await runAndCompose();
      }
    }
    if (composed) {
      const { shards, file } = composed;
      const records = shards.reduce((n, s) => n + s.records, 0);
      state.stage = "save_stats";
      await saveStats({
        exportId: input.exportId,
        records,
        fileSize: file.size,
        checksum: file.checksum,
      });
      state.stage = "done";
      markStatus("SUCCESS");
      return {
        exportId: input.exportId,
        records,
        fileSize: file.size,
        checksum: file.checksum,
        fileKey: resolved.fileKey,
      };
    }
    const file = await streaming.exportRecords({
      exportId: input.exportId,
      fileKey: resolved.fileKey,
      totalRecords: state.totalRecords,
    });
    state.records = file.records;
    upload = { key: file.upload.key, uploadId: file.upload.uploadId };
    state.stage = "uploading_snapshot";
    const fileSize = await short.finishUpload({ exportId: input.exportId, upload: file.upload });
    state.stage = "save_stats";
    await saveStats({
      exportId: input.exportId,
      records: file.records,
      fileSize,
      checksum: file.checksum,
    });
    state.stage = "done";
    markStatus("SUCCESS");
    return {
      exportId: input.exportId,
      records: file.records,
      fileSize,
      checksum: file.checksum,
      fileKey: resolved.fileKey,
    };
  } catch (error) {
    const stage = state.stage;
    if (isCancellation(error)) {
      markStatus("REVOKED");
      await CancellationScope.nonCancellable(() =>
        cleanup.markRevoked({ exportId: input.exportId, stage })
      );
      throw error;
    }
    // Runs started before a REVOKED export ended its run completed (not failed) replay as they
    // were: they failed ExportEnded.
    if (endedStatus(error) === "REVOKED" && patched("revoked-export-completes")) {
      // Cancelled without the cancel reaching this run (the API's cancel found no open run as
      // this one started; a reset of a REVOKED export): the row says REVOKED and stays so (no
      // FAILURE is written over it). markRevoked finds it REVOKED already and removes what is
      // left under the export's folder (a file finishUpload published before saveStats found
      // the export ended); the run completes, `revoked: true`, as the row reads.
      markStatus("REVOKED");
      await CancellationScope.nonCancellable(() =>
        cleanup.markRevoked({ exportId: input.exportId, stage })
      );
      state.stage = "revoked";
      return {
        exportId: input.exportId,
        revoked: true,
        records: 0,
        fileSize: 0,
        checksum: "",
        fileKey: "",
      };
    }
    if (failureType(error) === "ExportNotFound" && stage !== "resolve_exporter") {
      // The export was deleted while it ran (a workflow started for an export that never
      // existed still fails): nothing to report to, stop cleanly. exportRecords aborts its own
      // upload; one that exportRecords already finished is dropped here.
      if (upload) {
        const done = upload;
        await CancellationScope.nonCancellable(() => cleanup.discardUpload({ upload: done }));
      }
      if (plan && plan.shards.length > 1) {
        const { prefix } = plan;
        await CancellationScope.nonCancellable(() => cleanup.discardShards({ prefix, fileKey }));
      }
      state.stage = "deleted";
      markStatus("DELETED");
      return {
        exportId: input.exportId,
        deleted: true,
        records: 0,
        fileSize: 0,
        checksum: "",
        fileKey: "",
      };
    }
    const message = describeFailure(error);
    markStatus("FAILURE");
    await CancellationScope.nonCancellable(() =>
      cleanup.markFailed({ exportId: input.exportId, stage, message })
    );
    throw ApplicationFailure.nonRetryable(
      `export ${input.exportId} failed in ${stage}: ${message}`,
      "ExportFailed",
    );
  }
}

/** The type of the innermost application failure, if any. */
function failureType(error: unknown): string | undefined {
  let current: unknown = error;
  let type: string | undefined;
  while (current && typeof current === "object") {
    const t = (current as { type?: unknown }).type;
    if (typeof t === "string") type = t;
    current = (current as { cause?: unknown }).cause;
  }
  return type;
}

/**
 * The export's status an `ExportEnded` failure names (its first detail, activities/failures.ts
 * `ExportEndedDetails`), if `error` is one.
 */
function endedStatus(error: unknown): string | undefined {
  let current: unknown = error;
  while (current && typeof current === "object") {
    const { type, details } = current as { type?: unknown; details?: unknown };
    if (type === "ExportEnded" && Array.isArray(details)) {
      const status = (details[0] as { status?: unknown } | undefined)?.status;
      return typeof status === "string" ? status : undefined;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The innermost message of an activity failure, readable by a person. */
function describeFailure(error: unknown): string {
  let current: unknown = error;
  let message = String(error);
  while (current && typeof current === "object") {
    const m = (current as { message?: string }).message;
    if (m) message = m;
    current = (current as { cause?: unknown }).cause;
  }
  return message.replace(/^Activity task failed:?\s*/i, "");
}
