/** The unsharded export: stream the records into one upload, then publish it. */
import {
  appendJobLog,
  exportOptions,
  putSkippedCount,
  recordCount,
  recordedSourceVersions,
  recordExportFile,
  setStage,
  STAGES,
  updateRunProgress,
} from "../db/exports.ts";
import { sameSourceVersions } from "../db/snapshot.ts";
import { getExporter } from "../registry/mod.ts";
import { currentRunId, type ExportAccess } from "./export_access.ts";
import { exportNotFound } from "./failures.ts";
import { shardPrefix } from "./file_keys.ts";
import { keepAlive } from "./keep_alive.ts";
import { objectSideStore, sidePrefix } from "./side_store.ts";
import { streamToUpload } from "./stream_to_upload.ts";
import type { ExportedFile } from "./types.ts";

/** `exportRecords` and `finishUpload`. */
// deno-lint-ignore explicit-function-return-type
export function createExportRecordsActivities(access: ExportAccess) {
  const {
    sql,
    storage,
    config,
    requireExport,
    requireExporter,
    queryContext,
    discardShardFiles,
    notRunning,
  } = access;
  /** Where the unsharded file's stream keeps its side objects (registry/types.ts, SideStore). */
  const fileSidePrefix = (fileUuid: string): string =>
    sidePrefix(shardPrefix(config.storagePrefix, fileUuid), "file");

  /**
   * The export stage's progress and the export's `skipped_count`, in one transaction, only
   * while run `runId` owns the export (db/job_progress.ts `updateRunProgress`): a late report of
   * an earlier run or attempt's run after a retry changes nothing. Fails `ExportNotFound` when
   * the export is gone.
   */
  async function reportProgress(
    exportId: number,
    runId: string | null,
    report: { records: number; total: number; skipped: number | null },
  ): Promise<void> {
    const { records, total, skipped } = report;
    const written = await updateRunProgress(sql, exportId, {
      runId,
      also: async (tx) => {
        await tx`update data_exports set skipped_count = ${skipped} where id = ${exportId}`;
      },
    }, (progress) => {
      setStage(progress, STAGES.export.key, {
        status: "STARTED",
        progress: total > 0 ? records / total : 1,
        params: { records_exported: records },
      });
      if (skipped !== null) putSkippedCount(progress, skipped);
    });
    if (written) return;
    const [found] = await sql`select 1 from data_exports where id = ${exportId}`;
    if (!found) throw exportNotFound(exportId);
  }

  return {
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
      const runId = currentRunId();
      return await streamToUpload(access, {
        row,
        stream: exporter,
        side: exporter.sideObjects
          ? objectSideStore(storage, fileSidePrefix(row.file_uuid))
          : undefined,
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
          // only on a running export: one cancelled meanwhile gets no upload its cleanup missed
          const recorded = await recordExportFile(sql, row.id, {
            fileKey: input.fileKey,
            uploadId: upload.uploadId,
            runId,
          });
          if (!recorded) {
            await storage.abortUpload(upload);
            throw await notRunning(row.id);
          }
        },
        async snapshotTaken(versions, inSnapshot) {
          if (sameSourceVersions(recordedSourceVersions(row), versions)) return input.totalRecords;
          // the data changed between the count and this snapshot: count again in it, so that the
          // total the export announces is the number of records its file holds
          const total = await inSnapshot((q) => exporter.count(q));
          if (!(await recordCount(sql, row.id, { total, versions, runId }))) {
            throw await notRunning(row.id);
          }
          await appendJobLog(
            sql,
            row.id,
            `the data changed since the count: ${total} records in the export's snapshot ` +
              `(counted ${input.totalRecords} before)`,
          );
          return total;
        },
        progress: (records, total, skipped) =>
          reportProgress(row.id, runId, { records, total, skipped }),
      });
    },

    /**
     * Publishes the uploaded object, then removes the stream's side objects (formats that
     * declare `sideObjects`). Idempotent. When the export ended meanwhile (a cancel: it is no
     * longer STARTED), removes the object it published and fails, non-retryable (`ExportEnded`;
     * `ExportNotFound` when it is gone).
     */
    async finishUpload(
      input: { exportId: number; upload: ExportedFile["upload"] },
    ): Promise<number> {
      return await keepAlive(async () => {
        const row = await requireExport(input.exportId);
        const runId = currentRunId();
        await updateRunProgress(sql, input.exportId, { runId }, (progress) => {
          setStage(progress, STAGES.upload.key, { status: "STARTED" });
        });
        const { size } = await storage.completeUpload(input.upload);
        const recorded = await recordExportFile(sql, input.exportId, {
          fileKey: input.upload.key,
          uploadId: null,
          runId,
        });
        if (!recorded) {
          // ended by a cancel while this ran (its cleanup may have missed this object): remove it
          await storage.deleteObject(input.upload.key);
          throw await notRunning(input.exportId);
        }
        const exporter = getExporter(row.format);
        if (exporter?.kind === "stream" && exporter.sideObjects) {
          await discardShardFiles(fileSidePrefix(row.file_uuid));
        }
        return size;
      });
    },
  };
}
