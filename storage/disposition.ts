/**
 * A `Content-Disposition: attachment` value that names the downloaded file safely (RFC 6266
 * §4.3 and Appendix D): a plain ASCII `filename` for old clients and an RFC 8187 (ex-5987)
 * `filename*=UTF-8''…` with the exact name, which clients that know it prefer.
 *
 * The ASCII fallback drops accents (NFKD, `é` → `e`) and replaces every other non-ASCII or
 * control character, quotes, backslashes, slashes and `%` (Appendix D: a `%` followed by two
 * hex digits may be decoded by some clients) by `_`. In the exact name only slashes,
 * backslashes and control characters become `_` (a name is not a path); every character
 * outside RFC 8187's `attr-char` is percent-encoded, so the value is always a valid header
 * (ASCII, no CR/LF), whatever the name holds.
 */
export function attachmentDisposition(filename: string): string {
  const fallback = filename.normalize("NFKD").replace(/[\u0300-\u036f]/g, "")
    .replace(/[^\x20-\x7e]|["\\/%]/g, "_");
  // deno-lint-ignore no-control-regex -- control characters are what is being removed
  const exact = encodeURIComponent(filename.replace(/[\x00-\x1f\x7f/\\]/g, "_").toWellFormed())
    .replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${exact}`;
}
