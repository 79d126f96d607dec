/**
 * The export activities, built by a factory over their dependencies (database, storage, config,
 * Temporal client) so that the worker and the tests pass the same real services.
 */
import { Context } from "@temporalio/activity";
import { createSHA256 } from "hash-wasm";
import { ApplicationFailure, CancelledFailure } from "@temporalio/common";
import type { Client } from "@temporalio/client";
import type { Config } from "../config/mod.ts";
import type { Sql } from "../db/client.ts";
import {
  appendJobLog,
  exportFilters,
  exportOptions,
  type ExportRow,
  exportWorkflowId,
  findExport,
  markExportEnded,
  markExportStarted,
  markExportSucceeded,
  recordCount,
  recordedSourceVersions,
  setStage,
  STAGES,
  updateJobProgress,
} from "../db/exports.ts";
import {
  readConsistently,
  readSnapshot,
  sameSourceVersions,
  type SourceVersions,
  withSnapshot,
} from "../db/snapshot.ts";
import { getExporter, supportedFormats } from "../registry/mod.ts";
import { impossibleTimeLogLines } from "../registry/impossible_times.ts";
import { exportSettingsKey } from "../registry/settings_key.ts";
import { asStream, shardStream, withByteOrderMark } from "../registry/stream.ts";
import type {
  ExportOptions,
  ExportQueryContext,
  StreamExporter,
  StreamState,
} from "../registry/types.ts";
import { UploadNotFoundError } from "../storage/errors.ts";
import { exportFileName, fileNameBudget } from "../storage/key_bounds.ts";
import type { ObjectStorage, UploadState } from "../storage/types.ts";
import { uploadRef } from "../storage/upload_ref.ts";
import { requestedBy } from "../workflows/search_attributes.ts";
import { firstBatchLimit, nextBatchLimit } from "./batch_size.ts";
import { CheckpointWriter } from "./checkpoint_writer.ts";
import { sweepStorage } from "./housekeeping.ts";
import { startExportDeliveries, sweepWebhookOutbox } from "./webhooks.ts";
import { exportNotFound, invalidFilters, unknownFormat } from "./failures.ts";
import type {
  ExportCheckpoint,
  ExportedFile,
  ExportedShard,
  ExportHeartbeat,
  HousekeepingReport,
  LegacyExportHeartbeat,
  ResolvedExport,
  ShardPlan,
  ShardSpec,
} from "./types.ts";

/** What the activities need from the outside world. */
export interface ActivityDependencies {
  sql: Sql;
  storage: ObjectStorage;
  config: Config;
  /** Used by the delete workflow to stop a running export. */
  temporal?: Client;
}

/** An error's message, for a job log line. */
function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** "id 1234" for record streams, else the state as JSON (for job log lines). */
function describeState(state: StreamState): string {
  if (state && typeof state === "object" && !Array.isArray(state) && "inner" in state) {
    return describeState(state.inner); // the byte-order-mark wrapper
  }
  if (state && typeof state === "object" && !Array.isArray(state) && "afterId" in state) {
    return state.afterId === null ? "the start" : `id ${state.afterId}`;
  }
  return JSON.stringify(state).slice(0, 200);
}

/**
 * Heartbeats every second while `work` runs, so that Temporal notices a dead worker within the
 * heartbeat timeout even during one long statement or upload; a live but slow call is not
 * mistaken for a dead one. `details` gives the heartbeat details to send (the checkpoint).
 */
async function keepAlive<T>(work: () => Promise<T>, details?: () => unknown): Promise<T> {
  const ctx = Context.current();
  const timer = setInterval(() => ctx.heartbeat(details?.()), 1000);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/** True when the error means the checkpoint's upload is gone or no longer matches. */
function isLostUpload(error: unknown): boolean {
  return error instanceof UploadNotFoundError ||
    /does not match the checkpoint/.test(error instanceof Error ? error.message : String(error));
}

/**
 * The object key of an export's file: `<STORAGE_PREFIX>exports/<file_uuid>/<project
 * slug>_export-<id>.<extension>`. The UUID is the export's own (`data_exports.file_uuid`), so
 * two databases or deployments sharing one bucket or directory never write, read or delete each
 * other's files even with equal ids and slugs; the last segment is the original platform's file
 * name, which downloads keep.
 *
 * The slug is user-controlled: the file name is made safe and bounded by
 * {@link exportFileName} (`/`, controls and bidirectional marks replaced, cut at a character
 * boundary so the name is at most 255 bytes of UTF-8, POSIX NAME_MAX, with `_export-<id>.<ext>`
 * kept whole), and to what is left of S3's 1,024-byte key limit after the prefix. With a
 * `STORAGE_PREFIX` that the configuration accepted (config/mod.ts), the key is at most
 * 1,024 bytes. Throws a RangeError only when the prefix leaves no room for the name's tail.
 */
export function exportFileKey(
  export_: { storagePrefix: string; fileUuid: string; projectSlug: string; exportId: number },
  extension: string,
): string {
  const { storagePrefix, fileUuid, projectSlug, exportId } = export_;
  const dir = `${exportsRoot(storagePrefix)}${fileUuid}/`;
  return `${dir}${exportFileName({ projectSlug, exportId, extension }, fileNameBudget(dir))}`;
}

/**
 * The key prefix of an export's shard objects, `<STORAGE_PREFIX>exports/<file_uuid>/shards/`:
 * under the export's own UUID, so isolation and housekeeping treat them as the export's. No
 * user-controlled part: with an accepted `STORAGE_PREFIX` its keys
 * (`shards/<nnnn>.<extension>`) are shorter than the file's.
 */
export function shardPrefix(storagePrefix: string, fileUuid: string): string {
  return `${exportsRoot(storagePrefix)}${fileUuid}/shards/`;
}

/**
 * At most this many shards per export, whatever `EXPORT_SHARD_RECORDS` says: each shard is a
 * handful of workflow history events and one object; 64 keep the history small and are more
 * parallel activities than a deployment runs at once.
 */
export const MAX_SHARDS = 64;

/** The key prefix under which every export file of this deployment lives. */
export function exportsRoot(storagePrefix: string): string {
  return `${storagePrefix}exports/`;
}

/** The stable URL (through the API) that downloads an export's file. */
export function exportDownloadUrl(config: Config, exportId: number): string {
  return `${config.publicBaseUrl}/api/v2/exports/${exportId}/download/`;
}

// deno-lint-ignore explicit-function-return-type
export function createActivities(deps: ActivityDependencies) {
  const { sql, storage, config } = deps;

  async function requireExport(exportId: number): Promise<ExportRow> {
    const row = await findExport(sql, exportId);
    if (!row) throw exportNotFound(exportId);
    return row;
  }

  function requireExporter(format: string, options: ExportOptions = {}): StreamExporter {
    const exporter = getExporter(format);
    if (!exporter) throw unknownFormat(format, supportedFormats());
    const excel = options.excel_compatible === true &&
      (exporter.acceptedOptions ?? []).includes("excel_compatible");
    return excel ? withByteOrderMark(asStream(exporter)) : asStream(exporter);
  }

  /** Fails (non-retryable) when the export's capture set was deleted meanwhile. */
  async function checkFilters(row: ExportRow): Promise<void> {
    const filters = exportFilters(row);
    if (filters.collection_id === undefined) return;
    const [found] = await sql`
      select 1 from source_image_collections
      where id = ${filters.collection_id} and project_id = ${row.project_id}`;
    if (!found) {
      throw invalidFilters(
        `capture set no longer exists in project ${row.project_id}: ${filters.collection_id}`,
      );
    }
  }

  async function queryContext(row: ExportRow): Promise<ExportQueryContext> {
    await checkFilters(row);
    return {
      sql,
      projectId: row.project_id,
      filters: exportFilters(row),
      settings: config.formats,
    };
  }

  /** Aborts the export's in-progress upload and removes a published file, if any. */
  async function discardFiles(row: ExportRow): Promise<void> {
    if (row.upload_id && row.file_key) {
      await storage.abortUpload({ key: row.file_key, uploadId: row.upload_id });
    }
    if (row.file_key) await storage.deleteObject(row.file_key);
    await discardShardFiles(shardPrefix(config.storagePrefix, row.file_uuid));
    await sql`update data_exports set upload_id = null where id = ${row.id}`;
  }

  async function markEnded(
    exportId: number,
    status: "FAILURE" | "REVOKED",
    detail: { message?: string; stage?: string },
  ): Promise<void> {
    const row = await findExport(sql, exportId);
    if (!row || row.status === "SUCCESS") return;
    try {
      await discardFiles(row);
    } catch (error) {
      // Whatever failed the export may fail its cleanup too (storage down, a name the backend
      // refuses): end the export now all the same. Its upload stays recorded (upload_id,
      // file_uuid) and the housekeeping sweep removes it later.
      await appendJobLog(
        sql,
        exportId,
        `could not remove the partial upload now (${describeError(error)}); housekeeping will`,
        "warning",
      );
    }
    await markExportEnded(sql, exportId, { status, ...detail });
    await startExportDeliveries(deps, exportId); // webhooks of the end (docs/webhooks.md)
  }

  async function reportProgress(exportId: number, records: number, total: number): Promise<void> {
    const [found] = await sql`select 1 from data_exports where id = ${exportId}`;
    if (!found) throw exportNotFound(exportId);
    await updateJobProgress(sql, exportId, (progress) => {
      setStage(progress, STAGES.export.key, {
        status: "STARTED",
        progress: total > 0 ? records / total : 1,
        params: { records_exported: records },
      });
    });
  }

  /** Aborts the incomplete uploads and removes the objects under a shard prefix. */
  async function discardShardFiles(prefix: string): Promise<void> {
    for (const upload of await storage.listIncompleteUploads(prefix)) {
      await storage.abortUpload(upload);
    }
    for (const key of await storage.listObjects(prefix)) await storage.deleteObject(key);
  }

  /** Records one shard's records; `records_exported` is the sum over the shards. */
  async function reportShardProgress(
    exportId: number,
    shard: number,
    records: number,
  ): Promise<void> {
    const [found] = await sql`select 1 from data_exports where id = ${exportId}`;
    if (!found) throw exportNotFound(exportId);
    await updateJobProgress(sql, exportId, (progress) => {
      const stage = progress.stages.find((s) => s.key === STAGES.export.key) as
        | { shard_records?: Record<string, number> }
        | undefined;
      if (!stage) return;
      const counts = stage.shard_records ??= {};
      counts[String(shard)] = records;
      const sum = Object.values(counts).reduce((a, b) => a + b, 0);
      const total = progress.stages.find((s) => s.key === STAGES.export.key)?.params
        .find((p) => p.key === "total_records")?.value;
      setStage(progress, STAGES.export.key, {
        status: "STARTED",
        progress: typeof total === "number" && total > 0 ? sum / total : 0,
        params: { records_exported: sum },
      });
    });
  }

  /**
   * Streams `stream` batch by batch into a resumable upload at `key`. After each batch it
   * heartbeats the last durable checkpoint; a retried attempt resumes from it when `owns` says
   * the checkpoint's upload is still this one's, else starts over (aborting uploads left at
   * `key`). If the export row disappears meanwhile, the upload is aborted before the
   * (non-retryable) error is thrown. Returns the uploaded, not yet published, bytes.
   */
  async function streamToUpload(options: {
    row: ExportRow;
    stream: StreamExporter;
    query: ExportQueryContext;
    key: string;
    contentType: string;
    /** Records the stream will hold (heartbeat progress). */
    totalRecords: number;
    /** Job-log prefix: "" or "shard 3 ". */
    label: string;
    owns(uploadId: string): boolean;
    beforeBegin(): Promise<void>;
    afterBegin(upload: UploadState): Promise<void>;
    /**
     * Called once a fresh (not resumed) attempt has taken its snapshot, with its markers and the
     * snapshot-bound query context; returns the records the file will hold in that snapshot.
     */
    snapshotTaken(
      versions: SourceVersions,
      inSnapshot: <T>(read: (query: ExportQueryContext) => Promise<T>) => Promise<T>,
    ): Promise<number>;
    progress(records: number, total: number): Promise<void>;
  }): Promise<ExportedFile> {
    const { row, stream: exporter } = options;
    const ctx = Context.current();
    const previous = (ctx.info.heartbeatDetails as
      | ExportHeartbeat
      | LegacyExportHeartbeat
      | undefined)?.checkpoint as
        | (ExportHeartbeat["checkpoint"] | LegacyExportHeartbeat["checkpoint"]) & {
          snapshot?: ExportHeartbeat["checkpoint"]["snapshot"];
        }
        | undefined;

    // One snapshot for the whole attempt: every statement of every batch reads the data as of
    // its start (db/snapshot.ts). A resumed attempt continues the file only when its markers
    // equal the interrupted attempt's (the same data); otherwise it starts the file over.
    return await withSnapshot(sql, async (snapshot) => {
      const versions = await snapshot.run((tx) => readSnapshot(tx, row.project_id));
      const query = options.query;
      /** Runs `read` in one short transaction of the snapshot, with its query context. */
      const inSnapshot = <T>(read: (query: ExportQueryContext) => Promise<T>): Promise<T> =>
        snapshot.run((tx) => read({ ...query, sql: tx }));
      let total = options.totalRecords;
      let start: Omit<ExportCheckpoint, "hashState"> & { hashState?: string } | undefined;
      if (previous && options.owns(previous.upload.uploadId)) {
        if (!sameSourceVersions(previous.snapshot?.versions, versions)) {
          // the interrupted attempt's snapshot is gone; its bytes may disagree with this one's
          await appendJobLog(
            sql,
            row.id,
            `${options.label}the data changed since the interrupted attempt read it: ` +
              `starting the file over from a new snapshot`,
            "warning",
          );
        } else {
          try {
            // compact checkpoints name the upload; older ones carry every part
            const upload = "parts" in previous.upload
              ? await storage.resumeUpload(previous.upload)
              : await storage.recoverUpload(previous.upload);
            start = { ...previous, upload };
            total = previous.snapshot?.total ?? total;
          } catch (error) {
            if (!isLostUpload(error)) throw error; // storage unreachable: retry later
            await appendJobLog(
              sql,
              row.id,
              `${options.label}could not resume the upload, starting over: ${error}`,
              "warning",
            );
          }
        }
        if (start) {
          await sql`update data_exports set resumed_count = resumed_count + 1 where id = ${row.id}`;
          await appendJobLog(
            sql,
            row.id,
            `${options.label}resumed at ${
              describeState(previous.state)
            } after ${previous.records} records ` +
              `(attempt ${ctx.info.attempt})`,
            "warning",
          );
        }
      }
      if (!start) {
        await options.beforeBegin();
        await storage.ensureReady(); // the bucket may have been lost with its server
        // An attempt killed between beginning its upload and recording it left an upload no row
        // names. The key carries this export's UUID, so every upload under it is this export's.
        for (const orphan of await storage.listIncompleteUploads(options.key)) {
          if (orphan.key === options.key) await storage.abortUpload(orphan);
        }
        const upload = await storage.beginUpload(options.key, options.contentType);
        await options.afterBegin(upload);
        start = { state: exporter.initialState(query), records: 0, upload };
        total = await options.snapshotTaken(versions, inSnapshot);
      }

      // S3 parts must be ≥ 5 MiB; an fsynced file can take any size, so the filesystem backend
      // makes every batch durable (a resume then re-reads at most the batch in flight)
      const partSize = storage.backend === "fs" ? 1 : config.uploadPartSize;
      const writer = await CheckpointWriter.open(storage, start, partSize);
      const startedAt = performance.now();
      const startRecords = writer.records;
      const details = (): ExportHeartbeat => {
        const seconds = (performance.now() - startedAt) / 1000;
        const durable = writer.checkpoint;
        return {
          progress: {
            records: writer.records,
            total,
            percent: total > 0 ? Math.round((writer.records / total) * 1000) / 10 : 100,
            rowsPerSecond: seconds > 0 ? Math.round((writer.records - startRecords) / seconds) : 0,
            bytes: writer.bytes,
          },
          checkpoint: {
            state: durable.state,
            records: durable.records,
            upload: uploadRef(durable.upload),
            hashState: durable.hashState,
            snapshot: { versions, total },
            ...(durable.batchLimit === undefined ? {} : { batchLimit: durable.batchLimit }),
          },
        };
      };
      const beat = () => ctx.heartbeat(details());
      writer.onDurable = beat;
      beat();
      try {
        return await keepAlive(async () => {
          let done = false;
          // a resumed attempt continues with the limit the interrupted one would have used
          let limit = writer.batchLimit ?? firstBatchLimit({ maxRecords: config.exportBatchSize });
          while (!done) {
            if (ctx.cancellationSignal.aborted) throw new CancelledFailure("export cancelled");
            const state = writer.state;
            const chunk = await inSnapshot((q) => exporter.next(q, state, { limit }));
            // The capture set may be deleted mid-export: its rows then silently vanish from the
            // query, so check after every batch instead of exporting a truncated file.
            await checkFilters(row);
            limit = nextBatchLimit(
              {
                records: chunk.rows ?? chunk.records,
                bytes: typeof chunk.data === "string" ? chunk.data.length : chunk.data.byteLength,
              },
              {
                maxRecords: config.exportBatchSize,
                targetBytes: config.exportBatchBytes,
                current: limit,
              },
            );
            writer.append(chunk.data, chunk.records, chunk.state, limit);
            done = chunk.done;
            await writer.flush(done);
            beat();
            if (chunk.records > 0 || done) await options.progress(writer.records, total);
          }
          return {
            records: writer.records,
            bytes: writer.checkpoint.upload.bytes,
            checksum: writer.digest(),
            upload: writer.checkpoint.upload,
          };
        }, details);
      } catch (error) {
        if (error instanceof ApplicationFailure && error.type === "ExportNotFound") {
          // Nobody will clean up after a deleted export: drop its upload now.
          await storage.abortUpload(writer.checkpoint.upload).catch(() => {});
        }
        throw error;
      }
    }, { holderUrl: config.databaseUrl });
  }

  return {
    /** Looks up the export and its format; marks the export STARTED. */
    async resolveExporter(input: { exportId: number }): Promise<ResolvedExport> {
      return await keepAlive(async () => {
        const row = await requireExport(input.exportId);
        const exporter = requireExporter(row.format);
        await queryContext(row);
        const fileKey = exportFileKey({
          storagePrefix: config.storagePrefix,
          fileUuid: row.file_uuid,
          projectSlug: row.project_slug,
          exportId: row.id,
        }, exporter.extension);
        const { workflowExecution } = Context.current().info;
        const runId = workflowExecution?.runId ?? null;
        const started = await markExportStarted(sql, row.id, {
          runId,
          workflowId: workflowExecution?.workflowId ?? null,
          settingsKey: await exportSettingsKey(exporter, config.formats),
          message: `export started: format ${row.format}, run ${runId}`,
        });
        if (!started) {
          // gone, or ended under this very run while this attempt was in flight (a cancel)
          const now = await findExport(sql, row.id);
          if (!now) throw exportNotFound(row.id);
          throw ApplicationFailure.nonRetryable(
            `export ${row.id} has already ended: ${now.status}`,
            "ExportEnded",
          );
        }
        return {
          exportId: row.id,
          projectId: row.project_id,
          requestedBy: requestedBy(row),
          format: row.format,
          extension: exporter.extension,
          contentType: exporter.contentType,
          fileKey,
        };
      });
    },

    /**
     * One COUNT with the export's filters, in a repeatable-read snapshot that also reads the
     * source change markers; stores both (the stage's total, `source_version`) in one
     * transaction. The streaming activity compares its own snapshot's markers with these.
     */
    async countRecords(input: { exportId: number }): Promise<number> {
      return await keepAlive(async () => {
        const row = await requireExport(input.exportId);
        const exporter = requireExporter(row.format);
        const query = await queryContext(row);
        const { total, versions, warnings } = await readConsistently(sql, async (tx) => ({
          versions: await readSnapshot(tx, row.project_id),
          total: await exporter.count({ ...query, sql: tx }),
          // impossible source times the file leaves empty (registry/time_sql.ts), counted once
          warnings: await impossibleTimeLogLines(row.format, { ...query, sql: tx }),
        }));
        await recordCount(sql, row.id, { total, versions, warnings });
        return total;
      });
    },

    /**
     * Streams the records in id order, batch by batch, into a resumable upload. After each batch
     * it heartbeats the last durable checkpoint; a retried attempt resumes from it. If the export
     * row disappears meanwhile, the upload is aborted before the (non-retryable) error is thrown.
     */
    async exportRecords(
      input: { exportId: number; fileKey: string; totalRecords: number },
    ): Promise<ExportedFile> {
      const row = await requireExport(input.exportId);
      const exporter = requireExporter(row.format, exportOptions(row));
      return await streamToUpload({
        row,
        stream: exporter,
        query: await queryContext(row),
        key: input.fileKey,
        contentType: exporter.contentType,
        totalRecords: input.totalRecords,
        label: "",
        owns: (uploadId) => uploadId === row.upload_id,
        async beforeBegin() {
          if (row.upload_id && row.file_key) {
            await storage.abortUpload({ key: row.file_key, uploadId: row.upload_id });
          }
        },
        async afterBegin(upload) {
          await sql`
            update data_exports set upload_id = ${upload.uploadId}, file_key = ${input.fileKey},
              updated_at = now()
            where id = ${row.id}`;
        },
        async snapshotTaken(versions, inSnapshot) {
          if (sameSourceVersions(recordedSourceVersions(row), versions)) return input.totalRecords;
          // the data changed between the count and this snapshot: count again in it, so that the
          // total the export announces is the number of records its file holds
          const total = await inSnapshot((q) => exporter.count(q));
          await recordCount(sql, row.id, { total, versions });
          await appendJobLog(
            sql,
            row.id,
            `the data changed since the count: ${total} records in the export's snapshot ` +
              `(counted ${input.totalRecords} before)`,
          );
          return total;
        },
        progress: (records, total) => reportProgress(row.id, records, total),
      });
    },

    /**
     * Decides whether the export is sharded (docs/architecture.md, Sharded exports): only
     * formats with `shardBounds`, only above `EXPORT_SHARD_RECORDS` records (0: never), at most
     * {@link MAX_SHARDS} shards of about equal record counts. Removes leftover shard objects of
     * an earlier run of this export and records the file key (so a failure removes a composed
     * file). An empty plan means: export unsharded.
     */
    async planShards(
      input: { exportId: number; fileKey: string; totalRecords: number },
    ): Promise<ShardPlan> {
      return await keepAlive(async () => {
        const row = await requireExport(input.exportId);
        const prefix = shardPrefix(config.storagePrefix, row.file_uuid);
        const exporter = getExporter(row.format);
        const limit = config.exportShardRecords;
        const none: ShardPlan = { prefix, shards: [] };
        if (
          !exporter || exporter.kind === "stream" || !exporter.shardBounds || limit === 0 ||
          input.totalRecords <= limit
        ) {
          return none;
        }
        const wanted = Math.min(MAX_SHARDS, Math.ceil(input.totalRecords / limit));
        const every = Math.ceil(input.totalRecords / wanted);
        const query = await queryContext(row);
        const bounds = (await exporter.shardBounds(query, every)).slice(0, wanted - 1);
        if (bounds.length === 0) return none;
        const shards: ShardSpec[] = [];
        for (let index = 0; index <= bounds.length; index++) {
          const last = index === bounds.length;
          shards.push({
            index,
            key: `${prefix}${String(index).padStart(4, "0")}.${exporter.extension}`,
            afterId: index === 0 ? null : bounds[index - 1],
            untilId: last ? null : bounds[index],
            recordsBefore: index * every,
            records: last ? Math.max(0, input.totalRecords - index * every) : every,
            first: index === 0,
            last,
          });
        }
        await discardShardFiles(prefix);
        await sql`
          update data_exports set file_key = ${input.fileKey}, upload_id = null, updated_at = now()
          where id = ${row.id}`;
        await appendJobLog(
          sql,
          row.id,
          `export split into ${shards.length} shards of about ${every} records`,
        );
        return { prefix, shards };
      });
    },

    /**
     * Exports one shard (records `afterId` < id ≤ `untilId`) into its own object under the
     * export's `shards/` prefix, resuming from its own heartbeat checkpoint like
     * `exportRecords`; publishes the shard object and returns its key, size and records.
     */
    async exportShard(input: { exportId: number; shard: ShardSpec }): Promise<ExportedShard> {
      const row = await requireExport(input.exportId);
      const exporter = getExporter(row.format);
      if (!exporter || exporter.kind === "stream") {
        throw unknownFormat(row.format, supportedFormats());
      }
      const { shard } = input;
      const excel = exportOptions(row).excel_compatible === true &&
        (exporter.acceptedOptions ?? []).includes("excel_compatible");
      const stream = shardStream(exporter, shard);
      const file = await streamToUpload({
        row,
        stream: excel && shard.first ? withByteOrderMark(stream) : stream,
        query: await queryContext(row),
        key: shard.key,
        contentType: exporter.contentType,
        totalRecords: shard.records,
        label: `shard ${shard.index} `,
        owns: () => true, // the checkpoint is this activity's own, and so is its upload
        beforeBegin: () => Promise.resolve(),
        afterBegin: () => Promise.resolve(),
        async snapshotTaken(versions) {
          if (!sameSourceVersions(recordedSourceVersions(row), versions)) {
            // each shard reads its own snapshot: records stay whole (no record refers to
            // another), the file as a whole spans the moments of its shards (docs/operations.md)
            await appendJobLog(
              sql,
              row.id,
              `shard ${shard.index} reads the data as changed since the count`,
              "warning",
            );
          }
          return shard.records;
        },
        progress: (records) => reportShardProgress(row.id, shard.index, records),
      });
      const { size } = await keepAlive(() => storage.completeUpload(file.upload));
      return { index: shard.index, key: shard.key, bytes: size, records: file.records };
    },

    /**
     * Publishes the export's file as the concatenation of its shard objects
     * (`storage.composeObject`: server-side on S3), computes its SHA-256 by streaming the
     * composed object once (flat memory), then removes the shard objects. Idempotent: a retry
     * after the shards were removed finds the composed file of the expected size.
     */
    async composeShards(input: {
      exportId: number;
      fileKey: string;
      contentType: string;
      prefix: string;
      shards: ExportedShard[];
    }): Promise<{ size: number; checksum: string }> {
      return await keepAlive(async () => {
        await requireExport(input.exportId);
        await updateJobProgress(sql, input.exportId, (progress) => {
          setStage(progress, STAGES.upload.key, { status: "STARTED" });
        });
        const total = input.shards.reduce((n, s) => n + s.bytes, 0);
        const sources = [...input.shards].sort((a, b) => a.index - b.index)
          .map((s) => ({ key: s.key, size: s.bytes }));
        const present = await Promise.all(sources.map((s) => storage.headObject(s.key)));
        if (present.some((head) => head === null)) {
          // an earlier attempt composed the file and removed (some) shards
          const head = await storage.headObject(input.fileKey);
          if (head?.size !== total) {
            throw new Error(
              `shard objects are gone and the file has ${
                head?.size ?? "no"
              } bytes, expected ${total}: ${input.fileKey}`,
            );
          }
        } else {
          // a compose attempt killed mid-way left an upload under the file's own key
          for (const orphan of await storage.listIncompleteUploads(input.fileKey)) {
            if (orphan.key === input.fileKey) await storage.abortUpload(orphan);
          }
          await storage.composeObject(input.fileKey, input.contentType, sources);
        }
        await sql`
          update data_exports set file_key = ${input.fileKey}, upload_id = null, updated_at = now()
          where id = ${input.exportId}`;
        const hasher = await createSHA256();
        hasher.init();
        let size = 0;
        for await (const chunk of await storage.readObject(input.fileKey)) {
          hasher.update(chunk);
          size += chunk.byteLength;
        }
        if (size !== total) {
          throw new Error(`composed file has ${size} bytes, expected ${total}: ${input.fileKey}`);
        }
        await discardShardFiles(input.prefix);
        return { size, checksum: hasher.digest("hex") };
      });
    },

    /**
     * Removes every shard object and incomplete shard upload under `prefix` (an export's
     * `<file_uuid>/shards/`), and the file at `fileKey` when given (an export deleted mid-way).
     * Idempotent.
     */
    async discardShards(input: { prefix: string; fileKey?: string }): Promise<void> {
      await keepAlive(async () => {
        await discardShardFiles(input.prefix);
        if (input.fileKey) await storage.deleteObject(input.fileKey);
      });
    },

    /** Publishes the uploaded object. Idempotent. */
    async finishUpload(
      input: { exportId: number; upload: ExportedFile["upload"] },
    ): Promise<number> {
      return await keepAlive(async () => {
        await requireExport(input.exportId);
        await updateJobProgress(sql, input.exportId, (progress) => {
          setStage(progress, STAGES.upload.key, { status: "STARTED" });
        });
        const { size } = await storage.completeUpload(input.upload);
        await sql`
          update data_exports set upload_id = null, file_key = ${input.upload.key},
            updated_at = now()
          where id = ${input.exportId}`;
        return size;
      });
    },

    /**
     * Records the final statistics and marks the export SUCCESS, the export and its job in one
     * transaction (db/exports.ts `markExportSucceeded`). Idempotent.
     */
    async saveStats(
      input: { exportId: number; records: number; fileSize: number; checksum: string },
    ): Promise<void> {
      const outcome = await markExportSucceeded(sql, input.exportId, {
        records: input.records,
        fileSize: input.fileSize,
        checksum: `sha256:${input.checksum}`,
        fileUrl: exportDownloadUrl(config, input.exportId),
      });
      if (outcome === "missing") throw exportNotFound(input.exportId);
      await startExportDeliveries(deps, input.exportId); // webhooks of the end (docs/webhooks.md)
    },

    /** Marks a failed export FAILURE with its error and stage; removes partial files. */
    async markFailed(input: { exportId: number; stage: string; message: string }): Promise<void> {
      await keepAlive(() => markEnded(input.exportId, "FAILURE", input));
    },

    /** Marks a cancelled export REVOKED; removes partial files. */
    async markRevoked(input: { exportId: number; stage: string }): Promise<void> {
      await keepAlive(() => markEnded(input.exportId, "REVOKED", { stage: input.stage }));
    },

    /** Aborts an upload whose export no longer exists. Idempotent. */
    async discardUpload(input: { upload: Pick<UploadState, "key" | "uploadId"> }): Promise<void> {
      await keepAlive(() => storage.abortUpload(input.upload));
    },

    /** Cancels the export's workflow (if running) and waits until it has closed. */
    async stopExportWorkflow(input: { exportId: number }): Promise<void> {
      if (!deps.temporal) throw new Error("stopExportWorkflow needs a Temporal client");
      const row = await findExport(sql, input.exportId);
      if (!row) return; // nothing left that its workflow could write to
      const handle = deps.temporal.workflow.getHandle(exportWorkflowId(row));
      const isRunning = async () => {
        try {
          return (await handle.describe()).status.name === "RUNNING";
        } catch {
          return false; // never started or already gone
        }
      };
      if (!(await isRunning())) return;
      await handle.cancel().catch(() => {});
      while (await isRunning()) {
        Context.current().heartbeat();
        await Context.current().sleep(500);
      }
    },

    /** Removes the export's file and any incomplete upload. Idempotent. */
    async removeExportFile(input: { exportId: number }): Promise<void> {
      const row = await findExport(sql, input.exportId);
      if (row) await discardFiles(row);
    },

    /** Deletes the export row (its job and log lines cascade). Idempotent. */
    async deleteExportRows(input: { exportId: number }): Promise<void> {
      await sql`delete from data_exports where id = ${input.exportId}`;
    },

    /**
     * Housekeeping: aborts stale uploads and removes leftover files that this database records
     * (see {@link sweepStorage}). Returns (and logs) what it removed.
     */
    async sweepOrphans(input: { minAgeSeconds?: number } = {}): Promise<HousekeepingReport> {
      return await keepAlive(async () => {
        const report = await sweepStorage(sql, storage, {
          minAgeSeconds: input.minAgeSeconds ?? 3600,
          root: exportsRoot(config.storagePrefix),
        });
        const webhookEvents = await sweepWebhookOutbox(deps, { minAgeSeconds: 60 });
        console.log(JSON.stringify({ msg: "housekeeping", ...report, webhookEvents }));
        return report;
      });
    },
  };
}

/** The activity functions, as workflows see them. */
export type ExportActivities = ReturnType<typeof createActivities>;
