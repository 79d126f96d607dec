/**
 * A free-form name (a project slug) made safe as one path segment of an object key, on both
 * backends and in every URL that names the key.
 */

/**
 * The most UTF-8 bytes of a name segment: file systems cap a file name at 255 bytes (ext4,
 * APFS, NTFS in UTF-16 units), and the segment is followed by `_export-<id>.<extension>`.
 */
export const MAX_KEY_SEGMENT_BYTES = 150;

/**
 * Characters replaced by `_`: slashes and backslashes (a segment is not a path), control
 * characters (C0, DEL, C1: the filesystem backend refuses them, headers cannot carry them) and
 * the characters AWS's "Creating object key names" guide says to avoid in S3 keys
 * (`{ } ^ % \` [ ] " < > ~ # |`).
 */
// deno-lint-ignore no-control-regex -- control characters are what is being replaced
const UNSAFE = /[\x00-\x1f\x7f-\x9f/\\{}^%`[\]"<>~#|]/g;

const graphemes = new Intl.Segmenter("en", { granularity: "grapheme" });
const encoder = new TextEncoder();

/**
 * `name` as one object-key segment: NFC-normalized, {@link UNSAFE} characters and leading dots
 * replaced by `_` (the filesystem backend refuses dot segments; URL clients resolve `.` and
 * `..` segments away, RFC 3986 §5.2.4), cut at a grapheme boundary to
 * {@link MAX_KEY_SEGMENT_BYTES} UTF-8 bytes, `_` when nothing is left. Letters of any script
 * stay: keys are UTF-8 (S3) and every URL percent-encodes them. Idempotent; an ordinary slug
 * (`moths-2024`) is unchanged.
 */
export function keySegment(name: string): string {
  const safe = name.normalize("NFC").toWellFormed().replace(UNSAFE, "_").replace(
    /^\.+/,
    (dots) => "_".repeat(dots.length),
  );
  if (encoder.encode(safe).byteLength <= MAX_KEY_SEGMENT_BYTES) return safe || "_";
  let bytes = 0;
  let cut = "";
  for (const { segment } of graphemes.segment(safe)) {
    bytes += encoder.encode(segment).byteLength;
    if (bytes > MAX_KEY_SEGMENT_BYTES) break;
    cut += segment;
  }
  return cut || "_";
}
