/**
 * `/sources/<path>`: the demo's synthetic source images (db/seed_demo_images.ts), read-only, from
 * `<STORAGE_PREFIX>sources/` of the configured storage (filesystem or S3 alike). Only the demo
 * mounts it (cli/demo.ts), on its loopback listener; the API of a deployment never serves it.
 *
 * GET and HEAD only. The path after `/sources/` is percent-decoded once and must pass
 * `sourcePathProblem` (storage/sources.ts: no `..`, `.`, empty or hidden segment, no absolute
 * path, backslash or encoded slash trick) before it becomes a key: else 400. A path that names no
 * object is a 404. No listing, no redirect, nothing outside the sources prefix.
 */
import { Hono } from "hono";
import { MAX_ECHO_CHARS, truncateText } from "../domain/echo.ts";
import { sourceKey, sourcePathProblem, SOURCES_FOLDER } from "../storage/sources.ts";
import type { ObjectStorage } from "../storage/types.ts";
import { jsonError } from "./errors.ts";
import { decodeKey } from "./files.ts";

/** Where the router is mounted: the source images' URLs are `<origin>/sources/<path>`. */
export const SOURCES_PATH = `/${SOURCES_FOLDER.replace(/\/$/, "")}`;

/** The content type of a source image by its extension. */
function contentType(path: string): string {
  if (/\.jpe?g$/i.test(path)) return "image/jpeg";
  if (/\.png$/i.test(path)) return "image/png";
  return "application/octet-stream";
}

/**
 * The read-only router of the source images in `storage` under `storagePrefix` (`""` or
 * segments ending in `/`); mount it at {@link SOURCES_PATH}. Other methods answer 405.
 */
export function sourcesRoutes(storage: ObjectStorage, options: { storagePrefix: string }): Hono {
  const app = new Hono({ strict: true });
  app.get("/*", async (c) => {
    const pathname = new URL(c.req.url).pathname;
    const raw = pathname.startsWith(`${SOURCES_PATH}/`)
      ? pathname.slice(SOURCES_PATH.length + 1)
      : "";
    const path = decodeKey(raw);
    const problem = path === undefined ? "malformed percent-encoding" : sourcePathProblem(path);
    if (path === undefined || problem) {
      const message = `invalid source path: ${problem}: ${truncateText(raw, MAX_ECHO_CHARS)}`;
      return jsonError(c, 400, message, { fields: { path: [message] } });
    }
    const key = sourceKey(options.storagePrefix, path);
    const head = await storage.headObject(key);
    if (!head) return jsonError(c, 404, `no such source image: ${path}`);
    const body = c.req.method === "HEAD" ? null : await storage.readObject(key);
    return new Response(body, {
      headers: {
        "content-type": contentType(path),
        "content-length": String(head.size),
        "x-content-type-options": "nosniff",
        "cache-control": "no-store",
      },
    });
  });
  app.all("/*", (c) => {
    c.header("Allow", "GET, HEAD");
    return jsonError(c, 405, `method not allowed: ${c.req.method} (source images are read-only)`);
  });
  return app;
}
