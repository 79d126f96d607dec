/**
 * Bounds on object keys and file names, in bytes of UTF-8, for every storage backend (issue 23):
 * a user-controlled string (a project slug) that reaches a key is made safe and cut to fit, so
 * that no export can fail, or wedge its cleanup, on a name that storage refuses.
 *
 * The limits and where they come from:
 * - S3 object key naming guidelines: a key is at most 1,024 bytes of UTF-8
 *   ({@link MAX_KEY_BYTES}); the filesystem backend keeps the same bound so both accept the same
 *   keys.
 * - POSIX `NAME_MAX` (255 on ext4, XFS, Btrfs, tmpfs): a path component is at most 255 bytes
 *   ({@link MAX_NAME_BYTES}); `File name too long (os error 36)` is ENAMETOOLONG.
 * - Linux `PATH_MAX` (4,096 including the terminating NUL): a whole path is at most 4,095 bytes
 *   ({@link MAX_PATH_BYTES}).
 *
 * Pure functions only: no I/O, no dependency, usable by the config, storage and activities.
 */

/** Largest object key in bytes of UTF-8 (S3 object key naming guidelines: 1,024 bytes). */
export const MAX_KEY_BYTES = 1024;

/** Largest path component (file or directory name) in bytes (POSIX `NAME_MAX`: 255). */
export const MAX_NAME_BYTES = 255;

/** Largest whole path in bytes, without the NUL (Linux `PATH_MAX`: 4,096 with it). */
export const MAX_PATH_BYTES = 4095;

/** Bytes of `exports/<file_uuid>/` that every generated key puts after `STORAGE_PREFIX`. */
export const EXPORT_DIR_BYTES = "exports/".length + 36 + 1;

/**
 * Bytes of the longest key the exports generate after `STORAGE_PREFIX`:
 * `exports/<file_uuid>/` plus a file name of at most {@link MAX_NAME_BYTES} (the shard keys,
 * `exports/<file_uuid>/shards/<nnnn>.<ext>`, are shorter). 300 bytes.
 */
export const MAX_GENERATED_KEY_BYTES = EXPORT_DIR_BYTES + MAX_NAME_BYTES;

const encoder = new TextEncoder();
const graphemes = new Intl.Segmenter("en", { granularity: "grapheme" });

/** Bytes of `text` in UTF-8 (a lone surrogate counts as U+FFFD, 3 bytes, as it is encoded). */
export function utf8ByteLength(text: string): number {
  return encoder.encode(text).byteLength;
}

/**
 * The longest prefix of `text` of at most `maxBytes` bytes of UTF-8 that ends on a character
 * boundary: on a grapheme cluster boundary (an emoji with its modifiers and joiners, a letter
 * with its combining accents stay whole), or, when the first cluster alone is longer than
 * `maxBytes` (a letter under hundreds of combining marks), on a code point boundary. A 4-byte
 * character at the cut is dropped whole, never split. Lone surrogates become U+FFFD first.
 * `maxBytes` < 0 is a RangeError; 0 gives "".
 */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (!(maxBytes >= 0)) throw new RangeError(`byte budget must not be negative: ${maxBytes}`);
  const whole = text.toWellFormed();
  if (utf8ByteLength(whole) <= maxBytes) return whole;
  let out = "";
  let used = 0;
  for (const { segment } of graphemes.segment(whole)) {
    const bytes = utf8ByteLength(segment);
    if (used + bytes > maxBytes) {
      if (out === "") {
        // one cluster longer than the budget: cut it between code points instead
        for (const codePoint of segment) {
          const n = utf8ByteLength(codePoint);
          if (used + n > maxBytes) break;
          out += codePoint;
          used += n;
        }
      }
      break;
    }
    out += segment;
    used += bytes;
  }
  return out;
}

/**
 * Characters a name segment never keeps: control characters (C0 with NUL, DEL, C1), the path
 * separators `/` and `\`, the line and paragraph separators U+2028/U+2029, the byte order mark
 * U+FEFF and the bidirectional controls (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069),
 * which would make a name read backwards (`…_export-7.csv` shown as `vsc.7-tropxe_…`).
 */
const UNSAFE_IN_NAME = /[\p{Cc}\p{Bidi_Control}\u2028\u2029\ufeff/\\]/gu;

/**
 * `text` made safe as one segment of a key or a file name, each unsafe character (see
 * {@link UNSAFE_IN_NAME}: controls, `/`, `\`, bidirectional controls, line separators, BOM)
 * and a leading `.` replaced by `_`; lone surrogates become U+FFFD. Letters of every script,
 * emoji, spaces and punctuation stay, so the name stays readable. Not length-bounded: see
 * {@link truncateUtf8}.
 */
export function safeNameSegment(text: string): string {
  return text.toWellFormed().replace(UNSAFE_IN_NAME, "_").replace(/^\./, "_");
}

/** An extension the registry declares: ASCII letters and digits, dot-separated (`csv`, `tar.gz`). */
const EXTENSION = /^[A-Za-z0-9]+(\.[A-Za-z0-9]+)*$/;

/**
 * The file name of an export, `<slug>_export-<id>.<extension>`, at most `maxBytes` bytes of UTF-8
 * (default {@link MAX_NAME_BYTES}, POSIX `NAME_MAX`): the slug made safe
 * ({@link safeNameSegment}) and cut at a character boundary ({@link truncateUtf8}) so that the
 * `_export-<id>.<extension>` tail, which tells the export and its type, is always kept whole.
 * Two slugs that differ only after the cut give the same name; keys stay unique because each
 * export has its own `<file_uuid>/` directory. Throws a RangeError when the tail alone does not
 * fit in `maxBytes`, or when the id or the extension is malformed (programming errors).
 */
export function exportFileName(
  export_: { projectSlug: string; exportId: number; extension: string },
  maxBytes: number = MAX_NAME_BYTES,
): string {
  const { projectSlug, exportId, extension } = export_;
  if (!Number.isSafeInteger(exportId) || exportId < 0) {
    throw new RangeError(`export id must be a non-negative integer: ${exportId}`);
  }
  if (!EXTENSION.test(extension)) throw new RangeError(`invalid file extension: ${extension}`);
  const tail = `_export-${exportId}.${extension}`;
  const budget = Math.min(maxBytes, MAX_NAME_BYTES) - tail.length; // the tail is ASCII
  if (budget < 0) {
    throw new RangeError(
      `no room for the file name of export ${exportId}: ${tail.length} bytes needed, ${
        Math.max(0, maxBytes)
      } left`,
    );
  }
  return `${truncateUtf8(safeNameSegment(projectSlug), budget)}${tail}`;
}

/**
 * `name` (a file name read back from a key, e.g. one written before these bounds) as a safe
 * file name of at most `maxBytes` bytes of UTF-8 (default {@link MAX_NAME_BYTES}): made safe by
 * {@link safeNameSegment}, and when too long cut at a character boundary before its tail, the
 * `_export-<id>.<ext>` of an export's file or else an extension of up to 16 ASCII letters and
 * digits, which is kept whole. A tail longer than `maxBytes` is cut too.
 */
export function boundedFileName(name: string, maxBytes: number = MAX_NAME_BYTES): string {
  const safe = safeNameSegment(name);
  if (utf8ByteLength(safe) <= maxBytes) return safe;
  const tail = /_export-\d+(\.[A-Za-z0-9]+)+$/.exec(safe)?.[0] ??
    /\.[A-Za-z0-9]{1,16}$/.exec(safe)?.[0] ?? "";
  if (tail.length > maxBytes) return truncateUtf8(safe, maxBytes);
  return `${truncateUtf8(safe.slice(0, safe.length - tail.length), maxBytes - tail.length)}${tail}`;
}

/**
 * Bytes left for a file name in directory `dir` (a key prefix ending in `/`): at most
 * {@link MAX_NAME_BYTES} (POSIX NAME_MAX), and what {@link MAX_KEY_BYTES} (S3) leaves after
 * `dir`'s bytes of UTF-8; negative when `dir` alone is too long.
 */
export function fileNameBudget(dir: string): number {
  return Math.min(MAX_NAME_BYTES, MAX_KEY_BYTES - utf8ByteLength(dir));
}

/**
 * Why `key` breaks the object-key contract both backends share, or null when it keeps it: at
 * most {@link MAX_KEY_BYTES} bytes of UTF-8 (S3 object key naming guidelines) and well-formed
 * Unicode (a lone surrogate cannot be written as UTF-8 and read back as the same key). S3 itself
 * refuses longer keys (`KeyTooLongError`), so no object or upload can exist under one. The
 * sentence names the limit and its source, for error messages.
 */
export function keyBoundsProblem(key: string): string | null {
  if (!key.isWellFormed()) return "not well-formed Unicode (a lone surrogate)";
  const bytes = utf8ByteLength(key);
  if (bytes > MAX_KEY_BYTES) {
    return `${bytes} bytes of UTF-8, more than the ${MAX_KEY_BYTES} of an S3 object key`;
  }
  return null;
}

/**
 * Why the file of `key` under a directory of `rootBytes` bytes (absolute, without trailing
 * `/`) cannot exist on a filesystem, or null when it can: a segment of `key` longer than
 * {@link MAX_NAME_BYTES} bytes (POSIX NAME_MAX), `<root>/<key>` longer than
 * {@link MAX_PATH_BYTES} (Linux PATH_MAX), or `key` not well-formed Unicode. The operating
 * system refuses such a path (`File name too long (os error 36)`), so no file exists at it.
 */
export function pathBoundsProblem(rootBytes: number, key: string): string | null {
  if (!key.isWellFormed()) return "not well-formed Unicode (a lone surrogate)";
  for (const segment of key.split("/")) {
    const n = utf8ByteLength(segment);
    if (n > MAX_NAME_BYTES) {
      return `a ${n}-byte path segment, more than the ${MAX_NAME_BYTES} of POSIX NAME_MAX`;
    }
  }
  const path = rootBytes + 1 + utf8ByteLength(key);
  if (path > MAX_PATH_BYTES) {
    return `a ${path}-byte path, more than the ${MAX_PATH_BYTES} of Linux PATH_MAX`;
  }
  return null;
}

/**
 * Why the filesystem backend's directory (`EXPORTS_DIR`, `absoluteDir` resolved) leaves no room
 * for the files the exports generate, or null when it does: `<dir>/<longest generated key>`
 * ({@link MAX_GENERATED_KEY_BYTES}) must fit in {@link MAX_PATH_BYTES}, and each of its
 * segments in {@link MAX_NAME_BYTES}.
 */
export function exportsDirProblem(absoluteDir: string): string | null {
  const bytes = utf8ByteLength(absoluteDir);
  const room = MAX_PATH_BYTES - 1 - MAX_GENERATED_KEY_BYTES;
  if (bytes > room) {
    return `${bytes} bytes is too long: at most ${room} bytes, so that a file's path (up to ` +
      `${
        MAX_GENERATED_KEY_BYTES + 1
      } more) stays within the ${MAX_PATH_BYTES} bytes of Linux PATH_MAX`;
  }
  for (const segment of absoluteDir.split("/")) {
    const n = utf8ByteLength(segment);
    if (n > MAX_NAME_BYTES) {
      return `a ${n}-byte segment is too long: at most ${MAX_NAME_BYTES} bytes (POSIX NAME_MAX)`;
    }
  }
  return null;
}

/**
 * Why `storagePrefix` (`STORAGE_PREFIX`, normalized to end in `/`, or "") leaves no room for
 * the keys the exports generate, or null when it does: the prefix plus the longest generated key
 * ({@link MAX_GENERATED_KEY_BYTES}) must fit in {@link MAX_KEY_BYTES}, each of its segments in
 * {@link MAX_NAME_BYTES}, and, on the filesystem backend (`exportsDirBytes`: bytes of the
 * absolute `EXPORTS_DIR`), `<dir>/<prefix><key>` in {@link MAX_PATH_BYTES}. The sentence says
 * the largest size that fits. Check the directory first ({@link exportsDirProblem}): with a
 * directory that leaves no room, every prefix, even "", is refused.
 */
export function storagePrefixProblem(
  storagePrefix: string,
  options: { exportsDirBytes?: number } = {},
): string | null {
  const bytes = utf8ByteLength(storagePrefix);
  const keyRoom = MAX_KEY_BYTES - MAX_GENERATED_KEY_BYTES;
  if (bytes > keyRoom) {
    return `${bytes} bytes is too long: at most ${keyRoom} bytes, so that a generated key ` +
      `(up to ${MAX_GENERATED_KEY_BYTES} more) stays within the ${MAX_KEY_BYTES} bytes of an S3 key`;
  }
  for (const segment of storagePrefix.split("/")) {
    const n = utf8ByteLength(segment);
    if (n > MAX_NAME_BYTES) {
      return `a ${n}-byte segment is too long: at most ${MAX_NAME_BYTES} bytes (POSIX NAME_MAX)`;
    }
  }
  if (options.exportsDirBytes !== undefined) {
    const room = MAX_PATH_BYTES - options.exportsDirBytes - 1 - MAX_GENERATED_KEY_BYTES;
    if (bytes > room) {
      return `${bytes} bytes is too long under EXPORTS_DIR (${options.exportsDirBytes} bytes): ` +
        `at most ${Math.max(0, room)} bytes, so that a file's path stays within the ` +
        `${MAX_PATH_BYTES} bytes of Linux PATH_MAX`;
    }
  }
  return null;
}
