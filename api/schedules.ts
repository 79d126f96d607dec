/**
 * `/api/v2/export-schedules/`: recurring exports as Temporal Schedules (`export-schedule-<id>`),
 * visible and triggerable in the Temporal UI and CLI. Each run creates a normal export owned by
 * the schedule's user (scheduledExportWorkflow); overlapping runs are skipped.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { ScheduleNotFoundError, ScheduleOverlapPolicy } from "@temporalio/client";
import type { CurrentUser } from "../domain/users.ts";
import {
  deleteScheduleRow,
  findSchedule,
  insertSchedule,
  listSchedules,
  scheduleExportIds,
  type ScheduleRow,
  scheduleTemporalId,
  setSchedulePaused,
} from "../db/schedules.ts";
import { getExporter, supportedFormats } from "../registry/mod.ts";
import type { scheduledExportWorkflow } from "../workflows/scheduled_export_workflow.ts";
import type { ApiEnv, ExportsApiDependencies } from "./env.ts";
import { problem, validationHook } from "./errors.ts";
import { validateFilters } from "../domain/filter_validation.ts";
import { imageHostsProblem } from "./image_hosts.ts";
import { logEvent } from "../domain/log.ts";
import { errorText, innermostMessage } from "../domain/error_text.ts";
import {
  MAX_ECHO_CHARS,
  MAX_MESSAGE_CHARS,
  truncateDisplay,
  truncateText,
} from "../domain/echo.ts";
import { displayName } from "./serialize.ts";
import { can, canRead } from "../domain/permissions.ts";
import { loadProjectAccess } from "../domain/project_access.ts";
import {
  CreateScheduleSchema,
  intervalSeconds,
  ListSchedulesQuerySchema,
  type ScheduleJson,
  SchedulePageSchema,
  ScheduleSchema,
} from "./schedule_schemas.ts";
import { errorResponses, IdParamSchema, jsonResponse as json, noFieldsBody } from "./schemas.ts";

const security = [{ TokenAuth: [] }];
const tags = ["export schedules"];

const listRoute = createRoute({
  method: "get",
  path: "/",
  tags,
  security,
  summary: "List the schedules the caller may read",
  request: { query: ListSchedulesQuerySchema },
  responses: {
    200: json(SchedulePageSchema, "A page of schedules"),
    ...errorResponses(400, 401, 404),
  },
});

const createScheduleRoute = createRoute({
  method: "post",
  path: "/",
  tags,
  security,
  summary: "Create a schedule (cron or interval); needs the right to create exports",
  request: {
    body: { required: true, content: { "application/json": { schema: CreateScheduleSchema } } },
  },
  responses: {
    201: json(ScheduleSchema, "The schedule"),
    ...errorResponses(400, 401, 403, 415, 503),
  },
});

const retrieveRoute = createRoute({
  method: "get",
  path: "/{id}",
  tags,
  security,
  summary: "One schedule, with its next run times",
  request: { params: IdParamSchema },
  responses: { 200: json(ScheduleSchema, "The schedule"), ...errorResponses(400, 401, 404) },
});

function actionRoute(action: "pause" | "unpause" | "trigger", summary: string) {
  return createRoute({
    method: "post",
    path: `/{id}/${action}`,
    tags,
    security,
    summary,
    request: {
      params: IdParamSchema,
      body: noFieldsBody,
    },
    responses: {
      202: json(ScheduleSchema, "Done"),
      ...errorResponses(400, 401, 403, 404, 415, 503),
    },
  });
}

const pauseRoute = actionRoute("pause", "Pause: no runs until unpaused");
const unpauseRoute = actionRoute("unpause", "Resume the runs");
const triggerRoute = actionRoute("trigger", "Run now (skipped if a run is still going)");

const deleteRoute = createRoute({
  method: "delete",
  path: "/{id}",
  tags,
  security,
  summary: "Delete the schedule (its exports stay)",
  request: { params: IdParamSchema },
  responses: { 204: { description: "Deleted" }, ...errorResponses(400, 401, 403, 404, 503) },
});

/** The schedules router; mount it at `/api/v2/export-schedules`. */
export function schedulesRoutes(deps: ExportsApiDependencies): OpenAPIHono<ApiEnv> {
  const { sql, config, temporal } = deps;
  const app = new OpenAPIHono<ApiEnv>({ strict: false, defaultHook: validationHook });

  async function present(row: ScheduleRow, detail = false): Promise<ScheduleJson> {
    const body: ScheduleJson = {
      id: row.id,
      schedule_id: scheduleTemporalId(row.id),
      user: { id: row.user_id, name: displayName(row.user_name) },
      project: row.project_id,
      format: row.format,
      filters: row.filters,
      filters_display: truncateDisplay(row.filters_display ?? {}),
      cron: row.cron,
      interval_seconds: row.interval_seconds,
      timezone: row.timezone,
      keep_last: row.keep_last,
      paused: row.paused,
      recent_exports: await scheduleExportIds(sql, row.id),
      created_at: row.created_at.toISOString(),
      updated_at: row.updated_at.toISOString(),
    };
    // paused is Temporal's, in the list as in one schedule: an operator may pause or unpause
    // it in the Temporal UI or CLI (docs/operations.md), and two reads must not disagree
    try {
      const described = await temporal.schedule.getHandle(scheduleTemporalId(row.id))
        .describe();
      body.paused = described.state.paused;
      if (detail) {
        body.next_run_times = described.info.nextActionTimes.map((d) => d.toISOString());
        body.runs = described.info.numActionsTaken;
      }
    } catch {
      // Temporal unreachable (or the Schedule gone): the row, as last set through the API
    }
    return body;
  }

  /** A schedule the caller may read (and, for `manage`, change), or the error to send. */
  async function load(
    user: CurrentUser,
    id: number,
    manage: boolean,
  ): Promise<ScheduleRow | { status: 403 | 404; message: string }> {
    const row = await findSchedule(sql, id);
    const access = row && await loadProjectAccess(sql, user, row.project_id);
    if (!row || !access || !canRead(access)) {
      return { status: 404, message: `export schedule not found: ${id}` };
    }
    if (manage && !can(access, "create")) {
      return {
        status: 403,
        message: `you may not manage export schedules in project ${row.project_id}`,
      };
    }
    return row;
  }

  app.openapi(listRoute, async (c) => {
    const user = c.get("user");
    const { project_id, limit, offset } = c.req.valid("query");
    if (project_id !== undefined) {
      const access = await loadProjectAccess(sql, user, project_id);
      if (!access || !canRead(access)) {
        const message = `project not found: ${project_id}`;
        return problem(c, 404, message, { fields: { project_id: [message] } });
      }
    }
    const { count, rows } = await listSchedules(sql, {
      projectId: project_id,
      readableBy: { userId: user.id, superuser: user.superuser },
      limit,
      offset,
    });
    const page = (o: number): string => {
      const url = new URL(c.req.url);
      url.searchParams.set("limit", String(limit));
      url.searchParams.set("offset", String(o));
      return url.toString();
    };
    const results: ScheduleJson[] = await Promise.all(rows.map((row) => present(row)));
    return c.json({
      count,
      next: offset + limit < count ? page(offset + limit) : null,
      previous: offset > 0 ? page(Math.max(0, offset - limit)) : null,
      results,
    }, 200);
  });

  app.openapi(createScheduleRoute, async (c) => {
    const user = c.get("user");
    const body = c.req.valid("json");
    const access = await loadProjectAccess(sql, user, body.project);
    if (!access || !canRead(access)) {
      const message = `project does not exist: ${body.project}`;
      return problem(c, 400, message, { fields: { project: [message] } });
    }
    if (!can(access, "create")) {
      return problem(c, 403, `you may not create export schedules in project ${body.project}`);
    }
    const exporter = getExporter(body.format);
    if (!exporter) {
      return problem(
        c,
        400,
        `unknown export format: ${truncateText(body.format, MAX_ECHO_CHARS)} (supported: ${
          supportedFormats().join(", ")
        })`,
        {
          fields: { format: [`must be one of: ${supportedFormats().join(", ")}`] },
          supported_formats: supportedFormats(),
        },
      );
    }
    if (exporter.fetchesImages) {
      // every run would leave out every image and fail late: refused as a single export is
      // (api/image_hosts.ts; a schedule has no options, so only the format fetches images)
      const images = await imageHostsProblem(sql, {
        projectId: body.project,
        hosts: config.formats.images?.hosts ?? [],
      });
      if (images) return problem(c, 400, images, { fields: { format: [images] } });
    }
    const checked = await validateFilters(sql, exporter, body.project, body.filters ?? {});
    if (!checked.ok) {
      return problem(c, 400, checked.message, { ...checked.details, fields: checked.fields });
    }
    const seconds = body.interval === undefined ? null : intervalSeconds(body.interval);
    if (seconds !== null && seconds < config.scheduleMinIntervalSeconds) {
      const message = `interval must be at least ${config.scheduleMinIntervalSeconds} s ` +
        `(SCHEDULE_MIN_INTERVAL_SECONDS): every run is a new export`;
      return problem(c, 400, message, { fields: { interval: [message] } });
    }
    const id = await insertSchedule(sql, {
      userId: user.id,
      projectId: body.project,
      format: exporter.key,
      filters: checked.filters as Record<string, unknown>,
      filtersDisplay: checked.display,
      cron: body.cron ?? null,
      intervalSeconds: seconds,
      timezone: body.timezone,
      keepLast: body.keep_last ?? null,
    });
    const scheduleId = scheduleTemporalId(id);
    let nextRuns: number;
    try {
      const handle = await temporal.schedule.create<typeof scheduledExportWorkflow>({
        scheduleId,
        spec: body.cron !== undefined
          ? { cronExpressions: [body.cron], timezone: body.timezone }
          : { intervals: [{ every: `${seconds ?? 0}s` }] },
        action: {
          type: "startWorkflow",
          workflowType: "scheduledExportWorkflow",
          workflowId: `${scheduleId}-run`,
          taskQueue: config.temporalTaskQueue,
          args: [{ scheduleId: id }],
        },
        policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: "1 minute" },
        memo: { project_id: body.project, format: exporter.key },
      });
      nextRuns = (await handle.describe()).info.nextActionTimes.length;
      // a valid cron that matches no date (`0 3 31 2 *`, February 31st) would never run
      if (nextRuns === 0) await handle.delete();
    } catch (error) {
      await deleteScheduleRow(sql, id);
      const invalid = error instanceof TypeError ||
        /invalid|INVALID_ARGUMENT/i.test(errorText(error)) ||
        (error as { cause?: { code?: number } }).cause?.code === 3;
      // the reason is the innermost cause ("Minute is not in range [0-59]"), not the wrapper's
      // "Failed to create schedule"
      const reason = truncateText(innermostMessage(error), MAX_MESSAGE_CHARS);
      return invalid
        ? problem(c, 400, `invalid schedule cron or interval: ${reason}`, {
          fields: { [body.cron !== undefined ? "cron" : "interval"]: [reason] },
        })
        : problem(
          c,
          503,
          `could not create the Temporal Schedule, nothing was created: ${errorText(error)}`,
        );
    }
    if (nextRuns === 0) {
      await deleteScheduleRow(sql, id);
      const reason = `cron ${truncateText(body.cron ?? "", MAX_ECHO_CHARS)} matches no date: ` +
        "the schedule would never run";
      return problem(c, 400, reason, { fields: { cron: [reason] } });
    }
    logEvent("export schedule created", {
      schedule_id: scheduleId,
      project_id: body.project,
      format: exporter.key,
      stage: "schedule",
    });
    return c.json(await present((await findSchedule(sql, id))!, true), 201);
  });

  app.openapi(retrieveRoute, async (c) => {
    const found = await load(c.get("user"), c.req.valid("param").id, false);
    if ("status" in found) return problem(c, 404, found.message);
    return c.json(await present(found, true), 200);
  });

  for (
    const [route, action] of [[pauseRoute, "pause"], [unpauseRoute, "unpause"], [
      triggerRoute,
      "trigger",
    ]] as const
  ) {
    app.openapi(route, async (c) => {
      const found = await load(c.get("user"), c.req.valid("param").id, true);
      if ("status" in found) {
        return found.status === 403
          ? problem(c, 403, found.message)
          : problem(c, 404, found.message);
      }
      const handle = temporal.schedule.getHandle(scheduleTemporalId(found.id));
      try {
        if (action === "pause") await handle.pause(`paused by user ${c.get("user").id}`);
        if (action === "unpause") await handle.unpause(`unpaused by user ${c.get("user").id}`);
        if (action === "trigger") await handle.trigger();
      } catch (error) {
        return problem(c, 503, `could not ${action} the Temporal Schedule: ${error}`);
      }
      if (action !== "trigger") await setSchedulePaused(sql, found.id, action === "pause");
      logEvent(`export schedule ${action}`, { schedule_id: handle.scheduleId, stage: "schedule" });
      return c.json(await present((await findSchedule(sql, found.id))!, true), 202);
    });
  }

  app.openapi(deleteRoute, async (c) => {
    const found = await load(c.get("user"), c.req.valid("param").id, true);
    if ("status" in found) {
      return found.status === 403 ? problem(c, 403, found.message) : problem(c, 404, found.message);
    }
    try {
      await temporal.schedule.getHandle(scheduleTemporalId(found.id)).delete();
    } catch (error) {
      if (!(error instanceof ScheduleNotFoundError)) {
        return problem(c, 503, `could not delete the Temporal Schedule: ${error}`);
      }
    }
    await deleteScheduleRow(sql, found.id);
    logEvent("export schedule deleted", {
      schedule_id: scheduleTemporalId(found.id),
      stage: "schedule",
    });
    return c.body(null, 204);
  });

  return app;
}
