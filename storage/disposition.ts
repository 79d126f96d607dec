/**
 * A `Content-Disposition: attachment` value that names the downloaded file safely: a plain
 * ASCII `filename` for old clients (quotes, backslashes, slashes and control or non-ASCII
 * characters replaced by `_`) and an RFC 5987 `filename*` with the exact UTF-8 name. Only
 * visible ASCII in the result, so it is a valid header value (Fetch `ByteString`) for any
 * name: emoji, RTL text, CR/LF, lone surrogates (as U+FFFD).
 */
export function attachmentDisposition(filename: string): string {
  filename = filename.toWellFormed(); // encodeURIComponent throws on a lone surrogate
  const fallback = filename.replace(/[^\x20-\x7e]|["\\/]/g, "_");
  // deno-lint-ignore no-control-regex -- control characters are what is being removed
  const exact = encodeURIComponent(filename.replace(/[\x00-\x1f\x7f/\\]/g, "_")).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${fallback}"; filename*=UTF-8''${exact}`;
}
