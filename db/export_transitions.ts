/**
 * The state transitions of an export: STARTED, SUCCESS, FAILURE or REVOKED, PENDING again. Each
 * writes the export, its job and the log line in one transaction.
 */
import type { Sql } from "./client.ts";
import {
  applyJobProgress,
  ENDED_STATUSES,
  type ExportStatus,
  initialProgress,
  insertJobLog,
  setStage,
  STAGES,
  type Transaction,
} from "./job_progress.ts";
import { inTransaction } from "./transaction.ts";
import { insertEndEmail } from "./emails.ts";
import { insertEndEvents } from "./webhooks.ts";

/**
 * Names the transaction in `pg_stat_activity.application_name` (reverted at its end), so that an
 * operator sees which state transition is running or waiting on a lock; the tests use it to kill
 * a worker between the statements of one transition.
 */
async function nameTransition(tx: Transaction, name: string): Promise<void> {
  await tx`select set_config('application_name', ${`ami-exports ${name}`}, true)`;
}

/**
 * PENDING (or a run reset from the Temporal UI) → STARTED, in one transaction: the export's
 * status and run, its job's status (a job that had ended starts from a fresh progress
 * document) and the log line. Returns false when the export is gone, when it has ended under
 * this same run (a late attempt after a cancel), or when it is REVOKED: a cancel is final until
 * a retry sets the export PENDING (`markExportPending`), so a run that started before the cancel
 * was written, or one the API started as the cancel found no open run (a retry's or a request's
 * run starting), never reopens it. Source: the races of a cancel (docs/operations.md,
 * "Cancel").
 */
export async function markExportStarted(
  sql: Sql,
  exportId: number,
  run: {
    runId: string | null;
    workflowId: string | null;
    /** The worker's `exportSettingsKey` for the export's format: what will shape its bytes. */
    settingsKey: string;
    /** The settings themselves (`exportSettingsDocument`), whose digest `settingsKey` is. */
    settings?: Record<string, unknown>;
    message: string;
  },
): Promise<boolean> {
  return await inTransaction(sql, async (tx) => {
    await nameTransition(tx, "transition STARTED");
    const [row] = await tx<{ previous: ExportStatus; run_id: string | null }[]>`
      select status as previous, run_id from data_exports where id = ${exportId} for update`;
    if (!row) return false;
    // a late attempt of the run that already ended (cancelled meanwhile) never reopens it, nor
    // does any run a cancelled (REVOKED) export; a new run (a reset in the Temporal UI) reopens
    // a FAILURE or SUCCESS one
    if (ENDED_STATUSES.includes(row.previous) && row.run_id === run.runId) return false;
    if (row.previous === "REVOKED") return false;
    await tx`
      update data_exports set status = 'STARTED', error = null, error_stage = null,
        run_id = ${run.runId}, workflow_id = ${run.workflowId}, settings_key = ${run.settingsKey},
        settings = ${run.settings ? tx.json(run.settings as never) : null}::jsonb,
        started_at = coalesce(started_at, now()), finished_at = null, updated_at = now(),
        slot_untaken_since = null -- its run has taken its admission's slot (db/export_queue.ts)
      where id = ${exportId}`;
    const restart = ENDED_STATUSES.includes(row.previous);
    await applyJobProgress(tx, exportId, (progress) => {
      if (restart) Object.assign(progress, initialProgress());
    }, "STARTED");
    await insertJobLog(tx, exportId, run.message, "info");
    return true;
  });
}

/**
 * What {@link markExportSucceeded} found: marked SUCCESS now, SUCCESS (or EXPIRED) already with
 * this checksum, `ended` (not STARTED: cancelled, failed, or reset to PENDING meanwhile, left as
 * it is), or `missing` (deleted).
 */
export type SucceededOutcome = "marked" | "already" | "ended" | "missing";

/**
 * STARTED → SUCCESS, in one transaction: the export's status and statistics, every stage of its
 * job SUCCESS at progress 1 with `records_exported` and `total_records` equal to the records in
 * the file, the job SUCCESS, `expires_at` (finish + `retentionSeconds`, null when 0: GBIF's
 * download `eraseAfter`, docs/retention.md), the log line, the webhook events and, with
 * `email`, the user's email (outboxes: docs/webhooks.md, docs/email.md). Idempotent: a retry
 * after it committed finds the same checksum and changes nothing ("already"), also once it
 * expired. Only from STARTED, the row locked: an export that ended meanwhile (a cancel's
 * REVOKED, whose cleanup removed the file) stays ended and sends no SUCCESS events ("ended").
 * Source: the races of a cancel (docs/operations.md, "Cancel").
 */
export async function markExportSucceeded(
  sql: Sql,
  exportId: number,
  stats: {
    records: number;
    fileSize: number;
    checksum: string;
    fileUrl: string;
    /** Seconds the file is kept (`config.retention.seconds`); 0 or absent: forever. */
    retentionSeconds?: number;
    /** Write the user's email of the end (SMTP_URL set, docs/email.md). */
    email?: boolean;
  },
): Promise<SucceededOutcome> {
  return await inTransaction(sql, async (tx) => {
    await nameTransition(tx, "transition SUCCESS");
    const [before] = await tx<{ status: ExportStatus; checksum: string | null }[]>`
      select status, checksum from data_exports where id = ${exportId} for update`;
    if (!before) return "missing";
    if (
      (before.status === "SUCCESS" || before.status === "EXPIRED") &&
      before.checksum === stats.checksum
    ) return "already";
    if (before.status !== "STARTED") return "ended";
    const retention = stats.retentionSeconds ?? 0;
    await tx`
      update data_exports set status = 'SUCCESS', record_count = ${stats.records},
        file_size = ${stats.fileSize}, checksum = ${stats.checksum}, upload_id = null,
        error = null, error_stage = null, finished_at = now(), updated_at = now(),
        expires_at = case when ${retention}::bigint > 0
          then now() + make_interval(secs => ${retention}::bigint) end
      where id = ${exportId}`;
    await applyJobProgress(tx, exportId, (progress) => {
      setStage(progress, STAGES.export.key, {
        status: "SUCCESS",
        progress: 1,
        params: { records_exported: stats.records, total_records: stats.records },
      });
      setStage(progress, STAGES.upload.key, {
        status: "SUCCESS",
        progress: 1,
        params: { file_url: stats.fileUrl },
      });
      for (const stage of progress.stages) {
        stage.status = "SUCCESS";
        stage.progress = 1;
      }
    }, "SUCCESS");
    await insertJobLog(
      tx,
      exportId,
      `export finished: ${stats.records} records, ${stats.fileSize} bytes`,
      "info",
    );
    await insertEndEvents(tx, exportId, "SUCCESS"); // webhook outbox (docs/webhooks.md)
    if (stats.email) await insertEndEmail(tx, exportId, "SUCCESS"); // email outbox (docs/email.md)
    return "marked";
  });
}

/** The files an export had when {@link markExportEnded} ended it (its row locked). */
export interface EndedFiles {
  /** Its file's key (a published file, or the key of its upload in progress); null: none. */
  fileKey: string | null;
  /** Its multipart upload in progress; null: none. */
  uploadId: string | null;
}

/**
 * PENDING or STARTED (or FAILURE, when a cancel follows) → FAILURE or REVOKED, in one
 * transaction: the export's status, error and stage, its file key cleared, every stage of its
 * job that had not succeeded set to `status` (no stage stays PENDING or STARTED), the error in
 * the job's errors, the log line, the webhook events and, with `email`, the user's email.
 * Returns the files it had ({@link EndedFiles}, read with the row locked, so a file recorded by
 * a transaction that committed first is among them): the caller removes them only now that
 * nothing records a file on the ended export (`recordExportFile`) and no SUCCESS can follow. A
 * SUCCESS (or EXPIRED) export and one already in `status` are left as they are (returns null,
 * the files untouched); with `onlyRunning`, any export not PENDING or STARTED. Source: the races
 * of a cancel (docs/operations.md, "Cancel").
 */
export async function markExportEnded(
  sql: Sql,
  exportId: number,
  ending: {
    status: "FAILURE" | "REVOKED";
    message?: string;
    stage?: string;
    /** Write the user's email of the end (SMTP_URL set, docs/email.md). */
    email?: boolean;
    /** Only from PENDING or STARTED (an export whose workflow is gone: activities/lost_exports.ts). */
    onlyRunning?: boolean;
  },
): Promise<EndedFiles | null> {
  const { status } = ending;
  return await inTransaction(sql, async (tx) => {
    await nameTransition(tx, `transition ${status}`);
    // the row locked before it is read: a SUCCESS committing meanwhile is waited for and seen
    const [before] = await tx<
      { status: ExportStatus; file_key: string | null; upload_id: string | null }[]
    >`
      select status, file_key, upload_id from data_exports where id = ${exportId} for update`;
    if (!before || ["SUCCESS", "EXPIRED", status].includes(before.status)) return null;
    if (ending.onlyRunning && !["PENDING", "STARTED"].includes(before.status)) return null;
    await tx`
      update data_exports set status = ${status}, error = ${ending.message ?? null},
        error_stage = ${ending.stage ?? null}, file_key = null, finished_at = now(),
        updated_at = now()
      where id = ${exportId}`;
    await applyJobProgress(tx, exportId, (progress) => {
      for (const stage of progress.stages) {
        if (stage.status !== "SUCCESS") stage.status = status;
      }
      if (ending.message) progress.errors.push(ending.message);
    }, status);
    const text = status === "REVOKED"
      ? "export cancelled"
      : `export failed in ${ending.stage}: ${ending.message}`;
    await insertJobLog(tx, exportId, text, status === "REVOKED" ? "warning" : "error");
    await insertEndEvents(tx, exportId, status); // webhook outbox (docs/webhooks.md)
    if (ending.email) await insertEndEmail(tx, exportId, status); // email outbox (docs/email.md)
    return { fileKey: before.file_key, uploadId: before.upload_id };
  });
}

/**
 * Records the key of the export's file and its upload in progress (`uploadId` null: published,
 * or none yet), only while the export is STARTED under run `file.runId` (the run that owns the
 * row: a late activity of an earlier run, after a retry or a reset, names no file on the new
 * run's export). Returns false when it is not (ended:
 * cancelled or failed meanwhile, whose cleanup has run or runs on what it recorded; retried or
 * reset: another run's; or gone):
 * the caller then removes what it made itself. So a write of a streaming or final activity still
 * in flight after a cancel never names a file on an ended export, and every file is removed by
 * whichever of the two commits second. Source: the races of a cancel (docs/operations.md,
 * "Cancel").
 */
export async function recordExportFile(
  sql: Sql,
  exportId: number,
  file: { fileKey: string; uploadId: string | null; runId: string | null },
): Promise<boolean> {
  const recorded = await sql`
    update data_exports set file_key = ${file.fileKey}, upload_id = ${file.uploadId},
      updated_at = now()
    where id = ${exportId} and status = 'STARTED' and run_id is not distinct from ${file.runId}`;
  return recorded.count > 0;
}

/**
 * FAILURE or REVOKED → PENDING for a retry, in one transaction: the export's error and
 * statistics cleared and its job back to a fresh progress document. Returns false when the
 * export is no longer FAILURE or REVOKED.
 */
export async function markExportPending(sql: Sql, exportId: number): Promise<boolean> {
  return await inTransaction(sql, async (tx) => {
    await nameTransition(tx, "transition PENDING");
    const reset = await tx`
      update data_exports set status = 'PENDING', error = null, error_stage = null,
        record_count = 0, file_size = 0, checksum = null, finished_at = null, updated_at = now(),
        source_version = null, global_source_version = null, settings_key = null, settings = null,
        request_lsn = pg_current_wal_lsn(), -- a retry reads what was written before it (docs/replica.md)
        started_at = null, queued_at = now(), -- it waits and starts anew (db/export_queue.ts)
        slot_untaken_since = null
      where id = ${exportId} and status in ('FAILURE', 'REVOKED')`;
    if (reset.count === 0) return false;
    await tx`
      update jobs set status = 'PENDING', progress = ${tx.json(initialProgress() as never)},
        started_at = null, finished_at = null, updated_at = now()
      where data_export_id = ${exportId}`;
    await insertJobLog(tx, exportId, "export retried", "info");
    return true;
  });
}
