/** `/files/<key>`: serves filesystem-backend exports behind signed, expiring URLs. */
import { Hono } from "hono";
import type { Config } from "../config/mod.ts";
import { attachmentDisposition } from "../storage/disposition.ts";
import { resolveFilePath, verifyFileSignature } from "../storage/fs.ts";
import { jsonError } from "./errors.ts";

/** The signed-file router; mount it at `/files`. */
export function filesRoutes(config: Config): Hono {
  const app = new Hono({ strict: false });
  app.get("/*", async (c) => {
    let key: string;
    try {
      key = decodeURIComponent(new URL(c.req.url).pathname.replace(/^\/files\//, ""));
    } catch {
      return jsonError(c, 400, "invalid file key: malformed percent-encoding");
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
      return jsonError(c, 400, `invalid file key: ${key}`);
    }
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch {
      return jsonError(c, 404, `file not found: ${key}`);
    }
    const { size } = await file.stat();
    const type = key.endsWith(".csv")
      ? "text/csv; charset=utf-8"
      : key.endsWith(".json") || key.endsWith(".ndjson")
      ? "application/json"
      : key.endsWith(".zip")
      ? "application/zip"
      : "application/octet-stream";
    const headers: Record<string, string> = {
      "content-type": type,
      "content-length": String(size),
    };
    // the signed name of the export's file (its key's last segment: any script, emoji); a raw
    // non-Latin-1 or CR/LF header value would make the Response throw, so: RFC 6266 / 5987
    if (filename) headers["content-disposition"] = attachmentDisposition(filename);
    return new Response(file.readable, { headers });
  });
  return app;
}
