/**
 * The filesystem backend: the embedded default for a quick start and single-machine setups.
 *
 * An upload is a temp file `<dir>/.uploads/<uuid>.part` that grows by fsynced appends, plus a
 * sidecar `<uuid>.json` naming its key; completion renames it into place atomically. Objects are
 * served by the API at `/files/<key>` behind an HMAC-signed, expiring URL
 * ({@link verifyFileSignature}, {@link resolveFilePath}).
 */
import { Buffer } from "node:buffer";
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { basename, dirname, join, resolve, sep } from "node:path";
import { checkByteRange } from "./byte_range.ts";
import { checkComposeSource } from "./compose.ts";
import { completedEarlier } from "./completed_upload.ts";
import { InvalidKeyError, KeyOutOfBoundsError, UploadNotFoundError } from "./errors.ts";
import {
  keyBoundsProblem,
  MAX_PATH_BYTES,
  pathBoundsProblem,
  utf8ByteLength,
} from "./key_bounds.ts";
import type { IncompleteUpload, ObjectStorage, UploadRef, UploadState } from "./types.ts";

/** Where files live and how their download URLs are built and signed. */
export interface FsStorageOptions {
  dir: string;
  /** Base URL of the API that serves `/files/<key>`, without a trailing slash. */
  publicBaseUrl: string;
  signingSecret: string;
}

const UPLOADS_DIR = ".uploads";
/** A UUID as `crypto.randomUUID()` writes it: upload ids, and export folders (`file_uuid`). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What beginUpload records beside the temp file, so an abandoned upload can be reported. */
interface UploadSidecar {
  key: string;
  contentType: string;
  initiated: string;
}

/**
 * The path of object `key` under `dir`. Refuses keys that could reach outside it: empty or
 * absolute keys, backslashes, control characters, empty segments and segments starting with a
 * dot (`..`, `.`, and the hidden `.uploads/` area), with an {@link InvalidKeyError}; and keys no
 * file can have, with a {@link KeyOutOfBoundsError}: a segment longer than 255 bytes of UTF-8 (POSIX
 * NAME_MAX), a path longer than 4,095 bytes (Linux PATH_MAX), or not well-formed Unicode
 * (storage/key_bounds.ts). Creating an object also needs the key within S3's 1,024 bytes
 * ({@link checkNewKey}); reading and deleting do not, so files written before that rule stay
 * reachable.
 */
export function resolveFilePath(dir: string, key: string): string {
  if (typeof key !== "string" || key.length === 0) throw new InvalidKeyError(key, "empty");
  if (key.length > MAX_PATH_BYTES) {
    throw new KeyOutOfBoundsError(key, `longer than the ${MAX_PATH_BYTES} bytes of Linux PATH_MAX`);
  }
  if (key.startsWith("/")) throw new InvalidKeyError(key, "absolute");
  // deno-lint-ignore no-control-regex -- control characters are what is being refused
  if (/[\x00-\x1f\x7f\\]/.test(key)) {
    throw new InvalidKeyError(key, "contains a backslash or a control character");
  }
  for (const segment of key.split("/")) {
    if (segment === "") throw new InvalidKeyError(key, "empty path segment");
    if (segment.startsWith(".")) {
      throw new InvalidKeyError(key, `path segment starts with a dot: ${segment}`);
    }
  }
  const root = resolve(dir);
  const tooLong = pathBoundsProblem(utf8ByteLength(root), key);
  if (tooLong) throw new KeyOutOfBoundsError(key, tooLong);
  const path = resolve(root, key);
  if (!path.startsWith(root + sep)) throw new InvalidKeyError(key, "outside the storage directory");
  return path;
}

/**
 * Refuses, with a {@link KeyOutOfBoundsError}, a key that breaks the contract both backends share
 * for new objects: at most 1,024 bytes of UTF-8 (S3 object key naming guidelines), well-formed.
 */
function checkNewKey(key: string): void {
  const problem = keyBoundsProblem(key);
  if (problem) throw new KeyOutOfBoundsError(key, problem);
}

/** The HMAC-SHA256 (hex) of a download URL's parameters; JSON keeps the fields unambiguous. */
function fileSignature(
  secret: string,
  key: string,
  expires: number,
  filename: string | undefined,
): string {
  return createHmac("sha256", secret)
    .update(JSON.stringify([key, expires, filename || null]))
    .digest("hex");
}

/**
 * Checks a `/files/<key>?expires=&signature=&filename=` request: true only when the signature
 * covers exactly this key, expiry and filename, and `now` (milliseconds, default the current
 * time) is before the expiry (Unix seconds). Compares in constant time.
 */
export function verifyFileSignature(
  secret: string,
  key: string,
  expires: string | number,
  signature: string,
  filename?: string,
  now: number = Date.now(),
): boolean {
  const expiresAt = typeof expires === "number"
    ? expires
    : /^\d{1,12}$/.test(expires)
    ? Number(expires)
    : NaN;
  if (!Number.isSafeInteger(expiresAt) || now >= expiresAt * 1000) return false;
  if (typeof signature !== "string" || !/^[0-9a-f]{64}$/i.test(signature)) return false;
  const expected = Buffer.from(fileSignature(secret, key, expiresAt, filename), "hex");
  return timingSafeEqual(expected, Buffer.from(signature, "hex"));
}

/** Object storage in a local directory. */
export function createFsStorage(options: FsStorageOptions): ObjectStorage {
  const root = resolve(options.dir);
  const uploadsDir = join(root, UPLOADS_DIR);
  const baseUrl = options.publicBaseUrl.replace(/\/+$/, "");

  function uploadPaths(uploadId: string): { part: string; sidecar: string } {
    if (!UUID.test(uploadId)) throw new Error(`invalid upload id: ${uploadId}`);
    return {
      part: join(uploadsDir, `${uploadId}.part`),
      sidecar: join(uploadsDir, `${uploadId}.json`),
    };
  }

  function checkBackend(state: Pick<UploadState, "backend" | "key">): void {
    if (state.backend !== "fs") {
      throw new Error(`upload state belongs to the ${state.backend} backend: ${state.key}`);
    }
  }

  /** Opens the temp file of an upload for writing; a missing file means the upload is gone. */
  async function openPart(state: UploadState): Promise<Deno.FsFile> {
    try {
      return await Deno.open(uploadPaths(state.uploadId).part, { write: true });
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new UploadNotFoundError(state.key, state.uploadId, "temp file is gone");
      }
      throw error;
    }
  }

  /** Cuts the temp file back to the checkpoint's durable length (bytes after it are garbage). */
  async function truncateToCheckpoint(file: Deno.FsFile, state: UploadState): Promise<void> {
    const { size } = await file.stat();
    if (size < state.bytes) {
      throw new Error(
        `upload temp file is shorter than the checkpoint: ${state.key} (${state.uploadId}): ${size} of ${state.bytes} bytes`,
      );
    }
    if (size > state.bytes) {
      await file.truncate(state.bytes);
      await file.syncData();
    }
  }

  /**
   * {@link truncateToCheckpoint} on the upload's temp file, opened and closed here; throws
   * `UploadNotFoundError` when the file is gone, an `Error` when it is shorter than `state.bytes`.
   */
  async function truncatePartToCheckpoint(state: UploadState): Promise<void> {
    const file = await openPart(state);
    try {
      await truncateToCheckpoint(file, state);
    } finally {
      file.close();
    }
  }

  /** Size of the file at `key`; null when there is none (or none can be: too long a key). */
  async function headObject(key: string): Promise<{ size: number } | null> {
    try {
      const info = await Deno.stat(resolveFilePath(root, key));
      return info.isFile ? { size: info.size } : null;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound || error instanceof KeyOutOfBoundsError) {
        return null;
      }
      throw error;
    }
  }

  async function readObject(
    key: string,
    range?: { start: number; end: number },
  ): Promise<ReadableStream<Uint8Array>> {
    checkByteRange(key, range);
    const file = await Deno.open(resolveFilePath(root, key), { read: true });
    if (!range) return file.readable;
    await file.seek(range.start, Deno.SeekMode.Start);
    let left = range.end - range.start;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        const buffer = new Uint8Array(Math.min(left, 1 << 20));
        const n = left > 0 ? await file.read(buffer) : null;
        if (n === null || n === 0) {
          file.close();
          if (left > 0) controller.error(new Error(`object ended ${left} bytes early: ${key}`));
          else controller.close();
          return;
        }
        left -= n;
        controller.enqueue(buffer.subarray(0, n));
      },
      cancel() {
        file.close();
      },
    });
  }

  async function beginUpload(key: string, contentType: string): Promise<UploadState> {
    // every bound checked before anything is written: completeUpload's rename cannot fail on
    // the name (ENAMETOOLONG) after the whole file was streamed
    checkNewKey(key);
    resolveFilePath(root, key);
    await Deno.mkdir(uploadsDir, { recursive: true });
    const uploadId = crypto.randomUUID();
    const paths = uploadPaths(uploadId);
    const sidecar: UploadSidecar = { key, contentType, initiated: new Date().toISOString() };
    // The sidecar first: a crash in between leaves a listed (hence sweepable) upload.
    await Deno.writeTextFile(paths.sidecar, JSON.stringify(sidecar));
    const file = await Deno.open(paths.part, { write: true, createNew: true });
    file.close();
    await syncDirectory(uploadsDir);
    return { backend: "fs", key, contentType, uploadId, parts: [], bytes: 0 };
  }

  const storage: ObjectStorage = {
    backend: "fs",

    readObject,

    async composeObject(
      key: string,
      contentType: string,
      sources: readonly { key: string; size: number }[],
    ): Promise<{ size: number }> {
      const state = await beginUpload(key, contentType);
      let total = 0;
      try {
        const out = await openPart(state);
        try {
          for (const source of sources) {
            checkComposeSource(key, source, await headObject(source.key));
            if (source.size === 0) continue;
            for await (
              const chunk of await readObject(source.key, { start: 0, end: source.size })
            ) {
              let written = 0;
              while (written < chunk.byteLength) {
                written += await out.write(chunk.subarray(written));
              }
              total += chunk.byteLength;
            }
          }
          await out.syncData();
        } finally {
          out.close();
        }
        return await storage.completeUpload({ ...state, bytes: total });
      } catch (error) {
        await storage.abortUpload(state).catch(() => {});
        throw error;
      }
    },

    async ensureReady(): Promise<void> {
      await Deno.mkdir(uploadsDir, { recursive: true });
    },

    beginUpload,

    async appendPart(state: UploadState, chunk: Uint8Array): Promise<UploadState> {
      checkBackend(state);
      if (chunk.byteLength === 0) {
        throw new Error(`cannot append an empty part: ${state.key}`);
      }
      const file = await openPart(state);
      try {
        // Writing at the checkpoint's offset (not O_APPEND) keeps a resumed attempt exact even
        // if it skipped resumeUpload.
        await truncateToCheckpoint(file, state);
        await file.seek(state.bytes, Deno.SeekMode.Start);
        let written = 0;
        while (written < chunk.byteLength) {
          written += await file.write(chunk.subarray(written));
        }
        await file.syncData();
      } finally {
        file.close();
      }
      const part = {
        partNumber: state.parts.length + 1,
        etag: createHash("sha256").update(chunk).digest("hex"),
        size: chunk.byteLength,
      };
      return { ...state, parts: [...state.parts, part], bytes: state.bytes + part.size };
    },

    async resumeUpload(state: UploadState): Promise<UploadState> {
      checkBackend(state);
      await truncatePartToCheckpoint(state);
      return { ...state, parts: [...state.parts] };
    },

    async recoverUpload(ref: UploadRef): Promise<UploadState> {
      // the fsynced file is the whole state: truncate it to the checkpoint's length
      const state: UploadState = {
        backend: ref.backend,
        key: ref.key,
        contentType: ref.contentType,
        uploadId: ref.uploadId,
        parts: [],
        bytes: ref.bytes,
      };
      checkBackend(state);
      await truncatePartToCheckpoint(state);
      return state;
    },

    async completeUpload(state: UploadState): Promise<{ size: number }> {
      checkBackend(state);
      const target = resolveFilePath(root, state.key);
      const paths = uploadPaths(state.uploadId);
      let file: Deno.FsFile;
      try {
        file = await openPart(state);
      } catch (error) {
        if (!(error instanceof UploadNotFoundError)) throw error;
        // Already completed by an earlier attempt that crashed before recording it?
        const head = completedEarlier(state, await headObject(state.key));
        await removeIfExists(paths.sidecar);
        return head;
      }
      try {
        await truncateToCheckpoint(file, state);
      } finally {
        file.close();
      }
      await renameIntoPlace(paths.part, target);
      await syncDirectory(dirname(target));
      await removeIfExists(paths.sidecar);
      return { size: state.bytes };
    },

    async abortUpload(state: Pick<UploadState, "key" | "uploadId">): Promise<void> {
      const paths = uploadPaths(state.uploadId);
      await removeIfExists(paths.part);
      await removeIfExists(paths.sidecar);
    },

    headObject,

    async deleteObject(key: string): Promise<void> {
      let path: string;
      try {
        path = resolveFilePath(root, key);
      } catch (error) {
        if (error instanceof KeyOutOfBoundsError) return; // no file can have that name
        throw error;
      }
      await removeIfExists(path);
      await removeEmptyExportFolders(root, path);
    },

    downloadUrl(
      key: string,
      urlOptions: { expiresInSeconds: number; filename?: string },
    ): Promise<string> {
      // Promise.try: a bad key or expiry rejects, like every other method, instead of throwing.
      return Promise.try(() => {
        resolveFilePath(root, key);
        if (!(urlOptions.expiresInSeconds >= 1)) {
          throw new RangeError(
            `download URL expiry must be at least 1 second: ${urlOptions.expiresInSeconds}`,
          );
        }
        const expires = Math.floor(Date.now() / 1000) + Math.floor(urlOptions.expiresInSeconds);
        const query = new URLSearchParams({
          expires: String(expires),
          signature: fileSignature(options.signingSecret, key, expires, urlOptions.filename),
        });
        if (urlOptions.filename) query.set("filename", urlOptions.filename);
        const path = key.split("/").map(encodeURIComponent).join("/");
        return `${baseUrl}/files/${path}?${query}`;
      });
    },

    async listObjects(prefix: string): Promise<string[]> {
      // Walk only the deepest directory the prefix names, not the whole tree.
      const base = prefix.slice(0, prefix.lastIndexOf("/") + 1);
      let start = root;
      if (base) {
        try {
          start = resolveFilePath(root, base.slice(0, -1));
        } catch {
          return [];
        }
      }
      const keys: string[] = [];
      await walkFiles(start, base, keys);
      return keys.filter((key) => key.startsWith(prefix)).sort();
    },

    async listIncompleteUploads(prefix: string): Promise<IncompleteUpload[]> {
      const ids = new Set<string>();
      try {
        for await (const entry of Deno.readDir(uploadsDir)) {
          const match = /^(.+)\.(part|json)$/.exec(entry.name);
          if (entry.isFile && match && UUID.test(match[1])) ids.add(match[1]);
        }
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return [];
        throw error;
      }
      const uploads: IncompleteUpload[] = [];
      for (const uploadId of ids) {
        const sidecar = await readSidecar(uploadPaths(uploadId).sidecar);
        // An upload whose sidecar is lost has no known key: only a sweep of everything sees it.
        const key = sidecar?.key ?? "";
        if (!key.startsWith(prefix) || (key === "" && prefix !== "")) continue;
        const initiated = sidecar ? new Date(sidecar.initiated) : undefined;
        uploads.push({
          key,
          uploadId,
          initiated: initiated && !isNaN(initiated.getTime()) ? initiated : undefined,
        });
      }
      return uploads.sort((a, b) => compare(a.key, b.key) || compare(a.uploadId, b.uploadId));
    },
  };
  return storage;
}

/** Collects the regular files under `dir` as keys; dot entries (`.uploads`) are not objects. */
async function walkFiles(dir: string, keyPrefix: string, into: string[]): Promise<void> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return;
    }
    throw error;
  }
  for (const entry of entries) {
    if (entry.name.startsWith(".")) continue;
    const key = keyPrefix + entry.name;
    if (entry.isDirectory) await walkFiles(join(dir, entry.name), `${key}/`, into);
    else if (entry.isFile) into.push(key);
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function readSidecar(path: string): Promise<UploadSidecar | null> {
  try {
    const parsed = JSON.parse(await Deno.readTextFile(path));
    return typeof parsed?.key === "string" ? parsed as UploadSidecar : null;
  } catch {
    return null;
  }
}

/**
 * After `path` (a file under `root`) is deleted, removes the folders it leaves empty, from its
 * own up to and including the export's folder (the nearest ancestor named like a UUID), so that
 * deleted and expired exports leave no empty `<uuid>/` (or `<uuid>/shards/…`) behind. Never goes
 * above that folder (the shared `exports/` and prefix folders stay), and does nothing for a path
 * outside any export folder. A folder that is not empty, or already gone, is left as it is: a
 * writer that raced the removal retries its rename ({@link renameIntoPlace}).
 */
async function removeEmptyExportFolders(root: string, path: string): Promise<void> {
  const folders: string[] = [];
  for (let dir = dirname(path); dir.startsWith(root + sep); dir = dirname(dir)) {
    folders.push(dir);
    // an export's own folder is its `file_uuid` (`<prefix>exports/<uuid>/…`)
    if (!UUID.test(basename(dir))) continue;
    for (const folder of folders) {
      try {
        await Deno.remove(folder); // not recursive: only an empty folder goes
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) continue;
        return; // not empty: the folders above it are not empty either
      }
    }
    return;
  }
}

/**
 * Moves a completed part file to `target`, creating its folders. A folder removed between the
 * two steps (the last file of an export folder deleted meanwhile, {@link removeEmptyExportFolders})
 * makes the rename fail with NotFound while the part is still there: the folders are made again,
 * a few times.
 */
async function renameIntoPlace(part: string, target: string): Promise<void> {
  for (let attempt = 1;; attempt++) {
    await Deno.mkdir(dirname(target), { recursive: true });
    try {
      await Deno.rename(part, target);
      return;
    } catch (error) {
      const partThere = await Deno.stat(part).then(() => true, () => false);
      if (!(error instanceof Deno.errors.NotFound) || !partThere || attempt >= 5) throw error;
    }
  }
}

async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** Makes a rename or a file creation in `dir` durable; best effort where unsupported. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: Deno.FsFile | undefined;
  try {
    handle = await Deno.open(dir, { read: true });
    await handle.sync();
  } catch {
    // Some platforms cannot open or fsync a directory; the data itself is already synced.
  } finally {
    handle?.close();
  }
}
