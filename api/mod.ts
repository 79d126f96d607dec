/** The HTTP API: small routers composed into one Hono app, described by one OpenAPI document. */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { refuseUnstorableText } from "./storable_text.ts";
import { refuseDuplicateKeys } from "./duplicate_keys.ts";
import { emptyBodyIsNoBody } from "./empty_body.ts";
import { HTTPException } from "hono/http-exception";
import type { BlankEnv } from "hono/types";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { tokenAuth } from "./auth.ts";
import { responseContract } from "./contract.ts";
import { docsRoutes } from "./docs.ts";
import type { ApiEnv, ExportsApiDependencies } from "./env.ts";
import { jsonError, unavailableDependency, validationHook } from "./errors.ts";
import { exportQueueRoutes } from "./export_queue.ts";
import { exportsRoutes } from "./exports.ts";
import { filesRoutes } from "./files.ts";
import { checkHealth } from "./health.ts";
import { replicaHealth } from "./replica_health.ts";
import { logEvent } from "../domain/log.ts";
import { MAX_ECHO_CHARS, truncateText } from "../domain/echo.ts";
import { HealthSchema } from "./schemas.ts";
import { retentionRoutes } from "./retention.ts";
import { schedulesRoutes } from "./schedules.ts";
import { signedDownloadRoutes } from "./signed_download.ts";
import { exportDeliveriesRoutes, webhooksRoutes } from "./webhooks.ts";

/** The largest request body the API reads, in bytes (1 MiB); a larger one is a 413. */
export const MAX_REQUEST_BODY_BYTES = 1024 * 1024;

/** Where the OpenAPI document is served. */
export const OPENAPI_PATH = "/api/v2/openapi.json";

/** Where its interactive reference page is served; `GET /` redirects there. */
export const DOCS_PATH = "/api/v2/docs";

const healthRoute = createRoute({
  method: "get",
  path: "/healthz",
  tags: ["service"],
  summary: "Reachability of the database, Temporal and storage; a worker polls the task queue",
  responses: {
    200: {
      description: "Every dependency answers",
      content: { "application/json": { schema: HealthSchema } },
    },
    503: {
      description:
        "A dependency does not answer or no worker polls the task queue (named in `checks`)",
      content: { "application/json": { schema: HealthSchema } },
    },
  },
});

/** Builds the API app over real dependencies (tests call `app.request(...)`). */
export function createApp(deps: ExportsApiDependencies): OpenAPIHono<BlankEnv> {
  const app = new OpenAPIHono<BlankEnv>({ strict: false, defaultHook: validationHook });
  app.onError((error, c) => {
    if (error instanceof HTTPException) {
      // @hono/zod-openapi says only "Unsupported Media Type" for a body that is not JSON
      const message = error.status === 415
        ? "the body is not JSON: send it with Content-Type: application/json"
        : error.message || "bad request";
      // hono's body validators throw these: a body that does not parse ("Malformed JSON in
      // request body") is a 400 about the body as a whole
      return error.status === 400
        ? jsonError(c, 400, message, { fields: { body: [message] } })
        : jsonError(c, error.status as Exclude<ContentfulStatusCode, 400>, message);
    }
    const dependency = unavailableDependency(error);
    if (dependency) {
      logEvent("dependency unavailable", { path: c.req.path, error: String(error) }, "warning");
      return jsonError(c, 503, `${dependency} is not reachable, try again later: ${error.message}`);
    }
    logEvent("unhandled error", { path: c.req.path, error: String(error) }, "error");
    return jsonError(c, 500, "internal error");
  });
  app.notFound((c) =>
    jsonError(c, 404, `no such route: ${c.req.method} ${truncateText(c.req.path, MAX_ECHO_CHARS)}`)
  );
  // 405 with Allow (RFC 9110 §15.5.6) for a method no route of the path answers, before
  // authentication: the set of methods is public (it is in the OpenAPI document)
  app.use("*", async (c, next) => {
    const allowed = allowedMethods(app, c.req.path);
    if (allowed.length === 0 || allowed.includes(c.req.method)) return await next();
    c.header("Allow", allowed.join(", "));
    return jsonError(
      c,
      405,
      `method not allowed: ${c.req.method} ${truncateText(c.req.path, MAX_ECHO_CHARS)} ` +
        `(allowed: ${allowed.join(", ")})`,
    );
  });
  // requests are small JSON documents (the largest: filters of 1,000 ids per list): a larger
  // body is refused while it is read, before anything parses it (RFC 9110 §15.5.14)
  app.use(
    "*",
    bodyLimit({
      maxSize: MAX_REQUEST_BODY_BYTES,
      onError: (c) => jsonError(c, 413, `request body larger than ${MAX_REQUEST_BODY_BYTES} bytes`),
    }),
  );
  app.use("*", emptyBodyIsNoBody());
  app.use("*", refuseUnstorableText());
  app.use("*", refuseDuplicateKeys());
  if (Deno.env.get("API_VALIDATE_RESPONSES") === "1") {
    app.use("*", responseContract(app));
  }

  app.openapi(healthRoute, async (c) => {
    // the replica is reported, never a reason for 503 (api/replica_health.ts)
    const [checks, replica] = await Promise.all([
      checkHealth(deps),
      deps.readSql && deps.readSql !== deps.sql
        ? replicaHealth(deps.sql, deps.readSql, deps.config)
        : undefined,
    ]);
    const ok = Object.values(checks).every((v) => v === "ok");
    const body = replica ? { checks, replica } : { checks };
    return ok
      ? c.json({ status: "ok" as const, ...body }, 200)
      : c.json({ status: "unavailable" as const, ...body }, 503);
  });

  if (deps.config.storageBackend === "fs") app.route("/files", filesRoutes(deps.config));

  // Public: the document and its reference page (registered before the authenticated routes)
  app.get(OPENAPI_PATH, (c) => c.json(openApiDocument(app)));
  app.route(DOCS_PATH, docsRoutes(OPENAPI_PATH));
  // a browser pointed at the API's address lands on its reference page, not on a JSON 404
  app.get("/", (c) => c.redirect(DOCS_PATH, 302));

  // a signed download link needs no token (docs/email.md); without one it goes on to v2
  app.route("/api/v2/exports", signedDownloadRoutes(deps));

  const v2 = new OpenAPIHono<ApiEnv>({ strict: false, defaultHook: validationHook });
  v2.use("*", tokenAuth(deps.sql));
  v2.route("/exports", retentionRoutes(deps));
  v2.route("/exports/queue", exportQueueRoutes(deps)); // before /exports/{id}
  v2.route("/exports", exportsRoutes(deps));
  v2.route("/export-schedules", schedulesRoutes(deps));
  v2.route("/exports", exportDeliveriesRoutes(deps));
  v2.route("/projects", webhooksRoutes(deps));
  app.route("/api/v2", v2);
  app.openAPIRegistry.registerComponent("securitySchemes", "TokenAuth", {
    type: "apiKey",
    in: "header",
    name: "Authorization",
    description: "`Token <key>`; create keys with `deno task cli create-token --user ID`",
  });
  return app;
}

/**
 * The methods some route of `app` answers at `path` (HEAD with GET, OPTIONS never), for the
 * `Allow` header of a 405 (RFC 9110 §15.5.6); empty when no route matches the path at all.
 * Matching follows Hono's: `:param` is one segment, `*` anything, a trailing slash optional.
 */
export function allowedMethods(
  app: { routes: { method: string; path: string }[] },
  path: string,
): string[] {
  // a static route (`/exports/formats`) hides the parameter routes (`/exports/{id}`) that
  // would also match, as in the OpenAPI document
  const matching = { static: new Set<string>(), params: new Set<string>() };
  for (const route of app.routes) {
    if (route.method === "ALL") continue; // middleware
    const segments = route.path.replace(/\/+$/, "").split("/");
    const pattern = segments.map((segment) =>
      segment === "*"
        ? ".*"
        : segment.startsWith(":")
        ? "[^/]+"
        : segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    ).join("/");
    if (!new RegExp(`^${pattern}/?$`).test(path)) continue;
    const dynamic = segments.some((segment) => segment === "*" || segment.startsWith(":"));
    matching[dynamic ? "params" : "static"].add(route.method.toUpperCase());
  }
  const methods = matching.static.size > 0 ? matching.static : matching.params;
  if (methods.has("GET")) methods.add("HEAD");
  const order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
  return [...methods].sort((a, b) => order.indexOf(a) - order.indexOf(b));
}

/** The OpenAPI 3.1 document of `app`. */
export function openApiDocument(
  app: OpenAPIHono<BlankEnv>,
): ReturnType<OpenAPIHono["getOpenAPI31Document"]> {
  return app.getOpenAPI31Document({
    openapi: "3.1.0",
    info: {
      title: "ami-exports",
      version: "2",
      description: "Exports of insect-monitoring projects: request, follow, download, schedule. " +
        "Authenticate with `Authorization: Token <key>`.",
    },
  });
}
