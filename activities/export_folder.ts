/**
 * The cleanup of an ended export that no longer names its file: everything under its own folder.
 */
import type { Config } from "../config/mod.ts";
import type { Sql } from "../db/client.ts";
import { inTransaction } from "../db/transaction.ts";
import type { ObjectStorage } from "../storage/types.ts";
import { exportsRoot } from "./file_keys.ts";

/**
 * Removes every object and incomplete upload under the export's folder (`<STORAGE_PREFIX>exports/
 * <file_uuid>/`, which holds its file, its uploads and its shards and nothing of any other
 * export) while its row still reads `status`, holding a share lock on the row until storage has
 * answered: a retry making it PENDING meanwhile (`markExportPending` updates the row) waits, and
 * then finds nothing of its own removed. For a `markFailed`/`markRevoked` retried after an
 * attempt that committed the end (which clears `file_key`) was stopped before its cleanup (a
 * worker's SIGTERM, a timeout). Returns false, removing nothing, when the row reads another
 * status or is gone. Storage errors are thrown (the caller logs them; housekeeping sweeps later).
 */
export async function discardEndedExportFolder(
  deps: { sql: Sql; storage: ObjectStorage; config: Pick<Config, "storagePrefix"> },
  exportId: number,
  status: "FAILURE" | "REVOKED",
): Promise<boolean> {
  const { sql, storage, config } = deps;
  return await inTransaction(sql, async (tx) => {
    const [row] = await tx<{ file_uuid: string }[]>`
      select file_uuid::text from data_exports
      where id = ${exportId} and status = ${status} for share`;
    if (!row) return false;
    await removeUnder(storage, `${exportsRoot(config.storagePrefix)}${row.file_uuid}/`);
    return true;
  });
}

/** Aborts every incomplete upload and removes every object whose key starts with `prefix`. */
export async function removeUnder(storage: ObjectStorage, prefix: string): Promise<void> {
  for (const upload of await storage.listIncompleteUploads(prefix)) {
    await storage.abortUpload(upload);
  }
  for (const key of await storage.listObjects(prefix)) await storage.deleteObject(key);
}
