// Long because it declares every route of the export resource with its OpenAPI contract; the rules live in request_export.ts, db/ and domain/.
/** `/api/v2/exports/`: create, list, retrieve, delete, cancel, retry, download, formats. */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { exportDataCard } from "./datacard.ts";
import { WorkflowNotFoundError } from "@temporalio/client";
import {
  deleteWorkflowId,
  type ExportOrdering,
  type ExportRow,
  exportWorkflowId,
  findExport,
  jobLogs,
  listExports,
  markExportEnded,
  markExportPending,
  markFileLost,
} from "../db/exports.ts";
import { inTransaction } from "../db/transaction.ts";
import { startExportEmails } from "../activities/email_outbox.ts";
import { failIfWorkflowLost, LOST_EXPORT_GRACE_SECONDS } from "../activities/lost_exports.ts";
import { startExportDeliveries } from "../activities/webhook_outbox.ts";
import { queuePositions } from "../db/export_queue.ts";
import { describeFormats, supportedFormats } from "../registry/mod.ts";
import type { deleteExportWorkflow } from "../workflows/delete_export_workflow.ts";
import type { CurrentUser } from "../domain/users.ts";
import { can, canRead, type ExportAction, type ProjectAccess } from "../domain/permissions.ts";
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
  noFieldsBody,
  RetrieveQuerySchema,
  ReusedExportSchema,
} from "./schemas.ts";
import { presentExport } from "./present_export.ts";
import { exportFileUrl } from "./serialize.ts";
import { SignedLinkQuerySchema } from "./signed_download.ts";
import { logEvent } from "../domain/log.ts";
import { expiredMessage } from "../domain/retention.ts";
import { MAX_MESSAGE_CHARS, truncateText } from "../domain/echo.ts";
import { errorText } from "../domain/error_text.ts";
import type { ApiEnv, ExportsApiDependencies } from "./env.ts";
import { problem, validationHook } from "./errors.ts";
import { findReadableExport } from "./readable_export.ts";
import { refusedExportProblem, requestExport, startExportWorkflow } from "./request_export.ts";

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
    201: json(
      CreatedExportSchema,
      "A new export (`reused: false`) as it is when answered: PENDING, or STARTED when a worker " +
        "already picked it up",
    ),
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
  request: { params: IdParamSchema, body: noFieldsBody },
  responses: {
    202: json(ExportSchema, "Cancellation requested"),
    ...errorResponses(400, 401, 403, 404, 409, 415),
  },
});

/**
 * How long a retry waits (ms) for the run that failed or was cancelled to close: it marks the
 * export before its workflow ends (a few activities of clean-up at most).
 */
const RETRY_CLOSE_WAIT_MS = 10_000;

const retryRoute = createRoute({
  method: "post",
  path: "/{id}/retry",
  tags,
  security,
  summary: "Run a failed or cancelled export again",
  request: { params: IdParamSchema, body: noFieldsBody },
  responses: {
    202: json(ExportSchema, "Restarted, PENDING"),
    ...errorResponses(400, 401, 403, 404, 409, 415),
  },
});

/** How long a read reuses the answer that an export's workflow runs (ms). */
const LOOKUP_TTL_MS = 30_000;

/** Answers kept at most (a bound on the map, not a limit on reads). */
const LOOKED_UP_MAX = 10_000;

const downloadRoute = createRoute({
  method: "get",
  path: "/{id}/download",
  tags,
  // a token, or a signed link (`expires` and `signature`, api/signed_download.ts, docs/email.md)
  security: [...security, {}],
  summary: "Redirect to the export's file (short-lived signed URL)",
  description: "With an API token, or without one through the signed link of the export's " +
    "email (`expires` and `signature`); a bad or expired signature is a 403.",
  request: { params: IdParamSchema, query: SignedLinkQuerySchema },
  responses: {
    302: {
      description: "Redirect to the file",
      headers: z.object({ Location: z.string() }),
    },
    ...errorResponses(400, 401, 403, 404, 409, 410),
  },
});

const dataCardRoute = createRoute({
  method: "get",
  path: "/{id}/datacard",
  tags,
  security,
  summary: "The export's data card (Markdown): request, filters, file, settings, source " +
    "version, citation and what each column or member file means",
  request: { params: IdParamSchema },
  responses: {
    200: {
      description: "The data card of a SUCCESS (or EXPIRED) export",
      content: { "text/markdown": { schema: z.string() } },
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
  dataCardRoute,
];

/** The exports router; mount it at `/api/v2/exports`. */
export function exportsRoutes(deps: ExportsApiDependencies): OpenAPIHono<ApiEnv> {
  const { sql, storage, config, temporal } = deps;
  const app = new OpenAPIHono<ApiEnv>({ strict: false, defaultHook: validationHook });

  /** The export as the caller sees it ({@link presentExport}). */
  const present = (row: ExportRow, access: ProjectAccess, positions?: Map<number, number>) =>
    presentExport({ sql, storage, config }, row, access, positions);

  /** Loads an export the caller may read, or the error to send. */
  async function loadReadable(
    user: CurrentUser,
    id: number,
  ): Promise<{ row: ExportRow; access: ProjectAccess } | { status: 404; message: string }> {
    return await findReadableExport(sql, { user, id }) ??
      { status: 404, message: `export not found: ${id}` };
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
      if (!access || !canRead(access)) {
        const message = `project not found: ${project_id}`;
        return problem(c, 404, message, { fields: { project_id: [message] } });
      }
    }
    const list = () =>
      listExports(sql, {
        projectId: project_id,
        readableBy: { userId: user.id, superuser: user.superuser },
        status,
        format,
        ordering: ordering as ExportOrdering,
        limit,
        offset,
      });
    let listed = await list();
    // a page never says STARTED of an export nothing runs: the lost ones on it are ended
    // (FAILURE), then it is listed again, so its status filter and count hold
    for (let again = 0; again < 3; again++) {
      const ended = await Promise.all(listed.rows.map(endedAsLost));
      if (!ended.includes(true)) break;
      listed = await list();
    }
    const { count, rows } = listed;
    const page = (o: number): string => {
      const url = new URL(c.req.url);
      url.searchParams.set("limit", String(limit));
      url.searchParams.set("offset", String(o));
      return url.toString();
    };
    const accessByProject = new Map<number, ProjectAccess>();
    const positions = rows.some((row) => row.status === "PENDING")
      ? await queuePositions(sql, config.exportMaxRunning)
      : undefined;
    const results: ExportJson[] = [];
    for (const row of rows) {
      let access = accessByProject.get(row.project_id);
      if (!access) {
        access = (await loadProjectAccess(sql, user, row.project_id))!;
        accessByProject.set(row.project_id, access);
      }
      results.push(await present(row, access, positions));
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
    if (!result.ok) return refusedExportProblem(c, result);
    const found = await present((await findExport(sql, result.exportId))!, result.access);
    if (result.reused) return c.json({ ...found, reused: true as const }, 200);
    const secret = result.notifySecret ? { notify_secret: result.notifySecret } : {};
    return c.json({ ...found, reused: false as const, ...secret }, 201);
  });

  /**
   * `row` as it is, or, when it reads as running, unchanged past the grace, but its workflow is
   * gone, as {@link failIfWorkflowLost} just ended it (FAILURE): a read never says STARTED of
   * an export nothing runs.
   */
  /**
   * Null when storage holds the SUCCESS export's file as it was written (its recorded size);
   * else the export is ended FAILURE ({@link markFileLost}) and the answer says why (409; 410
   * when it expired meanwhile): a download never redirects to a file that is gone or is
   * another one.
   */
  async function fileLost(
    row: ExportRow,
  ): Promise<{ status: 409 | 410; message: string } | null> {
    const head = await storage.headObject(row.file_key!);
    if (head?.size === Number(row.file_size)) return null;
    const ended = await inTransaction(
      sql,
      (tx) => markFileLost(tx, { ...row, file_key: row.file_key! }, head),
    );
    const now = await findExport(sql, row.id);
    if (ended) {
      logEvent("export file lost", { export_id: row.id, stage: "storage", error: now?.error });
    }
    // expired meanwhile (retention deleted the file under the row's lock): 410, as for any
    if (now?.status === "EXPIRED") return { status: 410, message: expiredMessage(now) };
    return {
      status: 409,
      message: `export has no file: ${now?.error ?? "the file is no longer in storage"}`,
    };
  }

  async function truthfulRow(row: ExportRow): Promise<ExportRow> {
    if (!(await endedAsLost(row))) return row;
    return (await findExport(sql, row.id)) ?? row;
  }

  /**
   * True when `row` read as running, unchanged past the grace by the database's clock, and
   * {@link failIfWorkflowLost} has just ended it because its workflow is gone.
   */
  async function endedAsLost(row: ExportRow): Promise<boolean> {
    if (row.status !== "PENDING" && row.status !== "STARTED") return false;
    if (row.unchanged_seconds < LOST_EXPORT_GRACE_SECONDS) return false;
    // a dashboard polling a page of exports waiting for a slot asks Temporal once a TTL each
    if ((lookedUp.get(row.id) ?? 0) > Date.now()) return false;
    const ended = await failIfWorkflowLost(deps, row, row.unchanged_seconds);
    if (!ended) {
      if (lookedUp.size >= LOOKED_UP_MAX) {
        for (const [id, until] of lookedUp) if (until <= Date.now()) lookedUp.delete(id);
        if (lookedUp.size >= LOOKED_UP_MAX) lookedUp.clear();
      }
      lookedUp.set(row.id, Date.now() + LOOKUP_TTL_MS);
    }
    return ended;
  }

  /** Exports whose workflow was found running (or Temporal could not say): until when (ms). */
  const lookedUp = new Map<number, number>();

  app.openapi(retrieveRoute, async (c) => {
    const found = await loadReadable(c.get("user"), c.req.valid("param").id);
    if ("status" in found) return problem(c, found.status, found.message);
    const body = await present(await truthfulRow(found.row), found.access);
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

  /** True while a run of `workflowId` is open; a workflow gone from retention counts as closed. */
  function runIsOpen(workflowId: string): Promise<boolean> {
    return temporal.workflow.getHandle(workflowId).describe().then(
      (d) => d.status.name === "RUNNING",
      (error) => {
        if (error instanceof WorkflowNotFoundError) return false;
        throw error;
      },
    );
  }

  app.openapi(cancelRoute, async (c) => {
    const found = await loadForAction(c.get("user"), c.req.valid("param").id, "cancel");
    if ("status" in found) {
      return found.status === 403 ? problem(c, 403, found.message) : problem(c, 404, found.message);
    }
    if (!["PENDING", "STARTED"].includes(found.row.status)) {
      return problem(c, 409, `export is not running: ${found.row.status}`);
    }
    const workflowId = exportWorkflowId(found.row);
    if (await runIsOpen(workflowId)) {
      await temporal.workflow.getHandle(workflowId).cancel();
    } else {
      // No open workflow (it was terminated, or its start was lost): nothing else will end the
      // export. Mark it REVOKED so it can be retried (a retry, or housekeeping, aborts the
      // partial upload that upload_id still names). Only while it still runs: a run that ended
      // it (FAILURE) and closed since the read above keeps its end and its error.
      const revoked = await markExportEnded(sql, found.row.id, {
        status: "REVOKED",
        email: config.email.smtpUrl !== undefined, // docs/email.md
        onlyRunning: true,
      });
      if (!revoked) {
        const now = await findExport(sql, found.row.id);
        return problem(c, 409, `export is not running: ${now?.status ?? "deleted"}`);
      }
      await startExportDeliveries({ sql, config, temporal }, found.row.id); // docs/webhooks.md
      await startExportEmails({ sql, config, temporal }, found.row.id); // docs/email.md
    }
    return c.json(await present((await findExport(sql, found.row.id))!, found.access), 202);
  });

  /**
   * True once no run of `workflowId` is open (closed, or gone from Temporal's retention),
   * waiting up to {@link RETRY_CLOSE_WAIT_MS} for a run that is ending; false if it still runs.
   */
  async function previousRunClosed(workflowId: string): Promise<boolean> {
    const deadline = Date.now() + RETRY_CLOSE_WAIT_MS;
    for (;;) {
      if (!(await runIsOpen(workflowId))) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

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
    // The run that failed (or was cancelled) marks the row before its workflow closes: a new
    // start under the same workflow id while it still runs would attach to that run
    // (USE_EXISTING) and leave the export PENDING for ever. Wait, bounded, for it to close.
    if (!(await previousRunClosed(exportWorkflowId(found.row)))) {
      return problem(
        c,
        409,
        `the export's previous run is still ending, try again in a few seconds`,
      );
    }
    if (!(await markExportPending(sql, found.row.id))) {
      return problem(c, 409, "export changed meanwhile, try again");
    }
    try {
      await startExportWorkflow(deps, found.row);
    } catch (error) {
      // No run will take the PENDING export (it would wait for the lost-export check): end it
      // FAILURE now, saying why, and answer so. Its error is the start's; retry again later.
      const cause = errorText(error);
      await markExportEnded(sql, found.row.id, {
        status: "FAILURE",
        message: truncateText(`could not start its workflow for a retry: ${cause}`, 2000),
        stage: "workflow",
        onlyRunning: true,
      });
      await startExportDeliveries({ sql, config, temporal }, found.row.id); // docs/webhooks.md
      return problem(
        c,
        503,
        truncateText(
          `could not start the export's workflow, the export is FAILURE again: ${cause}`,
          MAX_MESSAGE_CHARS,
        ),
      );
    }
    return c.json(await present((await findExport(sql, found.row.id))!, found.access), 202);
  });

  app.openapi(downloadRoute, async (c) => {
    const found = await loadReadable(c.get("user"), c.req.valid("param").id);
    if ("status" in found) return problem(c, found.status, found.message);
    if (found.row.status === "EXPIRED") return problem(c, 410, expiredMessage(found.row));
    if (found.row.status !== "SUCCESS" || !found.row.file_key) {
      return problem(c, 409, `export has no file yet: ${found.row.status}`);
    }
    const lost = await fileLost(found.row);
    if (lost) return problem(c, lost.status, lost.message);
    return c.redirect(await exportFileUrl(found.row, { storage, config }), 302);
  });

  app.openapi(dataCardRoute, async (c) => {
    const found = await loadReadable(c.get("user"), c.req.valid("param").id);
    if ("status" in found) return problem(c, found.status, found.message);
    if (!["SUCCESS", "EXPIRED"].includes(found.row.status)) {
      return problem(c, 409, `export has no data card before it succeeds: ${found.row.status}`);
    }
    // a card describes the file: never one that is gone or was replaced
    const lost = found.row.status === "SUCCESS" ? await fileLost(found.row) : null;
    if (lost?.status === 409) return problem(c, 409, lost.message);
    const card = await exportDataCard(found.row, config);
    if (card === undefined) {
      return problem(c, 409, `export format is no longer registered: ${found.row.format}`);
    }
    return c.body(card, 200, { "Content-Type": "text/markdown; charset=utf-8" });
  });

  return app;
}
