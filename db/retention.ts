/**
 * Retention of export files, after GBIF's downloads (`eraseAfter`: a download's file is erased
 * after a date its owner can move; the download's record stays). A SUCCESS export gets
 * `expires_at` when it finishes (`markExportSucceeded`); an owner or a project manager can move
 * it ({@link extendExport}); housekeeping deletes the file of every SUCCESS export whose
 * `expires_at` has passed and marks it EXPIRED ({@link expireExport}). docs/retention.md.
 */
import type { Sql } from "./client.ts";
import type { ExportStatus } from "./exports.ts";
import { applyJobProgress, setStage, STAGES } from "./job_progress.ts";
import { inTransaction } from "./transaction.ts";
import { insertEndEvents } from "./webhooks.ts";

/** What {@link extendExport} did. */
export type ExtendOutcome =
  | { outcome: "extended"; expiresAt: Date | null }
  | { outcome: "not_success"; status: ExportStatus }
  | { outcome: "missing" };

/**
 * Moves the `expires_at` of a SUCCESS export to now + `seconds` (null `seconds`: kept forever),
 * its log line in the same transaction. An export kept forever (`expires_at` null) stays so: an
 * extension never shortens forever. Any other status changes nothing (`not_success`), so an
 * extension that loses the race with housekeeping's {@link expireExport} (which holds the row
 * lock while it deletes the file) finds EXPIRED. Shape: `{outcome: "extended", expiresAt}`.
 * Source of the rule: GBIF download `eraseAfter`, which the download's owner may postpone.
 */
export async function extendExport(
  sql: Sql,
  exportId: number,
  extension: { seconds: number | null; by: string },
): Promise<ExtendOutcome> {
  return await inTransaction(sql, async (tx) => {
    const [row] = await tx<{ status: ExportStatus; expires_at: Date | null }[]>`
      select status, expires_at from data_exports where id = ${exportId} for update`;
    if (!row) return { outcome: "missing" as const };
    if (row.status !== "SUCCESS") return { outcome: "not_success" as const, status: row.status };
    if (row.expires_at === null) return { outcome: "extended" as const, expiresAt: null };
    const [updated] = await tx<{ expires_at: Date | null }[]>`
      update data_exports set
        expires_at = case when ${extension.seconds}::bigint is not null
          then now() + make_interval(secs => ${extension.seconds}::bigint) end,
        updated_at = now()
      where id = ${exportId}
      returning expires_at`;
    const until = updated.expires_at?.toISOString() ?? "kept forever";
    await tx`
      insert into job_logs (job_id, level, message)
      select id, 'info', ${`retention extended by ${extension.by}: ${until}`}
      from jobs where data_export_id = ${exportId}`;
    return { outcome: "extended" as const, expiresAt: updated.expires_at };
  });
}

/** A SUCCESS export whose retention has ended: `{id, file_key}`. */
export interface ExpiredExport {
  id: number;
  file_key: string | null;
}

/** The SUCCESS exports whose `expires_at` has passed, soonest first, at most `limit`. */
export async function findExpiredExports(
  sql: Sql,
  options: { limit: number },
): Promise<ExpiredExport[]> {
  return await sql<ExpiredExport[]>`
    select id, file_key from data_exports
    where status = 'SUCCESS' and expires_at <= now()
    order by expires_at, id
    limit ${options.limit}`;
}

/**
 * SUCCESS → EXPIRED for an export whose `expires_at` has passed, in one transaction that holds
 * the row lock while `removeFile` deletes its file: the status EXPIRED (the row, its request,
 * filters, counts, checksum and `file_key` stay), its job EXPIRED (stages stay SUCCESS), and the
 * log line. Crash-safe and retry-safe: a crash after the delete leaves the export SUCCESS with its
 * expiry passed, so the next run deletes again (a missing object is no error) and marks it; an
 * export found no longer SUCCESS, or extended meanwhile, is left alone (returns false). An
 * extension waits for the lock and then finds EXPIRED. Source of the rule: GBIF download
 * `eraseAfter` (the file is erased, the download's record stays).
 */
export async function expireExport(
  sql: Sql,
  exportId: number,
  removeFile: (key: string) => Promise<void>,
): Promise<boolean> {
  return await inTransaction(sql, async (tx) => {
    await tx`select set_config('application_name', 'ami-exports transition EXPIRED', true)`;
    const [row] = await tx<{ file_key: string | null; expires_at: Date }[]>`
      select file_key, expires_at from data_exports
      where id = ${exportId} and status = 'SUCCESS' and expires_at <= now()
      for update`;
    if (!row) return false;
    if (row.file_key) await removeFile(row.file_key);
    await tx`
      update data_exports set status = 'EXPIRED', updated_at = now() where id = ${exportId}`;
    // the job EXPIRED, and its upload stage no longer names the deleted file's URL (every
    // other read of an EXPIRED export says it has none)
    await applyJobProgress(tx, exportId, (progress) => {
      setStage(progress, STAGES.upload.key, { params: { file_url: null } });
    }, "EXPIRED");
    await tx`
      insert into job_logs (job_id, level, message)
      select id, 'info',
        ${`export expired: file removed, its retention ended ${row.expires_at.toISOString()}`}
      from jobs where data_export_id = ${exportId}`;
    await insertEndEvents(tx, exportId, "EXPIRED"); // webhook outbox (docs/webhooks.md)
    return true;
  });
}
