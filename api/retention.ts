/**
 * `/api/v2/exports/<id>/extend/` and `/api/v2/exports/<id>/rerun/`: retention of export files,
 * after GBIF's downloads (`eraseAfter`, postponed by the owner; an erased download can be run
 * again). docs/retention.md.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import {
  exportFilters,
  exportOptions,
  type ExportRow,
  findExport,
  formatOptions,
} from "../db/exports.ts";
import { extendExport } from "../db/retention.ts";
import { logEvent } from "../domain/log.ts";
import { canExtend, type ProjectAccess } from "../domain/permissions.ts";
import { extensionSeconds } from "../domain/retention.ts";
import type { ApiEnv, ExportsApiDependencies } from "./env.ts";
import { problem, validationHook } from "./errors.ts";
import { findReadableExport } from "./readable_export.ts";
import { refusedExportProblem, requestExport } from "./request_export.ts";
import {
  CreatedExportSchema,
  errorResponses,
  ExportSchema,
  IdParamSchema,
  jsonResponse as json,
  ReusedExportSchema,
} from "./schemas.ts";
import { presentExport } from "./present_export.ts";

const security = [{ TokenAuth: [] }];
const tags = ["exports"];

/** `POST …/extend/` body: `{days?}`, 1 to `maxDays` (`EXPORT_RETENTION_MAX_DAYS`). */
function extendBodySchema(maxDays: number): z.ZodType<{ days?: number }> {
  return z.object({
    days: z.number().int().min(1).max(
      maxDays,
      `must be at most ${maxDays} days (EXPORT_RETENTION_MAX_DAYS)`,
    ).optional().openapi({
      description: "Keep the file this many days from now (default EXPORT_RETENTION_DAYS; at " +
        `most ${maxDays}, EXPORT_RETENTION_MAX_DAYS)`,
      example: 30,
    }),
  }).strict().openapi("ExtendExport") as never;
}

/** `POST …/rerun/` body: `{force?}`, as for creating an export. */
const RerunBodySchema = z.object({
  force: z.boolean().optional().openapi({
    description: "Export even when an identical export of unchanged data exists (default " +
      "false: that export is returned with 200 and `reused: true`)",
    example: false,
  }),
}).strict().openapi("RerunExport");

/** `POST …/extend/`, documented with this deployment's `EXPORT_RETENTION_MAX_DAYS`. */
// deno-lint-ignore explicit-function-return-type
function extendRoute(maxDays: number) {
  return createRoute({
    method: "post",
    path: "/{id}/extend",
    tags,
    security,
    summary: "Keep a SUCCESS export's file longer: `expires_at` becomes now + days",
    description: "Allowed to the user who requested the export and to the project's managers " +
      "(owner, project_manager). Only a SUCCESS export (else 409); an export kept forever " +
      "(`expires_at` null) stays so. A bad body (days not an integer from 1 to " +
      `${maxDays}) is a 400 and changes nothing.`,
    request: {
      params: IdParamSchema,
      body: {
        required: false,
        content: { "application/json": { schema: extendBodySchema(maxDays) } },
      },
    },
    responses: {
      200: json(ExportSchema, "The export with its new `expires_at`"),
      ...errorResponses(400, 401, 403, 404, 409, 415),
    },
  });
}

const rerunRoute = createRoute({
  method: "post",
  path: "/{id}/rerun",
  tags,
  security,
  summary: "Request a new export with this export's project, format, filters and options",
  description: "For the caller, through the same checks and reuse as `POST /api/v2/exports/` " +
    "(the caller must be allowed to create exports in the project): 201 with a new export, or " +
    "200 with an identical export of unchanged data. An EXPIRED export is never reused.",
  request: {
    params: IdParamSchema,
    body: { required: false, content: { "application/json": { schema: RerunBodySchema } } },
  },
  responses: {
    201: json(CreatedExportSchema, "A new export, PENDING (`reused: false`)"),
    200: json(ReusedExportSchema, "An identical export of unchanged data (`reused: true`)"),
    ...errorResponses(400, 401, 403, 404, 415),
  },
});

/** The retention router; mount it at `/api/v2/exports` beside the exports router. */
export function retentionRoutes(deps: ExportsApiDependencies): OpenAPIHono<ApiEnv> {
  const { sql, storage, config } = deps;
  const app = new OpenAPIHono<ApiEnv>({ strict: false, defaultHook: validationHook });

  /** The export as the caller sees it, its queue position included ({@link presentExport}). */
  const present = (row: ExportRow, access: ProjectAccess) =>
    presentExport({ sql, storage, config }, row, access);

  app.openapi(extendRoute(config.retention.maxDays), async (c) => {
    const user = c.get("user");
    const id = c.req.valid("param").id;
    const found = await findReadableExport(sql, { user, id });
    if (!found) return problem(c, 404, `export not found: ${id}`);
    const { row, access } = found;
    if (!canExtend(access, { userId: user.id, exportUserId: row.user_id })) {
      return problem(
        c,
        403,
        `you may not extend export ${id}: only its requester or a manager of project ` +
          `${row.project_id} may`,
      );
    }
    const asked = extensionSeconds(c.req.valid("json").days, config.retention);
    if (!asked.ok) return problem(c, 400, asked.message, { fields: { days: [asked.message] } });
    const notSuccess = (status: string) =>
      problem(
        c,
        409,
        `only a SUCCESS export can be extended, export ${id} is ${status}` +
          (status === "EXPIRED" ? ` (POST /api/v2/exports/${id}/rerun/ exports it again)` : ""),
      );
    if (row.status !== "SUCCESS") return notSuccess(row.status);
    const extended = await extendExport(sql, id, { seconds: asked.seconds, by: user.email });
    if (extended.outcome === "missing") return problem(c, 404, `export not found: ${id}`);
    if (extended.outcome === "not_success") return notSuccess(extended.status);
    logEvent("export retention extended", {
      export_id: id,
      stage: "extend",
      user_id: user.id,
      expires_at: extended.expiresAt?.toISOString() ?? null,
    });
    return c.json(await present((await findExport(sql, id))!, access), 200);
  });

  app.openapi(rerunRoute, async (c) => {
    const user = c.get("user");
    const id = c.req.valid("param").id;
    const found = await findReadableExport(sql, { user, id });
    if (!found) return problem(c, 404, `export not found: ${id}`);
    const { row } = found;
    const result = await requestExport(deps, {
      user,
      project: row.project_id,
      format: row.format,
      filters: exportFilters(row) as Record<string, unknown>,
      excel_compatible: exportOptions(row).excel_compatible === true ? true : undefined,
      columns: exportOptions(row).columns,
      options: formatOptions(row),
      force: c.req.valid("json").force,
    });
    if (!result.ok) return refusedExportProblem(c, result);
    logEvent("export rerun", {
      export_id: result.exportId,
      workflow_id: result.workflowId,
      stage: "requested",
      rerun_of: id,
      reused: result.reused,
    });
    const body = await present((await findExport(sql, result.exportId))!, result.access);
    if (result.reused) return c.json({ ...body, reused: true as const }, 200);
    return c.json({ ...body, reused: false as const }, 201);
  });

  return app;
}
