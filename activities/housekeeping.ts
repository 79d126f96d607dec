/**
 * The housekeeping sweep: what a crash, a lost checkpoint or a deleted row can leave in storage,
 * found by comparing storage with the `data_exports` table.
 */
import type { Sql } from "../db/client.ts";
import type { ObjectStorage } from "../storage/types.ts";
import type { HousekeepingReport } from "./types.ts";

/** Where export files live (see `exportFileKey`). */
const EXPORTS_PREFIX = "exports/";
/** `exports/<project slug>_export-<id>.<extension>` → the export id. */
const EXPORT_KEY = /^exports\/[^/]*_export-(\d+)\.[^/]+$/;

/**
 * Aborts incomplete uploads under `exports/` whose upload id is not the `upload_id` of a
 * running (PENDING/STARTED) export and that are at least `minAgeSeconds` old (an upload is
 * begun a moment before its id is recorded), and removes export files whose row is gone.
 */
export async function sweepStorage(
  sql: Sql,
  storage: ObjectStorage,
  options: { minAgeSeconds: number; now?: Date },
): Promise<HousekeepingReport> {
  const now = (options.now ?? new Date()).getTime();
  const report: HousekeepingReport = { abortedUploads: [], removedFiles: [] };

  const uploads = await storage.listIncompleteUploads(EXPORTS_PREFIX);
  const live = new Set(
    (await sql<{ upload_id: string }[]>`
      select upload_id from data_exports
      where upload_id is not null and status in ('PENDING', 'STARTED')`).map((r) => r.upload_id),
  );
  for (const upload of uploads) {
    if (live.has(upload.uploadId)) continue;
    const age = upload.initiated ? (now - upload.initiated.getTime()) / 1000 : Infinity;
    if (age < options.minAgeSeconds) continue;
    await storage.abortUpload(upload);
    report.abortedUploads.push({ key: upload.key, uploadId: upload.uploadId });
  }

  const keys = await storage.listObjects(EXPORTS_PREFIX);
  const ids = new Map<string, number>();
  for (const key of keys) {
    const match = EXPORT_KEY.exec(key);
    if (match) ids.set(key, Number(match[1]));
  }
  const wanted = [...new Set(ids.values())];
  const existing = new Set(
    wanted.length === 0
      ? []
      : (await sql<{ id: number }[]>`select id from data_exports where id in ${sql(wanted)}`)
        .map((r) => r.id),
  );
  for (const [key, id] of ids) {
    if (existing.has(id)) continue;
    await storage.deleteObject(key);
    report.removedFiles.push(key);
  }
  return report;
}
