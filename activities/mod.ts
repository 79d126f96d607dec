/**
 * The export activities, built by a factory over their dependencies (database, storage, config,
 * Temporal client) so that the worker and the tests pass the same real services.
 */
import { Context } from "@temporalio/activity";
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
  recordSourceVersions,
  setStage,
  STAGES,
  updateJobProgress,
} from "../db/exports.ts";
import { getExporter, supportedFormats } from "../registry/mod.ts";
import { asStream, withByteOrderMark } from "../registry/stream.ts";
import type {
  ExportOptions,
  ExportQueryContext,
  StreamExporter,
  StreamState,
} from "../registry/types.ts";
import { StorageUnavailableError, UploadNotFoundError } from "../storage/errors.ts";
import type { ObjectStorage, UploadState } from "../storage/types.ts";
import { uploadRef } from "../storage/upload_ref.ts";
import { requestedBy } from "../workflows/search_attributes.ts";
import { firstBatchLimit, nextBatchLimit } from "./batch_size.ts";
import { CheckpointWriter } from "./checkpoint_writer.ts";
import { sweepStorage } from "./housekeeping.ts";
import { exportNotFound, invalidFilters, unknownFormat } from "./failures.ts";
import type {
  ExportCheckpoint,
  ExportedFile,
  ExportHeartbeat,
  HousekeepingReport,
  LegacyExportHeartbeat,
  ResolvedExport,
} from "./types.ts";

/** What the activities need from the outside world. */
export interface ActivityDependencies {
  sql: Sql;
  storage: ObjectStorage;
  config: Config;
  /** Used by the delete workflow to stop a running export. */
  temporal?: Client;
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
 */
export function exportFileKey(
  export_: { storagePrefix: string; fileUuid: string; projectSlug: string; exportId: number },
  extension: string,
): string {
  const { storagePrefix, fileUuid, projectSlug, exportId } = export_;
  return `${exportsRoot(storagePrefix)}${fileUuid}/${projectSlug}_export-${exportId}.${extension}`;
}

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
      if (!(error instanceof StorageUnavailableError)) throw error;
      // Storage is down (maybe why the export failed): end the export now; its upload stays
      // recorded (upload_id, file_uuid) and the housekeeping sweep aborts it later.
      await appendJobLog(
        sql,
        exportId,
        `could not remove the partial upload now (${error.message}); housekeeping will`,
        "warning",
      );
    }
    const updated = await sql`
      update data_exports set status = ${status}, error = ${detail.message ?? null},
        error_stage = ${
      detail.stage ?? null
    }, file_key = null, finished_at = now(), updated_at = now()
      where id = ${exportId} and status <> ${status}`;
    if (updated.count === 0) return; // already marked by an earlier attempt
    await updateJobProgress(sql, exportId, (progress) => {
      for (const stage of progress.stages) {
        if (
          stage.status === "STARTED" || (stage.key === detail.stage && stage.status !== "SUCCESS")
        ) {
          stage.status = status;
        }
      }
      if (detail.message) progress.errors.push(detail.message);
    }, status);
    const text = status === "REVOKED"
      ? "export cancelled"
      : `export failed in ${detail.stage}: ${detail.message}`;
    await appendJobLog(sql, exportId, text, status === "REVOKED" ? "warning" : "error");
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
        await sql`
          update data_exports set status = 'STARTED', error = null, error_stage = null,
            run_id = ${runId}, workflow_id = ${workflowExecution?.workflowId ?? null},
            started_at = coalesce(started_at, now()), updated_at = now()
          where id = ${row.id}`;
        // before any row is counted or read: the data this export sees is at least this new
        await recordSourceVersions(sql, row.id);
        await updateJobProgress(sql, row.id, () => {}, "STARTED");
        await appendJobLog(sql, row.id, `export started: format ${row.format}, run ${runId}`);
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

    /** One COUNT with the export's filters; stored as the stage's total. */
    async countRecords(input: { exportId: number }): Promise<number> {
      return await keepAlive(async () => {
        const row = await requireExport(input.exportId);
        const exporter = requireExporter(row.format);
        const total = await exporter.count(await queryContext(row));
        await updateJobProgress(sql, row.id, (progress) => {
          setStage(progress, STAGES.export.key, {
            status: "STARTED",
            params: { total_records: total, records_exported: 0 },
          });
        });
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
      const ctx = Context.current();
      const row = await requireExport(input.exportId);
      const exporter = requireExporter(row.format, exportOptions(row));
      const query = await queryContext(row);
      const previous = (ctx.info.heartbeatDetails as
        | ExportHeartbeat
        | LegacyExportHeartbeat
        | undefined)?.checkpoint;

      let start: Omit<ExportCheckpoint, "hashState"> & { hashState?: string } | undefined;
      if (previous && previous.upload.uploadId === row.upload_id) {
        try {
          // compact checkpoints name the upload; older ones carry every part
          const upload = "parts" in previous.upload
            ? await storage.resumeUpload(previous.upload)
            : await storage.recoverUpload(previous.upload);
          start = { ...previous, upload };
        } catch (error) {
          if (!isLostUpload(error)) throw error; // storage unreachable: retry later
          await appendJobLog(
            sql,
            row.id,
            `could not resume the upload, starting over: ${error}`,
            "warning",
          );
        }
        if (start) {
          await sql`update data_exports set resumed_count = resumed_count + 1 where id = ${row.id}`;
          await appendJobLog(
            sql,
            row.id,
            `resumed at ${describeState(previous.state)} after ${previous.records} records ` +
              `(attempt ${ctx.info.attempt})`,
            "warning",
          );
        }
      }
      if (!start) {
        if (row.upload_id && row.file_key) {
          await storage.abortUpload({ key: row.file_key, uploadId: row.upload_id });
        }
        await storage.ensureReady(); // the bucket may have been lost with its server
        // An attempt killed between beginning its upload and recording it left an upload no row
        // names. The key carries this export's UUID, so every upload under it is this export's.
        for (const orphan of await storage.listIncompleteUploads(input.fileKey)) {
          if (orphan.key === input.fileKey) await storage.abortUpload(orphan);
        }
        const upload = await storage.beginUpload(input.fileKey, exporter.contentType);
        await sql`
          update data_exports set upload_id = ${upload.uploadId}, file_key = ${input.fileKey},
            updated_at = now()
          where id = ${row.id}`;
        start = { state: exporter.initialState(query), records: 0, upload };
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
            total: input.totalRecords,
            percent: input.totalRecords > 0
              ? Math.round((writer.records / input.totalRecords) * 1000) / 10
              : 100,
            rowsPerSecond: seconds > 0 ? Math.round((writer.records - startRecords) / seconds) : 0,
            bytes: writer.bytes,
          },
          checkpoint: {
            state: durable.state,
            records: durable.records,
            upload: uploadRef(durable.upload),
            hashState: durable.hashState,
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
            const chunk = await exporter.next(query, writer.state, { limit });
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
            if (chunk.records > 0 || done) {
              await reportProgress(row.id, writer.records, input.totalRecords);
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

    /** Records the final statistics and marks the export SUCCESS. Idempotent. */
    async saveStats(
      input: { exportId: number; records: number; fileSize: number; checksum: string },
    ): Promise<void> {
      const fileUrl = exportDownloadUrl(config, input.exportId);
      const checksum = `sha256:${input.checksum}`;
      const [before] = await sql<{ status: string; checksum: string | null }[]>`
        select status, checksum from data_exports where id = ${input.exportId}`;
      if (!before) throw exportNotFound(input.exportId);
      if (before.status === "SUCCESS" && before.checksum === checksum) return; // ran already
      await sql`
        update data_exports set status = 'SUCCESS', record_count = ${input.records},
          file_size = ${input.fileSize}, checksum = ${checksum}, upload_id = null,
          finished_at = now(), updated_at = now()
        where id = ${input.exportId}`;
      await updateJobProgress(sql, input.exportId, (progress) => {
        setStage(progress, STAGES.export.key, {
          status: "SUCCESS",
          progress: 1,
          params: { records_exported: input.records },
        });
        setStage(progress, STAGES.upload.key, {
          status: "SUCCESS",
          progress: 1,
          params: { file_url: fileUrl },
        });
      }, "SUCCESS");
      await appendJobLog(
        sql,
        input.exportId,
        `export finished: ${input.records} records, ${input.fileSize} bytes`,
      );
    },

    /** Marks a failed export FAILURE with its error and stage; removes partial files. */
    async markFailed(input: { exportId: number; stage: string; message: string }): Promise<void> {
      await markEnded(input.exportId, "FAILURE", input);
    },

    /** Marks a cancelled export REVOKED; removes partial files. */
    async markRevoked(input: { exportId: number; stage: string }): Promise<void> {
      await markEnded(input.exportId, "REVOKED", { stage: input.stage });
    },

    /** Aborts an upload whose export no longer exists. Idempotent. */
    async discardUpload(input: { upload: Pick<UploadState, "key" | "uploadId"> }): Promise<void> {
      await storage.abortUpload(input.upload);
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
        console.log(JSON.stringify({ msg: "housekeeping", ...report }));
        return report;
      });
    },
  };
}

/** The activity functions, as workflows see them. */
export type ExportActivities = ReturnType<typeof createActivities>;
