/**
 * `/files/<key>`: serves filesystem-backend exports behind signed, expiring URLs. A key that
 * does not decode is a 400, a bad or expired signature a 403, a missing file a 404; a signed
 * `filename` is sent as `Content-Disposition: attachment` with an ASCII `filename` and the
 * exact UTF-8 `filename*` (RFC 6266 §4.3), whatever characters it holds. One byte range
 * (`Range: bytes=…`) answers 206 with it, an unsatisfiable one 416, several the whole file
 * (api/byte_range.ts); `ETag` and `Last-Modified` are sent, and an `If-Range` naming another
 * version gets the whole file; S3 serves ranges of its presigned URLs itself.
 */
import { Hono } from "hono";
import type { Config } from "../config/mod.ts";
import { attachmentDisposition } from "../storage/disposition.ts";
import { resolveFilePath, verifyFileSignature } from "../storage/fs.ts";
import { MAX_ECHO_CHARS, truncateText } from "../domain/echo.ts";
import { fileSlice, fileValidators, ifRangeHolds, parseRange } from "./byte_range.ts";
import { jsonError } from "./errors.ts";

/**
 * The object key of a `/files/<key>` path: the path after `/files/` percent-decoded as UTF-8
 * (RFC 3986 §2.1, §2.5), or undefined when it holds a malformed escape (`%E0%A4%A`) or bytes
 * that are not UTF-8 (`%FF`), which `decodeURIComponent` refuses with a URIError.
 */
export function decodeKey(path: string): string | undefined {
  try {
    return decodeURIComponent(path);
  } catch {
    return undefined;
  }
}

/** The signed-file router; mount it at `/files`. */
export function filesRoutes(config: Config): Hono {
  const app = new Hono({ strict: false });
  app.get("/*", async (c) => {
    const raw = new URL(c.req.url).pathname.replace(/^\/files\//, "");
    const key = decodeKey(raw);
    if (key === undefined) {
      const message = `invalid file key: malformed percent-encoding or UTF-8: ${
        truncateText(raw, MAX_ECHO_CHARS)
      }`;
      return jsonError(c, 400, message, { fields: { path: [message] } });
    }
    const expires = c.req.query("expires") ?? "";
    const signature = c.req.query("signature") ?? "";
    const filename = c.req.query("filename");
    if (!(await verifyFileSignature(config.signingSecret, key, expires, signature, filename))) {
      return jsonError(c, 403, "invalid or expired download link");
    }
    let path: string;
    try {
      path = resolveFilePath(config.exportsDir, key);
    } catch {
      const message = `invalid file key: ${truncateText(key, MAX_ECHO_CHARS)}`;
      return jsonError(c, 400, message, { fields: { path: [message] } });
    }
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch {
      return jsonError(c, 404, `file not found: ${truncateText(key, MAX_ECHO_CHARS)}`);
    }
    const { size, mtime } = await file.stat();
    const validators = fileValidators(size, mtime);
    const type = key.endsWith(".csv")
      ? "text/csv; charset=utf-8"
      : key.endsWith(".json") || key.endsWith(".ndjson")
      ? "application/json"
      : key.endsWith(".zip")
      ? "application/zip"
      : "application/octet-stream";
    const headers: Record<string, string> = { "content-type": type, "accept-ranges": "bytes" };
    if (filename) headers["content-disposition"] = attachmentDisposition(filename);
    if (validators) {
      // a resumed download sends one back in If-Range (browsers resume only with one)
      headers["etag"] = validators.etag;
      headers["last-modified"] = validators.lastModified;
    }
    // If-Range naming another version of the file (or none this route can compare): the whole
    // file, RFC 9110 §13.1.5
    const range = ifRangeHolds(c.req.header("if-range"), validators)
      ? parseRange(c.req.header("range"), size)
      : { kind: "whole" as const };
    if (range.kind === "unsatisfiable") {
      file.close();
      const message = `range not satisfiable: the file holds ${size} bytes`;
      c.header("Content-Range", `bytes */${size}`);
      return jsonError(c, 416, message);
    }
    const length = range.kind === "range" ? range.end - range.start + 1 : size;
    headers["content-length"] = String(length);
    if (range.kind === "range") {
      headers["content-range"] = `bytes ${range.start}-${range.end}/${size}`;
    }
    const status = range.kind === "range" ? 206 : 200;
    // HEAD: hono answers it with this GET route and drops the body unread, which would leave the
    // file open; the headers are the answer
    if (c.req.method === "HEAD") {
      file.close();
      return new Response(null, { status, headers });
    }
    const body = range.kind === "range" ? fileSlice(file, range.start, length) : file.readable;
    return new Response(body, { status, headers });
  });
  return app;
}
