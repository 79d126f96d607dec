/**
 * The signed form of `GET /api/v2/exports/<id>/download/` (docs/email.md): with `expires` and
 * `signature` in the query it needs no API token, so that the link of an export's email still
 * opens in a browser days later. Mounted before the token check; a request without those
 * parameters goes on to the token-authenticated route (api/exports.ts), which documents both
 * forms in the OpenAPI document.
 */
import { Hono } from "hono";
import { z } from "@hono/zod-openapi";
import { findExport } from "../db/exports.ts";
import { downloadLinkProblem } from "../domain/download_link.ts";
import { expiredMessage } from "../domain/retention.ts";
import type { ExportsApiDependencies } from "./env.ts";
import { problem } from "./errors.ts";
import { exportFileUrl } from "./serialize.ts";

/** The query of a signed download link (both or neither); api/exports.ts `downloadRoute`. */
export const SignedLinkQuerySchema = z.object({
  expires: z.string().optional().openapi({
    description: "Signed links only (docs/email.md): unix seconds until which the link works",
    example: "1767225600",
  }),
  signature: z.string().optional().openapi({
    description: "Signed links only: hex HMAC-SHA256 of `<id>.<expires>` keyed by the server " +
      "secret; with `expires`, no API token is needed",
  }),
});

/**
 * The signed-link router; mount it at `/api/v2/exports` before the authenticated routes. A
 * valid link answers 302 to a fresh short-lived URL of the file (`DOWNLOAD_URL_EXPIRY_SECONDS`);
 * a bad or expired signature 403, a deleted export 404, an export without a file 409, an
 * EXPIRED one 410. Without `expires` and `signature` it hands the request on (`next()`).
 */
export function signedDownloadRoutes(deps: ExportsApiDependencies): Hono {
  const { sql, storage, config } = deps;
  const app = new Hono({ strict: false });
  app.get("/:id/download", async (c, next) => {
    const expires = c.req.query("expires");
    const signature = c.req.query("signature");
    const id = c.req.param("id");
    if ((expires === undefined && signature === undefined) || !/^[1-9][0-9]{0,14}$/.test(id)) {
      return await next();
    }
    const exportId = Number(id);
    const refused = downloadLinkProblem(config.signingSecret, { exportId, expires, signature });
    if (refused) return problem(c, 403, refused);
    const row = await findExport(sql, exportId);
    if (!row) return problem(c, 404, `export not found: ${exportId}`);
    if (row.status === "EXPIRED") return problem(c, 410, expiredMessage(row));
    if (row.status !== "SUCCESS" || !row.file_key) {
      return problem(c, 409, `export has no file: ${row.status}`);
    }
    return c.redirect(await exportFileUrl(row, { storage, config }), 302);
  });
  return app;
}
