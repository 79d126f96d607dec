/** `/api/v2/exports/`: create, list, retrieve, delete, cancel, retry, download, formats. */
import { Hono } from "hono";
import { z } from "zod";
import { zValidator } from "@hono/zod-validator";
import type { Client } from "@temporalio/client";
import type { Config } from "../config/mod.ts";
import type { Sql } from "../db/client.ts";
import {
  deleteWorkflowId,
  type ExportRow,
  exportWorkflowId,
  findExport,
  initialProgress,
  insertExport,
  jobLogs,
  listExports,
} from "../db/exports.ts";
import { describeFormats, getExporter, supportedFormats } from "../registry/mod.ts";
import type { ObjectStorage } from "../storage/types.ts";
import type { exportWorkflow } from "../workflows/export_workflow.ts";
import type { deleteExportWorkflow } from "../workflows/delete_export_workflow.ts";
import type { CurrentUser } from "./auth.ts";
import { jsonError } from "./errors.ts";
import { validateFilters } from "./filters.ts";
import {
  can,
  canRead,
  type ExportAction,
  permittedActions,
  type ProjectAccess,
} from "./permissions.ts";
import { loadProjectAccess } from "./project_access.ts";
import { exportFileUrl, serializeExport } from "./serialize.ts";

/** What the exports routes need. */
export interface ExportsApiDependencies {
  sql: Sql;
  storage: ObjectStorage;
  config: Config;
  temporal: Client;
}

const createSchema = z.object({
  project: z.coerce.number().int().positive(),
  format: z.string().min(1),
  filters: z.record(z.string(), z.unknown()).nullish(),
}).strict();

const listSchema = z.object({
  project_id: z.coerce.number().int().positive().optional(),
  limit: z.coerce.number().int().min(1).max(100).default(10),
  offset: z.coerce.number().int().min(0).default(0),
});

const idSchema = z.object({ id: z.coerce.number().int().positive() });

function validationHook(
  result: { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } },
  c: Parameters<typeof jsonError>[0],
): Response | undefined {
  if (result.success) return undefined;
  const fields: Record<string, string[]> = {};
  for (const issue of result.error!.issues) {
    const key = issue.path.map(String).join(".") || "non_field_errors";
    (fields[key] ??= []).push(issue.message);
  }
  const summary = Object.entries(fields).map(([k, v]) => `${k}: ${v.join(", ")}`).join("; ");
  return jsonError(c, 400, `invalid request: ${summary}`, { fields });
}

/** The exports router; mount it at `/api/v2/exports`. */
export function exportsRoutes(
  deps: ExportsApiDependencies,
): Hono<{ Variables: { user: CurrentUser } }> {
  const { sql, storage, config, temporal } = deps;
  const app = new Hono<{ Variables: { user: CurrentUser } }>({ strict: false });

  async function startExportWorkflow(exportId: number): Promise<void> {
    await temporal.workflow.start<typeof exportWorkflow>("exportWorkflow", {
      taskQueue: config.temporalTaskQueue,
      workflowId: exportWorkflowId(exportId),
      args: [{ exportId, heartbeatTimeoutSeconds: config.heartbeatTimeoutSeconds }],
      workflowIdConflictPolicy: "USE_EXISTING",
    });
  }

  async function present(row: ExportRow, access: ProjectAccess): Promise<Record<string, unknown>> {
    return await serializeExport(row, { storage, config, permissions: permittedActions(access) });
  }

  /** Loads an export the caller may read, or the error response to send. */
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

  app.get(
    "/formats",
    (c) => c.json({ count: supportedFormats().length, results: describeFormats() }),
  );

  app.get("/", zValidator("query", listSchema, validationHook), async (c) => {
    const user = c.get("user");
    const { project_id, limit, offset } = c.req.valid("query");
    if (project_id !== undefined) {
      const access = await loadProjectAccess(sql, user, project_id);
      if (!access || !canRead(access)) return jsonError(c, 404, `project not found: ${project_id}`);
    }
    const { count, rows } = await listExports(sql, {
      projectId: project_id,
      readableBy: { userId: user.id, superuser: user.superuser },
      limit,
      offset,
    });
    const page = (o: number) => {
      const url = new URL(c.req.url);
      url.searchParams.set("limit", String(limit));
      url.searchParams.set("offset", String(o));
      return url.toString();
    };
    const results = [];
    for (const row of rows) {
      const access = (await loadProjectAccess(sql, user, row.project_id))!;
      results.push(await present(row, access));
    }
    return c.json({
      count,
      next: offset + limit < count ? page(offset + limit) : null,
      previous: offset > 0 ? page(Math.max(0, offset - limit)) : null,
      results,
    });
  });

  app.post("/", zValidator("json", createSchema, validationHook), async (c) => {
    const user = c.get("user");
    const body = c.req.valid("json");
    const access = await loadProjectAccess(sql, user, body.project);
    if (!access || !canRead(access)) {
      return jsonError(c, 400, `project does not exist: ${body.project}`);
    }
    if (!can(access, "create")) {
      return jsonError(c, 403, `you may not create exports in project ${body.project}`);
    }
    const exporter = getExporter(body.format);
    if (!exporter) {
      return jsonError(
        c,
        400,
        `unknown export format: ${body.format} (supported: ${supportedFormats().join(", ")})`,
        {
          supported_formats: supportedFormats(),
        },
      );
    }
    const checked = await validateFilters(sql, exporter, body.project, body.filters ?? {});
    if (!checked.ok) return jsonError(c, 400, checked.message, checked.details);
    const exportId = await insertExport(sql, {
      userId: user.id,
      projectId: body.project,
      format: exporter.key,
      filters: checked.filters as Record<string, unknown>,
      filtersDisplay: checked.display,
    });
    try {
      await startExportWorkflow(exportId);
    } catch (error) {
      await sql`delete from data_exports where id = ${exportId}`;
      return jsonError(
        c,
        503,
        `could not start the export workflow, nothing was created: ${error}`,
      );
    }
    return c.json(await present((await findExport(sql, exportId))!, access), 201);
  });

  app.get("/:id", zValidator("param", idSchema, validationHook), async (c) => {
    const found = await loadReadable(c.get("user"), c.req.valid("param").id);
    if ("status" in found) return jsonError(c, found.status, found.message);
    const body = await present(found.row, found.access);
    if (c.req.query("logs") === "true") body.logs = await jobLogs(sql, found.row.id);
    return c.json(body);
  });

  /** Shared guard of the mutating routes: readable, then permitted. */
  async function loadForAction(user: CurrentUser, id: number, action: ExportAction) {
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

  app.delete("/:id", zValidator("param", idSchema, validationHook), async (c) => {
    const found = await loadForAction(c.get("user"), c.req.valid("param").id, "delete");
    if ("status" in found) return jsonError(c, found.status, found.message);
    const handle = await temporal.workflow.start<typeof deleteExportWorkflow>(
      "deleteExportWorkflow",
      {
        taskQueue: config.temporalTaskQueue,
        workflowId: deleteWorkflowId(found.row.id),
        args: [{ exportId: found.row.id }],
        workflowIdConflictPolicy: "USE_EXISTING",
        workflowIdReusePolicy: "ALLOW_DUPLICATE",
      },
    );
    const finished = await Promise.race([
      handle.result().then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), 60_000)),
    ]);
    return finished
      ? c.body(null, 204)
      : c.json({ status: "deleting", workflow_id: handle.workflowId }, 202);
  });

  app.post("/:id/cancel", zValidator("param", idSchema, validationHook), async (c) => {
    const found = await loadForAction(c.get("user"), c.req.valid("param").id, "cancel");
    if ("status" in found) return jsonError(c, found.status, found.message);
    if (!["PENDING", "STARTED"].includes(found.row.status)) {
      return jsonError(c, 409, `export is not running: ${found.row.status}`);
    }
    await temporal.workflow.getHandle(exportWorkflowId(found.row.id)).cancel();
    return c.json(await present((await findExport(sql, found.row.id))!, found.access), 202);
  });

  app.post("/:id/retry", zValidator("param", idSchema, validationHook), async (c) => {
    const found = await loadForAction(c.get("user"), c.req.valid("param").id, "retry");
    if ("status" in found) return jsonError(c, found.status, found.message);
    if (!["FAILURE", "REVOKED"].includes(found.row.status)) {
      return jsonError(
        c,
        409,
        `only a failed or cancelled export can be retried, this one is ${found.row.status}`,
      );
    }
    const [reset] = await sql`
      update data_exports set status = 'PENDING', error = null, error_stage = null, record_count = 0,
        file_size = 0, checksum = null, finished_at = null, updated_at = now()
      where id = ${found.row.id} and status in ('FAILURE', 'REVOKED') returning id`;
    if (!reset) return jsonError(c, 409, "export changed meanwhile, try again");
    await sql`
      update jobs set status = 'PENDING', progress = ${sql.json(initialProgress() as never)},
        finished_at = null, updated_at = now()
      where data_export_id = ${found.row.id}`;
    await startExportWorkflow(found.row.id);
    return c.json(await present((await findExport(sql, found.row.id))!, found.access), 202);
  });

  app.get("/:id/download", zValidator("param", idSchema, validationHook), async (c) => {
    const found = await loadReadable(c.get("user"), c.req.valid("param").id);
    if ("status" in found) return jsonError(c, found.status, found.message);
    if (found.row.status !== "SUCCESS" || !found.row.file_key) {
      return jsonError(c, 409, `export has no file yet: ${found.row.status}`);
    }
    return c.redirect(await exportFileUrl(found.row, { storage, config }), 302);
  });

  return app;
}
