/** How an export ends: SUCCESS with its statistics, FAILURE or REVOKED with its partial files removed. */
import { appendJobLog, findExport, markExportEnded, markExportSucceeded } from "../db/exports.ts";
import type { UploadState } from "../storage/types.ts";
import type { ExportAccess } from "./export_access.ts";
import { exportNotFound } from "./failures.ts";
import { exportDownloadUrl } from "./file_keys.ts";
import { describeError, keepAlive } from "./keep_alive.ts";
import { startExportEmails } from "./email_outbox.ts";
import { startExportDeliveries } from "./webhook_outbox.ts";

/** `saveStats`, `markFailed`, `markRevoked` and `discardUpload`. */
// deno-lint-ignore explicit-function-return-type
export function createExportOutcomeActivities(access: ExportAccess) {
  const { sql, storage, config, discardFiles } = access;
  const emailOn = config.email.smtpUrl !== undefined; // docs/email.md

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
    await markExportEnded(sql, exportId, { status, ...detail, email: emailOn });
    await startExportDeliveries(access, exportId); // webhooks of the end (docs/webhooks.md)
    await startExportEmails(access, exportId); // the user's email (docs/email.md)
  }

  return {
    /**
     * Records the final statistics and marks the export SUCCESS, the export and its job in one
     * transaction (db/export_transitions.ts `markExportSucceeded`). Idempotent.
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
