/**
 * The streaming driver of `exportRecords` and `exportShard`: one snapshot per attempt, batches
 * into a resumable upload, heartbeat checkpoints, and resume from the last delivered one.
 */
import { Context } from "@temporalio/activity";
import { ApplicationFailure, CancelledFailure } from "@temporalio/common";
import { appendJobLog, type ExportRow } from "../db/exports.ts";
import {
  readSnapshot,
  sameSourceVersions,
  type SourceVersions,
  withSnapshot,
} from "../db/snapshot.ts";
import {
  type ExportQueryContext,
  ExportRefusedError,
  type SideStore,
  type StreamExporter,
  type StreamState,
} from "../registry/types.ts";
import { UploadNotFoundError } from "../storage/errors.ts";
import type { UploadState } from "../storage/types.ts";
import { uploadRef } from "../storage/upload_ref.ts";
import { skippedCount } from "../registry/image_dataset.ts";
import { firstBatchLimit, nextBatchLimit } from "./batch_size.ts";
import { CheckpointWriter } from "./checkpoint_writer.ts";
import type { ExportAccess } from "./export_access.ts";
import { keepAlive } from "./keep_alive.ts";
import {
  CHECKPOINT_FORM,
  checkpointFormProblem,
  type ExportCheckpoint,
  type ExportedFile,
  type ExportHeartbeat,
  type LegacyExportHeartbeat,
} from "./types.ts";

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

/** True when the error means the checkpoint's upload is gone or no longer matches. */
function isLostUpload(error: unknown): boolean {
  return error instanceof UploadNotFoundError ||
    /does not match the checkpoint/.test(error instanceof Error ? error.message : String(error));
}

/**
 * Streams `stream` batch by batch into a resumable upload at `key`. After each batch it
 * heartbeats the last durable checkpoint; a retried attempt resumes from it when `owns` says
 * the checkpoint's upload is still this one's, else starts over (aborting uploads left at
 * `key`). If the export row disappears meanwhile, the upload is aborted before the
 * (non-retryable) error is thrown. Returns the uploaded, not yet published, bytes.
 */
export async function streamToUpload(
  access: ExportAccess,
  options: {
    row: ExportRow;
    stream: StreamExporter;
    query: ExportQueryContext;
    key: string;
    contentType: string;
    /** Records the stream will hold (heartbeat progress). */
    totalRecords: number;
    /** Job-log prefix: "" or "shard 3 ". */
    label: string;
    /** The stream's side store (streams that declare `sideObjects`; registry/types.ts). */
    side?: SideStore;
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
    /**
     * After each batch with records and at the end: the records written and the total, and the
     * images left out so far (`skippedCount` of the state; null for formats without images).
     */
    progress(records: number, total: number, skipped: number | null): Promise<void>;
  },
): Promise<ExportedFile> {
  const { sql, readSql, readDatabaseUrl, storage, config, checkFilters } = access;
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

  const formProblem = previous && checkpointFormProblem(previous);
  if (formProblem) {
    // keep the checkpoint for the attempt that can resume it: a failure without details could
    // leave the next attempt none
    ctx.heartbeat(ctx.info.heartbeatDetails);
    throw ApplicationFailure.retryable(`${options.label}${formProblem}`, "NewerCheckpoint");
  }

  // One snapshot for the whole attempt: every statement of every batch reads the data as of
  // its start (db/snapshot.ts), on the export read database (EXPORT_DATABASE_URL: the snapshot
  // is exported and imported on that one server, docs/replica.md). A resumed attempt continues the file only when its markers
  // equal the interrupted attempt's (the same data); otherwise it starts the file over.
  return await withSnapshot(readSql, async (snapshot) => {
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
      const skipped = skippedCount(writer.state);
      return {
        progress: {
          records: writer.records,
          total,
          percent: total > 0 ? Math.round((writer.records / total) * 1000) / 10 : 100,
          rowsPerSecond: seconds > 0 ? Math.round((writer.records - startRecords) / seconds) : 0,
          bytes: writer.bytes,
          ...(skipped === null ? {} : { skipped }),
        },
        checkpoint: {
          form: CHECKPOINT_FORM,
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
          const chunk = await inSnapshot((q) =>
            exporter.next(q, state, {
              limit,
              maxRecords: config.exportBatchSize,
              side: options.side,
            })
          ).catch(
            async (error) => {
              // the data cannot make the file (too many images left out): retrying cannot help
              if (!(error instanceof ExportRefusedError)) throw error;
              // the images left out so far, which the refusing batch reports no other way
              if (error.skippedCount !== undefined) {
                await options.progress(writer.records, total, error.skippedCount);
              }
              throw ApplicationFailure.nonRetryable(error.message, "ExportRefused");
            },
          );
          // The capture set may be deleted mid-export: its rows then silently vanish from the
          // query, so check after every batch instead of exporting a truncated file.
          await checkFilters(row);
          limit = chunk.newTable
            ? firstBatchLimit({ maxRecords: config.exportBatchSize })
            : nextBatchLimit(
              {
                records: chunk.rows ?? chunk.records,
                bytes: chunk.bytes ??
                  (typeof chunk.data === "string" ? chunk.data.length : chunk.data.byteLength),
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
          if (chunk.records > 0 || done) {
            await options.progress(writer.records, total, skippedCount(writer.state));
          }
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
  }, { holderUrl: readDatabaseUrl });
}
