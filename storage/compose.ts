/**
 * How the S3 backend composes one object from several (`ObjectStorage.composeObject`): a plan
 * of multipart-upload parts, each either a server-side copy of a byte range of one source
 * (`UploadPartCopy` with `CopySourceRange`: no bytes through the worker) or a small part the
 * worker uploads after reading its ranges (only where sources are smaller than the minimum part
 * size, or a source's tail is: at most one minimum part per source boundary). Both backends
 * check each source's size first ({@link checkComposeSource}).
 */

/** A byte range `[start, end)` of source `source` (an index into the sources). */
export interface SourceRange {
  source: number;
  start: number;
  end: number;
}

/** One part of the composed object. */
export type ComposePart =
  | { kind: "copy"; range: SourceRange }
  | { kind: "upload"; ranges: SourceRange[]; size: number };

/**
 * The parts that concatenate sources of the given `sizes` (bytes) in order. Every part but the
 * last is at least `minPart` bytes (S3: 5 MiB); a copied part is at most `maxCopy` bytes (S3:
 * 5 GiB). Small sources and the small tails of large ones are merged into uploaded parts of
 * exactly `minPart` bytes; a source with at least `minPart` bytes left when no merge is pending
 * is copied. Empty sources contribute nothing; no sources (or only empty ones) give no parts.
 */
export function planComposition(
  sizes: readonly number[],
  options: { minPart: number; maxCopy: number },
): ComposePart[] {
  const { minPart, maxCopy } = options;
  if (!(minPart >= 1 && maxCopy >= minPart * 2)) {
    throw new RangeError(`invalid part sizes: min ${minPart}, max copy ${maxCopy}`);
  }
  const parts: ComposePart[] = [];
  let pending: SourceRange[] = [];
  let pendingBytes = 0;
  sizes.forEach((size, source) => {
    let offset = 0;
    while (offset < size) {
      const left = size - offset;
      if (pendingBytes === 0 && left >= minPart) {
        // keep what a copy leaves behind either empty or ≥ minPart, so it can be copied too
        let length = Math.min(left, maxCopy);
        if (left - length > 0 && left - length < minPart) length = left - minPart;
        parts.push({ kind: "copy", range: { source, start: offset, end: offset + length } });
        offset += length;
        continue;
      }
      const take = Math.min(left, minPart - pendingBytes);
      pending.push({ source, start: offset, end: offset + take });
      pendingBytes += take;
      offset += take;
      if (pendingBytes === minPart) {
        parts.push({ kind: "upload", ranges: pending, size: pendingBytes });
        pending = [];
        pendingBytes = 0;
      }
    }
  });
  if (pendingBytes > 0) parts.push({ kind: "upload", ranges: pending, size: pendingBytes });
  return parts;
}

/**
 * Refuses to compose `key` from `source` unless `head` (what storage holds under the source's
 * key: its size in bytes, or null when nothing is there) has exactly the `size` the caller
 * expects; both backends check every source before its bytes are used.
 *
 * @throws Error `cannot compose <key>: <source key> has <n | no> bytes, expected <size>`
 */
export function checkComposeSource(
  key: string,
  source: { key: string; size: number },
  head: { size: number } | null,
): void {
  if (head?.size !== source.size) {
    throw new Error(
      `cannot compose ${key}: ${source.key} has ${
        head?.size ?? "no"
      } bytes, expected ${source.size}`,
    );
  }
}
