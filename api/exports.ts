/** `/api/v2/exports/`: create, list, retrieve, delete, cancel, retry, download, formats. */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { type Client, WorkflowNotFoundError } from "@temporalio/client";
import type { Context } from "hono";
import type { Config } from "../config/mod.ts";
import type { Sql } from "../db/client.ts";
import {
  type CreatedOrReused,
  createOrReuseExport,
  deleteWorkflowId,
  type ExportIdentity,
  type ExportOrdering,
  type ExportRow,
  exportWorkflowId,
  findExport,
  jobLogs,
  listExports,
  markExportEnded,
  markExportPending,
  storedFilters,
} from "../db/exports.ts";
import { describeFormats, getExporter, supportedFormats } from "../registry/mod.ts";
import { exportSettingsKey } from "../registry/settings_key.ts";
import { StorageUnavailableError } from "../storage/errors.ts";
import type { ObjectStorage } from "../storage/types.ts";
import type { exportWorkflow } from "../workflows/export_workflow.ts";
import {
  EXPORT_FORMAT,
  EXPORT_ID,
  EXPORT_STATUS,
  PROJECT_ID,
  REQUESTED_BY,
  requestedBy,
} from "../workflows/search_attributes.ts";
import type { deleteExportWorkflow } from "../workflows/delete_export_workflow.ts";
import type { CurrentUser } from "../domain/users.ts";
import { validateFilters } from "../domain/filter_validation.ts";
import { checkDestination } from "../domain/webhook_url.ts";
import { newWebhookSecret } from "../domain/webhook_signature.ts";
import { setExportNotify } from "../db/webhooks.ts";
import { startExportDeliveries } from "../activities/webhooks.ts";
import {
  can,
  canRead,
  type ExportAction,
  permittedActions,
  type ProjectAccess,
} from "../domain/permissions.ts";
import { loadProjectAccess } from "../domain/project_access.ts";
import {
  CreatedExportSchema,
  CreateExportSchema,
  errorResponses,
  type ExportJson,
  ExportPageSchema,
  ExportSchema,
  FormatListSchema,
  IdParamSchema,
  jsonResponse as json,
  ListExportsQuerySchema,
  RetrieveQuerySchema,
  ReusedExportSchema,
} from "./schemas.ts";
import { exportFileUrl, serializeExport } from "./serialize.ts";
import { logEvent } from "../domain/log.ts";
import {
  ELLIPSIS,
  joinTruncated,
  MAX_ECHO_CHARS,
  MAX_MESSAGE_CHARS,
  moreMarker,
  truncateList,
  truncateText,
} from "../domain/echo.ts";

/** What the exports routes need. */
export interface ExportsApiDependencies {
  sql: Sql;
  storage: ObjectStorage;
  config: Config;
  temporal: Client;
}

/** The Hono environment of the authenticated API routes. */
export interface ApiEnv {
  Variables: { user: CurrentUser };
}

/**
 * A JSON error response `{"error": message, ...extra}` typed for the route's responses; the
 * message is cut to `MAX_MESSAGE_CHARS` (domain/echo.ts).
 */
export function problem<S extends 400 | 401 | 403 | 404 | 409 | 503>(
  c: Context,
  status: S,
  message: string,
  extra: Record<string, unknown> = {},
): Response & { _data: { error: string }; _status: S; _format: "json" } {
  return c.json({ error: truncateText(message, MAX_MESSAGE_CHARS), ...extra }, status) as never;
}

/**
 * Turns a failed request validation into a 400 naming every field (`fields`); the default hook
 * of every OpenAPI router.
 */
export function validationHook(
  result: { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } },
  c: Context,
): Response | undefined {
  if (result.success) return undefined;
  // zod's messages echo input (unrecognized keys, paths into the body): cut to the echo limits
  const all: Record<string, string[]> = {};
  for (const issue of result.error!.issues) {
    const key = truncateText(
      issue.path.map(String).join(".") || "non_field_errors",
      MAX_ECHO_CHARS,
    );
    (all[key] ??= []).push(truncateText(issue.message, MAX_ECHO_CHARS));
  }
  const shown = truncateList(Object.entries(all));
  const fields = Object.fromEntries(shown.items.map(([key, messages]) => {
    const cut = truncateList(messages);
    return [key, cut.omitted > 0 ? [...cut.items, moreMarker(cut.omitted)] : cut.items];
  }));
  const summary = joinTruncated(
    Object.entries(all).map(([k, v]) => `${k}: ${v.join(", ")}`),
    { separator: "; ", maxChars: MAX_MESSAGE_CHARS - "invalid request: ".length },
  );
  return problem(c, 400, truncateText(`invalid request: ${summary}`, MAX_MESSAGE_CHARS), {
    fields: shown.omitted > 0 ? { ...fields, [ELLIPSIS]: [moreMarker(shown.omitted)] } : fields,
  });
}

const security = [{ TokenAuth: [] }];
const tags = ["exports"];

const listRoute = createRoute({
  method: "get",
  path: "/",
  tags,
  security,
  summary: "List the exports the caller may read",
  request: { query: ListExportsQuerySchema },
  responses: {
    200: json(ExportPageSchema, "A page of exports"),
    ...errorResponses(400, 401, 404),
  },
});

const createExportRoute = createRoute({
  method: "post",
  path: "/",
  tags,
  security,
  summary: "Request an export; it runs in the background",
  request: {
    body: { required: true, content: { "application/json": { schema: CreateExportSchema } } },
  },
  responses: {
    201: json(CreatedExportSchema, "A new export, PENDING (`reused: false`)"),
    200: json(
      ReusedExportSchema,
      "An identical export of unchanged data under the same settings (`reused: true`): a " +
        "SUCCESS one whose file is still in storage, or one still PENDING or STARTED that the " +
        'identical requests share; send `"force": true` to export anyway',
    ),
    ...errorResponses(400, 401, 403, 415, 503),
  },
});

const formatsRoute = createRoute({
  method: "get",
  path: "/formats",
  tags,
  security,
  summary: "The export formats of the registry",
  responses: { 200: json(FormatListSchema, "Every format"), ...errorResponses(401) },
});

const retrieveRoute = createRoute({
  method: "get",
  path: "/{id}",
  tags,
  security,
  summary: "One export with its job progress",
  request: { params: IdParamSchema, query: RetrieveQuerySchema },
  responses: { 200: json(ExportSchema, "The export"), ...errorResponses(400, 401, 404) },
});

const deleteRoute = createRoute({
  method: "delete",
  path: "/{id}",
  tags,
  security,
  summary: "Delete an export: stop it, remove its file and rows",
  request: { params: IdParamSchema },
  responses: {
    204: { description: "Deleted" },
    202: json(
      z.object({ status: z.literal("deleting"), workflow_id: z.string() }),
      "Deletion still running",
    ),
    ...errorResponses(400, 401, 403, 404),
  },
});

const cancelRoute = createRoute({
  method: "post",
  path: "/{id}/cancel",
  tags,
  security,
  summary: "Cancel a running export (it ends REVOKED)",
  request: { params: IdParamSchema },
  responses: {
    202: json(ExportSchema, "Cancellation requested"),
    ...errorResponses(400, 401, 403, 404, 409),
  },
});

const retryRoute = createRoute({
  method: "post",
  path: "/{id}/retry",
  tags,
  security,
  summary: "Run a failed or cancelled export again",
  request: { params: IdParamSchema },
  responses: {
    202: json(ExportSchema, "Restarted, PENDING"),
    ...errorResponses(400, 401, 403, 404, 409),
  },
});

const downloadRoute = createRoute({
  method: "get",
  path: "/{id}/download",
  tags,
  security,
  summary: "Redirect to the export's file (short-lived signed URL)",
  request: { params: IdParamSchema },
  responses: {
    302: {
      description: "Redirect to the file",
      headers: z.object({ Location: z.string() }),
    },
    ...errorResponses(400, 401, 404, 409),
  },
});

/** Every route of the exports router, for the OpenAPI completeness test. */
export const exportsRouteConfigs = [
  listRoute,
  createExportRoute,
  formatsRoute,
  retrieveRoute,
  deleteRoute,
  cancelRoute,
  retryRoute,
  downloadRoute,
];

/** What {@link startExportWorkflow} shows operators about an export. */
export interface ExportDescription extends ExportIdentity {
  project_id: number;
  format: string;
  /** The stored filters document (options under `_options`). */
  filters: Record<string, unknown>;
  user_id: number | null;
  user_email: string | null;
}

/**
 * Starts the export's workflow; a second start of the same export is a no-op. The run carries
 * the search attributes of workflows/search_attributes.ts (`ExportStatus` PENDING until the
 * workflow moves it) and a summary line for the Temporal UI (`<format> · project <p> ·
 * filters <json>`), with the filters in the details.
 */
export async function startExportWorkflow(
  deps: Pick<ExportsApiDependencies, "temporal" | "config">,
  export_: ExportDescription,
): Promise<void> {
  const filters = JSON.stringify(export_.filters);
  await deps.temporal.workflow.start<typeof exportWorkflow>("exportWorkflow", {
    taskQueue: deps.config.temporalTaskQueue,
    workflowId: exportWorkflowId(export_),
    args: [{
      exportId: export_.id,
      heartbeatTimeoutSeconds: deps.config.heartbeatTimeoutSeconds,
      maxAttempts: deps.config.exportMaxAttempts,
    }],
    workflowIdConflictPolicy: "USE_EXISTING",
    typedSearchAttributes: [
      { key: EXPORT_ID, value: export_.id },
      { key: PROJECT_ID, value: export_.project_id },
      { key: EXPORT_FORMAT, value: export_.format },
      { key: EXPORT_STATUS, value: "PENDING" },
      { key: REQUESTED_BY, value: requestedBy(export_) },
    ],
    staticSummary: `export ${export_.id}: ${export_.format} · project ${export_.project_id} · ` +
      `filters ${filters.length > 120 ? `${filters.slice(0, 117)}…` : filters}`,
    staticDetails: `**${export_.format}** export ${export_.id} of project ` +
      `${export_.project_id}, requested by ${requestedBy(export_)}\n\nfilters: \`${filters}\``,
  });
}

/** The outcome of {@link requestExport}. */
export type RequestExportResult =
  | {
    ok: true;
    exportId: number;
    workflowId: string;
    access: ProjectAccess;
    /** True when an identical earlier export was returned instead of a new one. */
    reused: boolean;
    /** With `notify_url`: the secret that signs its events (docs/webhooks.md). */
    notifySecret?: string;
  }
  | { ok: false; status: 400 | 403 | 503; message: string; details?: Record<string, unknown> };

/**
 * Checks and creates an export for `user` and starts its workflow: the one code path of
 * `POST /api/v2/exports/`, the operator CLI and scheduled exports. Nothing is left behind when
 * it fails.
 */
export async function requestExport(
  deps: Pick<ExportsApiDependencies, "sql" | "temporal" | "config" | "storage">,
  request: {
    user: CurrentUser;
    project: number;
    format: string;
    filters?: Record<string, unknown> | null;
    excel_compatible?: boolean;
    /** Export even when an identical SUCCESS export of unchanged data exists (default false). */
    force?: boolean;
    /** Receives the export's end events (docs/webhooks.md); implies `force`. */
    notify_url?: string;
  },
): Promise<RequestExportResult> {
  const { sql } = deps;
  const access = await loadProjectAccess(sql, request.user, request.project);
  if (!access || !canRead(access)) {
    return { ok: false, status: 400, message: `project does not exist: ${request.project}` };
  }
  if (!can(access, "create")) {
    return {
      ok: false,
      status: 403,
      message: `you may not create exports in project ${request.project}`,
    };
  }
  const exporter = getExporter(request.format);
  if (!exporter) {
    return {
      ok: false,
      status: 400,
      message: `unknown export format: ${
        truncateText(request.format, MAX_ECHO_CHARS)
      } (supported: ${supportedFormats().join(", ")})`,
      details: { supported_formats: supportedFormats() },
    };
  }
  if (request.excel_compatible && !(exporter.acceptedOptions ?? []).includes("excel_compatible")) {
    return {
      ok: false,
      status: 400,
      message: `option excel_compatible is not accepted by format ${exporter.key}`,
      details: { fields: { excel_compatible: ["accepted by the CSV formats only"] } },
    };
  }
  const checked = await validateFilters(sql, exporter, request.project, request.filters ?? {});
  if (!checked.ok) {
    return { ok: false, status: 400, message: checked.message, details: checked.details };
  }
  const notify = request.notify_url === undefined
    ? undefined
    : await checkDestination(deps.config.webhooks, "notify_url", request.notify_url);
  if (notify && !notify.ok) return { ok: false, status: 400, message: notify.message };
  const options = { excel_compatible: request.excel_compatible };
  let outcome: CreatedOrReused;
  try {
    outcome = await createOrReuseExport(sql, {
      options,
      userId: request.user.id,
      projectId: request.project,
      format: exporter.key,
      filters: checked.filters as Record<string, unknown>,
      filtersDisplay: checked.display,
      settingsKey: await exportSettingsKey(exporter, deps.config.formats),
      reuse: !request.force && !notify,
      fileExists: async (key) => (await deps.storage.headObject(key)) !== null,
    });
  } catch (error) {
    if (!(error instanceof StorageUnavailableError)) throw error;
    // an identical export's file cannot be checked: nothing is created, ask again later
    return { ok: false, status: 503, message: `storage is unavailable: ${error.message}` };
  }
  for (const id of outcome.lost) {
    logEvent("export file lost", {
      export_id: id,
      stage: "requested",
      project_id: request.project,
    });
  }
  const created = outcome.export;
  if (outcome.reused) {
    logEvent("export reused", {
      export_id: created.id,
      workflow_id: exportWorkflowId(created),
      stage: "requested",
      user_id: request.user.id,
      project_id: request.project,
      format: exporter.key,
    });
    return {
      ok: true,
      exportId: created.id,
      workflowId: exportWorkflowId(created),
      access,
      reused: true,
    };
  }
  const exportId = created.id;
  const notifySecret = notify?.ok ? newWebhookSecret() : undefined;
  if (notify?.ok) await setExportNotify(sql, exportId, { url: notify.url, secret: notifySecret! });
  try {
    await startExportWorkflow(deps, {
      ...created,
      project_id: request.project,
      format: exporter.key,
      filters: storedFilters(checked.filters as Record<string, unknown>, options),
      user_id: request.user.id,
      user_email: request.user.email,
    });
  } catch (error) {
    await sql`delete from data_exports where id = ${exportId}`;
    return {
      ok: false,
      status: 503,
      message: truncateText(
        `could not start the export workflow, nothing was created: ${error}`,
        MAX_MESSAGE_CHARS,
      ),
    };
  }
  logEvent("export requested", {
    export_id: exportId,
    workflow_id: exportWorkflowId(created),
    stage: "requested",
    user_id: request.user.id,
    project_id: request.project,
    format: exporter.key,
  });
  return {
    ok: true,
    exportId,
    workflowId: exportWorkflowId(created),
    access,
    reused: false,
    notifySecret,
  };
}

/** The exports router; mount it at `/api/v2/exports`. */
export function exportsRoutes(deps: ExportsApiDependencies): OpenAPIHono<ApiEnv> {
  const { sql, storage, config, temporal } = deps;
  const app = new OpenAPIHono<ApiEnv>({ strict: false, defaultHook: validationHook });

  async function present(row: ExportRow, access: ProjectAccess): Promise<ExportJson> {
    return await serializeExport(row, { storage, config, permissions: permittedActions(access) });
  }

  /** Loads an export the caller may read, or the error to send. */
  async function loadReadable(
    user: CurrentUser,
    id: number,
  ): Promise<{ row: ExportRow; access: ProjectAccess } | { status: 404; message: string }> {
    const row = await findExport(sql, id);
    const access = row && await loadProjectAccess(sql, user, row.project_id);
    if (!row || !access || !canRead(access)) {
      return { status: 404, message: `export not found: ${id}` };
    }
    return { row, access };
  }

  /** Shared guard of the mutating routes: readable, then permitted. */
  async function loadForAction(
    user: CurrentUser,
    id: number,
    action: ExportAction,
  ): Promise<{ row: ExportRow; access: ProjectAccess } | { status: 403 | 404; message: string }> {
    const found = await loadReadable(user, id);
    if ("status" in found) return found;
    if (!can(found.access, action)) {
      return {
        status: 403 as const,
        message: `you may not ${action} exports in project ${found.row.project_id}`,
      };
    }
    return found;
  }

  app.openapi(
    formatsRoute,
    (c) => c.json({ count: supportedFormats().length, results: describeFormats() }, 200),
  );

  app.openapi(listRoute, async (c) => {
    const user = c.get("user");
    const { project_id, limit, offset, ordering, status, format } = c.req.valid("query");
    if (project_id !== undefined) {
      const access = await loadProjectAccess(sql, user, project_id);
      if (!access || !canRead(access)) return problem(c, 404, `project not found: ${project_id}`);
    }
    const { count, rows } = await listExports(sql, {
      projectId: project_id,
      readableBy: { userId: user.id, superuser: user.superuser },
      status,
      format,
      ordering: ordering as ExportOrdering,
      limit,
      offset,
    });
    const page = (o: number): string => {
      const url = new URL(c.req.url);
      url.searchParams.set("limit", String(limit));
      url.searchParams.set("offset", String(o));
      return url.toString();
    };
    const accessByProject = new Map<number, ProjectAccess>();
    const results: ExportJson[] = [];
    for (const row of rows) {
      let access = accessByProject.get(row.project_id);
      if (!access) {
        access = (await loadProjectAccess(sql, user, row.project_id))!;
        accessByProject.set(row.project_id, access);
      }
      results.push(await present(row, access));
    }
    return c.json({
      count,
      next: offset + limit < count ? page(offset + limit) : null,
      previous: offset > 0 ? page(Math.max(0, offset - limit)) : null,
      results,
    }, 200);
  });

  app.openapi(createExportRoute, async (c) => {
    const user = c.get("user");
    const body = c.req.valid("json");
    const result = await requestExport(deps, { user, ...body });
    if (!result.ok) {
      switch (result.status) {
        case 400:
          return problem(c, 400, result.message, result.details);
        case 403:
          return problem(c, 403, result.message, result.details);
        case 503:
          return problem(c, 503, result.message, result.details);
      }
    }
    const found = await present((await findExport(sql, result.exportId))!, result.access);
    if (result.reused) return c.json({ ...found, reused: true as const }, 200);
    const secret = result.notifySecret ? { notify_secret: result.notifySecret } : {};
    return c.json({ ...found, reused: false as const, ...secret }, 201);
  });

  app.openapi(retrieveRoute, async (c) => {
    const found = await loadReadable(c.get("user"), c.req.valid("param").id);
    if ("status" in found) return problem(c, found.status, found.message);
    const body = await present(found.row, found.access);
    if (c.req.valid("query").logs === "true") {
      body.logs = (await jobLogs(sql, found.row.id)).map((l) => ({
        level: l.level,
        message: truncateText(l.message, MAX_MESSAGE_CHARS),
        created_at: l.created_at.toISOString(),
      }));
    }
    return c.json(body, 200);
  });

  app.openapi(deleteRoute, async (c) => {
    const found = await loadForAction(c.get("user"), c.req.valid("param").id, "delete");
    if ("status" in found) {
      return found.status === 403 ? problem(c, 403, found.message) : problem(c, 404, found.message);
    }
    const handle = await temporal.workflow.start<typeof deleteExportWorkflow>(
      "deleteExportWorkflow",
      {
        taskQueue: config.temporalTaskQueue,
        workflowId: deleteWorkflowId(found.row),
        args: [{ exportId: found.row.id }],
        workflowIdConflictPolicy: "USE_EXISTING",
        workflowIdReusePolicy: "ALLOW_DUPLICATE",
      },
    );
    logEvent("export deletion requested", {
      export_id: found.row.id,
      workflow_id: handle.workflowId,
      stage: "delete",
    });
    const finished = await Promise.race([
      handle.result().then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), 60_000)),
    ]);
    return finished
      ? c.body(null, 204)
      : c.json({ status: "deleting" as const, workflow_id: handle.workflowId }, 202);
  });

  app.openapi(cancelRoute, async (c) => {
    const found = await loadForAction(c.get("user"), c.req.valid("param").id, "cancel");
    if ("status" in found) {
      return found.status === 403 ? problem(c, 403, found.message) : problem(c, 404, found.message);
    }
    if (!["PENDING", "STARTED"].includes(found.row.status)) {
      return problem(c, 409, `export is not running: ${found.row.status}`);
    }
    const handle = temporal.workflow.getHandle(exportWorkflowId(found.row));
    const open = await handle.describe().then(
      (d) => d.status.name === "RUNNING",
      (error) => {
        if (error instanceof WorkflowNotFoundError) return false;
        throw error;
      },
    );
    if (open) {
      await handle.cancel();
    } else {
      // No open workflow (it was terminated, or its start was lost): nothing else will end the
      // export. Mark it REVOKED so it can be retried (a retry, or housekeeping, aborts the
      // partial upload that upload_id still names).
      await markExportEnded(sql, found.row.id, { status: "REVOKED" });
      await startExportDeliveries({ sql, config, temporal }, found.row.id); // docs/webhooks.md
    }
    return c.json(await present((await findExport(sql, found.row.id))!, found.access), 202);
  });

  app.openapi(retryRoute, async (c) => {
    const found = await loadForAction(c.get("user"), c.req.valid("param").id, "retry");
    if ("status" in found) {
      return found.status === 403 ? problem(c, 403, found.message) : problem(c, 404, found.message);
    }
    if (!["FAILURE", "REVOKED"].includes(found.row.status)) {
      return problem(
        c,
        409,
        `only a failed or cancelled export can be retried, this one is ${found.row.status}`,
      );
    }
    if (!(await markExportPending(sql, found.row.id))) {
      return problem(c, 409, "export changed meanwhile, try again");
    }
    await startExportWorkflow(deps, found.row);
    return c.json(await present((await findExport(sql, found.row.id))!, found.access), 202);
  });

  app.openapi(downloadRoute, async (c) => {
    const found = await loadReadable(c.get("user"), c.req.valid("param").id);
    if ("status" in found) return problem(c, found.status, found.message);
    if (found.row.status !== "SUCCESS" || !found.row.file_key) {
      return problem(c, 409, `export has no file yet: ${found.row.status}`);
    }
    return c.redirect(await exportFileUrl(found.row, { storage, config }), 302);
  });

  return app;
}
