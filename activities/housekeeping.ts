/**
 * The housekeeping sweep: what a crash, a lost checkpoint or a deleted row can leave in storage.
 *
 * It removes only what this database records: an object or upload is this deployment's when its
 * key carries the `file_uuid` of one of its exports (`exports/<file_uuid>/…`, see
 * `exportFileKey`) or is a `file_key` it recorded. Anything else under the prefix belongs to
 * another database or deployment sharing the bucket or directory, and is never touched.
 */
import type { Sql } from "../db/client.ts";
import { inTransaction } from "../db/transaction.ts";
import type { ObjectStorage } from "../storage/types.ts";
import type { ExportAccess } from "./export_access.ts";
import { exportsRoot } from "./file_keys.ts";
import { keepAlive } from "./keep_alive.ts";
import type { HousekeepingReport } from "./types.ts";
import { sweepEmailOutbox } from "./email_outbox.ts";
import { sweepWebhookOutbox } from "./webhook_outbox.ts";

/** `<root><uuid>/<file name>` or `<root><uuid>/shards/<shard>` → the uuid (and `shards/`). */
const UUID_SEGMENT =
  /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/(shards\/)?[^/]+$/;

/** What this database knows about a key. */
interface Owner {
  /** The export row, when it still exists. */
  status?: string;
  uploadId?: string | null;
  fileKey?: string | null;
  /** The row is gone (`deleted_export_files`): everything under its uuid is leftover. */
  deleted: boolean;
  fileUuid: string;
  /** The key is one of the export's shard objects or uploads (`<uuid>/shards/…`). */
  shard?: boolean;
}

/**
 * Under `root` (`<STORAGE_PREFIX>exports/`):
 * - aborts incomplete uploads of this database's exports that no running export owns (its row
 *   is gone, ended, or names another upload id) and that are at least `minAgeSeconds` old (an
 *   upload is begun a moment before its id is recorded);
 * - removes files of deleted exports and of exports that ended FAILURE/REVOKED (or EXPIRED, whose
 *   file `expireExports` deletes itself: one left behind is removed here);
 * - treats shard objects and uploads (`<uuid>/shards/…`) as live while their export is PENDING
 *   or STARTED, and as leftovers once it ended (any status) or was deleted;
 * - forgets deleted exports older than `minAgeSeconds` once nothing of theirs is left.
 *
 * Each abort and delete re-reads its export's row under a share lock and happens only if the
 * row still says leftover ({@link whileStillLeftover}): a retry that made the export live
 * after the sweep listed it keeps its file.
 */
export async function sweepStorage(
  sql: Sql,
  storage: ObjectStorage,
  options: { minAgeSeconds: number; root: string; now?: Date },
): Promise<HousekeepingReport> {
  const now = (options.now ?? new Date()).getTime();
  const { root } = options;
  const report: HousekeepingReport = { abortedUploads: [], removedFiles: [] };

  const uploads = await storage.listIncompleteUploads(root);
  const objects = await storage.listObjects(root);
  const owners = await findOwners(sql, root, [...uploads.map((u) => u.key), ...objects]);

  for (const upload of uploads) {
    const owner = owners.get(upload.key);
    if (!owner) continue; // not this database's
    if (!uploadIsLeftover(owner, upload.uploadId)) continue;
    const age = upload.initiated ? (now - upload.initiated.getTime()) / 1000 : Infinity;
    if (age < options.minAgeSeconds) continue;
    const aborted = await whileStillLeftover(
      sql,
      owner,
      (current) => uploadIsLeftover(current, upload.uploadId),
      () => storage.abortUpload(upload),
    );
    if (aborted) report.abortedUploads.push({ key: upload.key, uploadId: upload.uploadId });
  }

  for (const key of objects) {
    const owner = owners.get(key);
    if (!owner || !objectIsLeftover(owner)) continue;
    if (await whileStillLeftover(sql, owner, objectIsLeftover, () => storage.deleteObject(key))) {
      report.removedFiles.push(key);
    }
  }

  // Deleted exports with nothing left (or only young uploads, seen again next time) are done.
  const stillHeld = new Set(
    uploads.filter((u) => !report.abortedUploads.some((a) => a.uploadId === u.uploadId))
      .map((u) => owners.get(u.key)?.fileUuid).filter((u): u is string => !!u),
  );
  await sql`
    delete from deleted_export_files
    where deleted_at < ${new Date(now - options.minAgeSeconds * 1000)}
      and not (file_uuid = any(${[...stillHeld]}::uuid[]))`;
  return report;
}

/** An upload no running export owns: its export is gone, ended, or names another upload. */
function uploadIsLeftover(owner: Owner, uploadId: string): boolean {
  const live = !owner.deleted && ["PENDING", "STARTED"].includes(owner.status ?? "") &&
    (owner.shard || owner.uploadId === uploadId);
  return !live;
}

/**
 * An object no live export owns: a deleted export's, a shard of an export no longer running, or
 * the file of an export that ended FAILURE/REVOKED/EXPIRED. A file of a PENDING, STARTED or
 * SUCCESS export is never one.
 */
function objectIsLeftover(owner: Owner): boolean {
  if (owner.deleted) return true;
  return owner.shard
    ? !["PENDING", "STARTED"].includes(owner.status ?? "")
    : ["FAILURE", "REVOKED", "EXPIRED"].includes(owner.status ?? "");
}

/**
 * Runs `remove` only if `isLeftover` still holds for the owner as its row reads now, holding a
 * share lock on that row (`FOR SHARE`) until `remove` has returned. The owners the sweep read
 * at its start may be stale: an export it read as FAILURE may have been retried since, and its
 * new run publishes the same key (`exportFileKey` is stable across retries). Every transition
 * that makes an export live again updates its row (the retry's `markExportPending`, a run's
 * `markExportStarted`), so it waits for this lock: it either committed before the re-check,
 * which then sees the export live and removes nothing, or it runs after the removal, and the
 * new run writes its file afterwards. A row gone meanwhile was deleted (`deleted_export_files`
 * keeps its UUID): what is left of it is leftover. An owner that was already deleted stays so.
 * Returns true when it removed. Source of the rule: review finding "the housekeeping storage
 * sweep can delete a retried export's new file".
 */
async function whileStillLeftover(
  sql: Sql,
  owner: Owner,
  isLeftover: (current: Owner) => boolean,
  remove: () => Promise<void>,
): Promise<boolean> {
  if (owner.deleted) {
    await remove();
    return true;
  }
  return await inTransaction(sql, async (tx) => {
    const [row] = await tx<{ status: string; upload_id: string | null; file_key: string | null }[]>`
      select status, upload_id, file_key from data_exports
      where file_uuid = ${owner.fileUuid}::uuid
      for share`;
    const current: Owner = row
      ? { ...owner, status: row.status, uploadId: row.upload_id, fileKey: row.file_key }
      : { ...owner, status: undefined, deleted: true };
    if (!isLeftover(current)) return false;
    await remove();
    return true;
  });
}

/** Maps each key this database owns to its owner; keys it does not know are absent. */
async function findOwners(sql: Sql, root: string, keys: string[]): Promise<Map<string, Owner>> {
  const owners = new Map<string, Owner>();
  if (keys.length === 0) return owners;
  const uuidOf = new Map<string, string>();
  const shardKeys = new Set<string>();
  for (const key of keys) {
    const match = key.startsWith(root) ? UUID_SEGMENT.exec(key.slice(root.length)) : null;
    if (match) uuidOf.set(key, match[1]);
    if (match?.[2]) shardKeys.add(key);
  }
  const uuids = [...new Set(uuidOf.values())];
  const rows = await sql<
    {
      file_uuid: string;
      status: string | null;
      upload_id: string | null;
      file_key: string | null;
      deleted: boolean;
    }[]
  >`
    select file_uuid::text, status, upload_id, file_key, false as deleted
    from data_exports
    where file_uuid = any(${uuids}::uuid[]) or file_key = any(${keys})
    union all
    select file_uuid::text, null, upload_id, file_key, true
    from deleted_export_files
    where file_uuid = any(${uuids}::uuid[]) or file_key = any(${keys})`;
  const byUuid = new Map<string, Owner>();
  const byKey = new Map<string, Owner>();
  for (const row of rows) {
    const owner: Owner = {
      fileUuid: row.file_uuid,
      status: row.status ?? undefined,
      uploadId: row.upload_id,
      fileKey: row.file_key,
      deleted: row.deleted,
    };
    byUuid.set(row.file_uuid, owner);
    if (row.file_key) byKey.set(row.file_key, owner);
  }
  for (const key of keys) {
    const owner = shardKeys.has(key)
      ? byUuid.get(uuidOf.get(key) ?? "")
      : byKey.get(key) ?? byUuid.get(uuidOf.get(key) ?? "");
    if (owner) owners.set(key, shardKeys.has(key) ? { ...owner, shard: true } : owner);
  }
  return owners;
}

/** `sweepOrphans`. */
// deno-lint-ignore explicit-function-return-type
export function createHousekeepingActivities(access: ExportAccess) {
  const { sql, storage, config } = access;

  return {
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
        const webhookEvents = await sweepWebhookOutbox(access, { minAgeSeconds: 60 });
        const emails = await sweepEmailOutbox(access, { minAgeSeconds: 60 }); // docs/email.md
        console.log(JSON.stringify({ msg: "housekeeping", ...report, webhookEvents, emails }));
        return report;
      });
    },
  };
}
