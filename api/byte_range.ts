/**
 * Single byte ranges of a file served by the API (`/files/…`), RFC 9110 §14: `Range:
 * bytes=<first>-<last>`, `bytes=<first>-` and `bytes=-<suffix length>` answer 206 with the
 * range; several ranges, another unit or a header that does not parse are ignored (the whole
 * file, 200, which §14.2 allows); a range that starts at or past the end is unsatisfiable (416
 * with a `Content-Range` giving only the size, §15.5.17). Ranges are read from the file as they are
 * sent ({@link fileSlice}), never held whole in memory.
 */

/** What a `Range` header asks of a file of `size` bytes. */
export type RangeRequest =
  | { kind: "whole" }
  | { kind: "unsatisfiable" }
  | { kind: "range"; start: number; end: number };

const SINGLE = /^bytes[ \t]*=[ \t]*(?:([0-9]+)[ \t]*-[ \t]*([0-9]*)|-[ \t]*([0-9]+))[ \t]*$/i;

/**
 * The range `header` (the `Range` request header, or null) asks of a file of `size` bytes:
 * `{kind: "range", start, end}` (inclusive byte offsets, end clamped to the file's last byte),
 * `unsatisfiable`, or `whole` (no header, several ranges, another unit, a malformed header, a
 * last position before the first, which §14.1.1 makes invalid, or a suffix range of an empty
 * file, which §14.1.1 makes satisfiable though no `Content-Range` can state it).
 */
export function parseRange(header: string | null | undefined, size: number): RangeRequest {
  if (!header) return { kind: "whole" };
  const match = SINGLE.exec(header.trim());
  if (!match) return { kind: "whole" };
  const [, first, last, suffix] = match;
  if (suffix !== undefined) {
    const length = Number(suffix);
    if (length === 0) return { kind: "unsatisfiable" };
    // satisfiable for an empty file (§14.1.1), but a 206 cannot state an empty range: whole
    if (size === 0) return { kind: "whole" };
    return { kind: "range", start: Math.max(0, size - length), end: size - 1 };
  }
  const start = Number(first);
  const end = last === "" ? Infinity : Number(last);
  if (end < start) return { kind: "whole" };
  if (start >= size) return { kind: "unsatisfiable" };
  return { kind: "range", start, end: Math.min(end, size - 1) };
}

/** The validators of a file as sent with it: `ETag` and `Last-Modified` (RFC 9110 §8.8). */
export interface FileValidators {
  /** Strong entity tag, `"<size hex>-<mtime ms hex>"` (a rewritten file changes one of them). */
  etag: string;
  /** The modification time as an IMF-fixdate (`Mon, 07 Dec 2026 16:00:00 GMT`), whole seconds. */
  lastModified: string;
}

/** The validators of a file of `size` bytes last modified at `mtime` (null: none known). */
export function fileValidators(size: number, mtime: Date | null): FileValidators | undefined {
  if (mtime === null) return undefined;
  return {
    etag: `"${size.toString(16)}-${mtime.getTime().toString(16)}"`,
    lastModified: mtime.toUTCString(),
  };
}

/**
 * Whether a request's `Range` applies given its `If-Range` header (RFC 9110 §13.1.5): yes
 * without one; with one, only when it names the file as sent, an entity tag equal to the
 * strong `etag` (a weak `W/"…"` never matches) or an HTTP-date equal to `lastModified`
 * (to the second). Otherwise, or with no validators, the whole file is the answer.
 */
export function ifRangeHolds(
  header: string | null | undefined,
  validators: FileValidators | undefined,
): boolean {
  if (header === null || header === undefined) return true;
  if (!validators) return false;
  const value = header.trim();
  if (value.startsWith('"') || value.startsWith("W/")) return value === validators.etag;
  const date = Date.parse(value);
  return !Number.isNaN(date) && date === Date.parse(validators.lastModified);
}

/** Bytes read from the file per pull (64 KiB). */
const SLICE_CHUNK = 64 * 1024;

/**
 * `length` bytes of `file` from offset `start`, as a stream read 64 KiB at a time on demand;
 * the file is closed when the slice ends, when the file ends first, or when the reader cancels.
 */
export function fileSlice(
  file: Deno.FsFile,
  start: number,
  length: number,
): ReadableStream<Uint8Array> {
  let left = length;
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    file.close();
  };
  return new ReadableStream<Uint8Array>({
    async start() {
      await file.seek(start, Deno.SeekMode.Start);
    },
    async pull(controller) {
      if (left <= 0) {
        close();
        controller.close();
        return;
      }
      const chunk = new Uint8Array(Math.min(SLICE_CHUNK, left));
      const read = await file.read(chunk);
      if (read === null) {
        // the file shrank under the reader: end short (Content-Length tells the client)
        close();
        controller.close();
        return;
      }
      left -= read;
      controller.enqueue(chunk.subarray(0, read));
    },
    cancel() {
      close();
    },
  }, { highWaterMark: 0 });
}
