/** How an export ends: SUCCESS with its statistics, FAILURE or REVOKED with its partial files removed. */
import { appendJobLog, findExport, markExportEnded, markExportSucceeded } from "../db/exports.ts";
import type { UploadState } from "../storage/types.ts";
import type { ExportAccess } from "./export_access.ts";
import { exportEnded, exportNotFound } from "./failures.ts";
import { exportDownloadUrl } from "./file_keys.ts";
import { discardEndedExportFolder } from "./export_folder.ts";
import { describeError, keepAlive } from "./keep_alive.ts";
import { startExportEmails } from "./email_outbox.ts";
import { startExportDeliveries } from "./webhook_outbox.ts";

/** `saveStats`, `markFailed`, `markRevoked` and `discardUpload`. */
// deno-lint-ignore explicit-function-return-type
export function createExportOutcomeActivities(access: ExportAccess) {
  const { sql, storage, config, discardFiles } = access;
  const emailOn = config.email.smtpUrl !== undefined; // docs/email.md

  /**
   * Ends the export first, its row locked (`markExportEnded`: a SUCCESS committing meanwhile is
   * waited for and kept), then removes the files it had, only when this ended it (or an earlier
   * attempt did: the same status): a file is never removed under an export that succeeds.
   */
  async function markEnded(
    exportId: number,
    status: "FAILURE" | "REVOKED",
    detail: { message?: string; stage?: string },
  ): Promise<void> {
    const row = await findExport(sql, exportId);
    if (!row) return;
    // FAILURE only ends a running export: never a cancel's REVOKED (the run then failed on it)
    const ended = await markExportEnded(sql, exportId, {
      status,
      ...detail,
      email: emailOn,
      onlyRunning: status === "FAILURE",
    });
    if (!ended) {
      // a retry of this activity after it committed removes what is left; anything else (SUCCESS,
      // or another end) keeps its files
      const now = await findExport(sql, exportId);
      if (now?.status !== status) return;
    }
    try {
      if (ended) {
        await discardFiles({ ...row, file_key: ended.fileKey, upload_id: ended.uploadId });
      } else {
        // the attempt that ended it was stopped before its cleanup (a worker's SIGTERM, a
        // timeout): the row no longer names the file (the end cleared file_key), so everything
        // under the export's own folder goes, while the row still says it ended
        await discardEndedExportFolder(access, exportId, status);
      }
    } catch (error) {
      // Whatever failed the export may fail its cleanup too (storage down, a name the backend
      // refuses): the export has ended all the same. Its upload stays recorded (upload_id,
      // file_uuid) and the housekeeping sweep removes it later.
      await appendJobLog(
        sql,
        exportId,
        `could not remove the partial upload now (${describeError(error)}); housekeeping will`,
        "warning",
      );
    }
    await startExportDeliveries(access, exportId); // webhooks of the end (docs/webhooks.md)
    await startExportEmails(access, exportId); // the user's email (docs/email.md)
  }

  return {
    /**
     * Records the final statistics and marks the export SUCCESS, the export and its job in one
     * transaction (db/export_transitions.ts `markExportSucceeded`). Idempotent. Fails
     * (non-retryable `ExportEnded`) when the export ended meanwhile (a cancel), which it leaves
     * as it is with no SUCCESS event; `ExportNotFound` when it is gone.
     */
    async saveStats(
      input: { exportId: number; records: number; fileSize: number; checksum: string },
    ): Promise<void> {
      const outcome = await markExportSucceeded(sql, input.exportId, {
        records: input.records,
        fileSize: input.fileSize,
        checksum: `sha256:${input.checksum}`,
        fileUrl: exportDownloadUrl(config, input.exportId),
        retentionSeconds: config.retention.seconds,
        email: emailOn,
      });
      if (outcome === "missing") throw exportNotFound(input.exportId);
      if (outcome === "ended") {
        const now = await findExport(sql, input.exportId);
        if (!now) throw exportNotFound(input.exportId);
        throw exportEnded(input.exportId, now.status);
      }
      await startExportDeliveries(access, input.exportId); // webhooks (docs/webhooks.md)
      await startExportEmails(access, input.exportId); // the user's email (docs/email.md)
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
  };
}
