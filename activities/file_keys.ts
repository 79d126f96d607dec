/**
 * Where an export's objects live: its file's key, its shards' prefix, the root of every export of
 * this deployment, and the URL that downloads the file through the API.
 */
import type { Config } from "../config/mod.ts";
import { exportFileName, fileNameBudget } from "../storage/key_bounds.ts";

/**
 * The object key of an export's file: `<STORAGE_PREFIX>exports/<file_uuid>/<project
 * slug>_export-<id>.<extension>`. The UUID is the export's own (`data_exports.file_uuid`), so
 * two databases or deployments sharing one bucket or directory never write, read or delete each
 * other's files even with equal ids and slugs; the last segment is the original platform's file
 * name, which downloads keep.
 *
 * The slug is user-controlled: the file name is made safe and bounded by
 * {@link exportFileName} (`/`, controls and bidirectional marks replaced, cut at a character
 * boundary so the name is at most 255 bytes of UTF-8, POSIX NAME_MAX, with `_export-<id>.<ext>`
 * kept whole), and to what is left of S3's 1,024-byte key limit after the prefix. With a
 * `STORAGE_PREFIX` that the configuration accepted (config/mod.ts), the key is at most
 * 1,024 bytes. Throws a RangeError only when the prefix leaves no room for the name's tail.
 */
export function exportFileKey(
  export_: { storagePrefix: string; fileUuid: string; projectSlug: string; exportId: number },
  extension: string,
): string {
  const { storagePrefix, fileUuid, projectSlug, exportId } = export_;
  const dir = `${exportsRoot(storagePrefix)}${fileUuid}/`;
  return `${dir}${exportFileName({ projectSlug, exportId, extension }, fileNameBudget(dir))}`;
}

/**
 * The key prefix of an export's shard objects, `<STORAGE_PREFIX>exports/<file_uuid>/shards/`:
 * under the export's own UUID, so isolation and housekeeping treat them as the export's. No
 * user-controlled part: with an accepted `STORAGE_PREFIX` its keys
 * (`shards/<nnnn>.<extension>`) are shorter than the file's.
 */
export function shardPrefix(storagePrefix: string, fileUuid: string): string {
  return `${exportsRoot(storagePrefix)}${fileUuid}/shards/`;
}

/** The key prefix under which every export file of this deployment lives. */
export function exportsRoot(storagePrefix: string): string {
  return `${storagePrefix}exports/`;
}

/** The stable URL (through the API) that downloads an export's file. */
export function exportDownloadUrl(config: Config, exportId: number): string {
  return `${config.publicBaseUrl}/api/v2/exports/${exportId}/download/`;
}
