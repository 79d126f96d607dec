/** The HTTP API: small routers composed into one Hono app. */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { tokenAuth } from "./auth.ts";
import { jsonError } from "./errors.ts";
import { type ExportsApiDependencies, exportsRoutes } from "./exports.ts";
import { filesRoutes } from "./files.ts";

/** Builds the API app over real dependencies (tests call `app.request(...)`). */
export function createApp(deps: ExportsApiDependencies): Hono {
  const app = new Hono({ strict: false });
  app.onError((error, c) => {
    if (error instanceof HTTPException) {
      return jsonError(c, error.status as ContentfulStatusCode, error.message || "bad request");
    }
    console.error(
      JSON.stringify({ msg: "unhandled error", path: c.req.path, error: String(error) }),
    );
    return jsonError(c, 500, "internal error");
  });
  app.notFound((c) => jsonError(c, 404, `no such route: ${c.req.method} ${c.req.path}`));

  app.get("/healthz", async (c) => {
    const checks: Record<string, string> = {};
    await Promise.all([
      deps.sql`select 1`.then(() => checks.database = "ok", (e) => checks.database = String(e)),
      deps.temporal.workflowService.getSystemInfo({}).then(
        () => checks.temporal = "ok",
        (e) => checks.temporal = String(e),
      ),
      deps.storage.listObjects("healthz/").then(
        () => checks.storage = "ok",
        (e) => checks.storage = String(e),
      ),
    ]);
    const ok = Object.values(checks).every((v) => v === "ok");
    return c.json({ status: ok ? "ok" : "unavailable", checks }, ok ? 200 : 503);
  });

  if (deps.config.storageBackend === "fs") app.route("/files", filesRoutes(deps.config));

  const v2 = new Hono<{ Variables: { user: import("./auth.ts").CurrentUser } }>({ strict: false });
  v2.use("*", tokenAuth(deps.sql));
  v2.route("/exports", exportsRoutes(deps));
  app.route("/api/v2", v2);
  return app;
}
