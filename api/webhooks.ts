/**
 * Webhooks (docs/webhooks.md): `/api/v2/projects/<id>/webhooks/` (create, list, delete) and
 * `/api/v2/exports/<id>/deliveries/` (the events of an export and every delivery attempt).
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import {
  deleteWebhook,
  insertWebhook,
  listExportDeliveries,
  listWebhooks,
  WEBHOOK_EVENT_TYPES,
  type WebhookRow,
} from "../db/webhooks.ts";
import { can, canRead, canSeeDeliveryDestination } from "../domain/permissions.ts";
import { loadProjectAccess } from "../domain/project_access.ts";
import type { CurrentUser } from "../domain/users.ts";
import { logEvent } from "../domain/log.ts";
import { checkDestination, MAX_WEBHOOK_URL_LENGTH } from "../domain/webhook_url.ts";
import { newWebhookSecret } from "../domain/webhook_signature.ts";
import type { ApiEnv, ExportsApiDependencies } from "./env.ts";
import { problem, validationHook } from "./errors.ts";
import { findReadableExport } from "./readable_export.ts";
import { errorResponses, IdParamSchema, idSchema, jsonResponse as json } from "./schemas.ts";

const security = [{ TokenAuth: [] }];

/** A webhook or notify destination in a request: an http(s) URL (the rest is checked after). */
export const WebhookUrlSchema = z.string().min(1).max(MAX_WEBHOOK_URL_LENGTH).regex(
  /^[Hh][Tt][Tt][Pp][Ss]?:\/\/[^\s/?#]+[^\s]*$/,
  "must be an http or https URL",
).openapi({
  format: "uri",
  description: "http or https; refused (400) when any address of its host is loopback, " +
    "link-local, private, unique-local, unspecified, multicast or CGNAT (docs/webhooks.md)",
  example: "https://hooks.example.org/ami-exports",
});

const EventTypeSchema = z.enum(WEBHOOK_EVENT_TYPES);

/** `POST /api/v2/projects/<id>/webhooks/`. */
export const CreateWebhookSchema = z.object({
  url: WebhookUrlSchema,
  events: z.array(EventTypeSchema).min(1).max(WEBHOOK_EVENT_TYPES.length).optional().openapi({
    description: "The events to send (default: all of them)",
  }),
}).strict().openapi("CreateWebhook");

/** A webhook as the API shows it: never its secret, except once at creation. */
export const WebhookSchema = z.object({
  id: z.number().int(),
  project: z.number().int(),
  url: z.string(),
  events: z.array(EventTypeSchema),
  created_at: z.string(),
}).openapi("Webhook");

/** The creation answer: the webhook and its signing secret, shown this once. */
export const CreatedWebhookSchema = WebhookSchema.extend({
  secret: z.string().openapi({
    description: "HMAC-SHA256 key of the `Webhook-Signature` header; shown only in this answer",
  }),
}).openapi("CreatedWebhook");

const WebhookListSchema = z.object({
  count: z.number().int(),
  results: z.array(WebhookSchema),
}).openapi("WebhookList");

const WebhookParamSchema = z.object({
  id: IdParamSchema.shape.id,
  webhook_id: idSchema().openapi({
    param: { name: "webhook_id", in: "path" },
    example: 3,
  }),
});

/** One event of an export and its delivery attempts. */
export const DeliveryEventSchema = z.object({
  id: z.string().openapi({ description: "The event id (`Webhook-Id`, the body's `id`)" }),
  type: EventTypeSchema,
  webhook_id: z.number().int().nullable().openapi({
    description: "The project webhook, or null for the export's `notify_url`",
  }),
  url: z.string().nullable().openapi({
    description: "Where the event goes; null for a caller who may not see it: a project " +
      "webhook's URL is shown to who may manage the project's webhooks, a `notify_url` to the " +
      "export's requester (and superusers), and the attempts' errors of a hidden URL are " +
      "reduced to what does not name it (docs/webhooks.md)",
  }),
  state: z.enum(["pending", "delivered", "failed"]),
  created_at: z.string(),
  ended_at: z.string().nullable(),
  attempts: z.array(z.object({
    attempt: z.number().int(),
    status_code: z.number().int().nullable(),
    error: z.string().nullable(),
    at: z.string(),
    next_try_at: z.string().nullable().openapi({
      description: "When the next attempt is due; null when none follows",
    }),
  })),
}).openapi("WebhookDeliveryEvent");

const DeliveryListSchema = z.object({
  count: z.number().int(),
  results: z.array(DeliveryEventSchema),
}).openapi("WebhookDeliveryList");

const tags = ["webhooks"];

const createWebhookRoute = createRoute({
  method: "post",
  path: "/{id}/webhooks",
  tags,
  security,
  summary: "Add a webhook to the project (its secret is in this answer only)",
  request: {
    params: IdParamSchema,
    body: { required: true, content: { "application/json": { schema: CreateWebhookSchema } } },
  },
  responses: {
    201: json(CreatedWebhookSchema, "The webhook, with its secret"),
    ...errorResponses(400, 401, 403, 404, 415),
  },
});

const listWebhooksRoute = createRoute({
  method: "get",
  path: "/{id}/webhooks",
  tags,
  security,
  summary: "The project's webhooks (without secrets)",
  request: { params: IdParamSchema },
  responses: {
    200: json(WebhookListSchema, "Every webhook of the project"),
    ...errorResponses(400, 401, 403, 404),
  },
});

const deleteAllRoute = createRoute({
  method: "delete",
  path: "/{id}/webhooks",
  tags,
  security,
  summary: "Remove every webhook of the project (their pending events are dropped)",
  request: { params: IdParamSchema },
  responses: { 204: { description: "Removed" }, ...errorResponses(400, 401, 403, 404) },
});

const deleteOneRoute = createRoute({
  method: "delete",
  path: "/{id}/webhooks/{webhook_id}",
  tags,
  security,
  summary: "Remove one webhook (its pending events are dropped)",
  request: { params: WebhookParamSchema },
  responses: { 204: { description: "Removed" }, ...errorResponses(400, 401, 403, 404) },
});

const deliveriesRoute = createRoute({
  method: "get",
  path: "/{id}/deliveries",
  tags,
  security,
  summary: "The webhook events of an export and every delivery attempt",
  request: { params: IdParamSchema },
  responses: {
    200: json(DeliveryListSchema, "The events, oldest first"),
    ...errorResponses(400, 401, 404),
  },
});

/**
 * The answer to a caller {@link webhooksRoutes}' `manageable` refused: a problem response with
 * its status (403: may read the project but not manage it; 404: may not read it) and message.
 */
function refusal(c: Context, denied: { status: 403 | 404; message: string }) {
  return denied.status === 403 ? problem(c, 403, denied.message) : problem(c, 404, denied.message);
}

function present(row: WebhookRow): z.infer<typeof WebhookSchema> {
  return {
    id: row.id,
    project: row.project_id,
    url: row.url,
    events: row.events,
    created_at: row.created_at.toISOString(),
  };
}

/**
 * The project webhooks router; mount it at `/api/v2/projects`. Every route needs the project's
 * manage permission (the right to create exports, as for schedules, domain/permissions.ts): a
 * project the caller may not read is a 404, one it may read but not manage a 403.
 */
export function webhooksRoutes(deps: ExportsApiDependencies): OpenAPIHono<ApiEnv> {
  const { sql, config } = deps;
  const app = new OpenAPIHono<ApiEnv>({ strict: false, defaultHook: validationHook });

  async function manageable(
    user: CurrentUser,
    projectId: number,
  ): Promise<{ status: 403 | 404; message: string } | undefined> {
    const access = await loadProjectAccess(sql, user, projectId);
    if (!access || !canRead(access)) {
      return { status: 404, message: `project not found: ${projectId}` };
    }
    if (!can(access, "create")) {
      return { status: 403, message: `you may not manage webhooks in project ${projectId}` };
    }
    return undefined;
  }

  app.openapi(createWebhookRoute, async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const denied = await manageable(c.get("user"), id);
    if (denied) return refusal(c, denied);
    const checked = await checkDestination(config.webhooks, "url", body.url);
    if (!checked.ok) {
      return problem(c, 400, checked.message, { fields: { url: [checked.message] } });
    }
    const secret = newWebhookSecret();
    const row = await insertWebhook(sql, {
      projectId: id,
      userId: c.get("user").id,
      url: checked.url,
      events: [...new Set(body.events ?? WEBHOOK_EVENT_TYPES)],
      secret,
    });
    logEvent("webhook created", { project_id: id, webhook_id: row.id, stage: "webhook" });
    return c.json({ ...present(row), secret }, 201);
  });

  app.openapi(listWebhooksRoute, async (c) => {
    const { id } = c.req.valid("param");
    const denied = await manageable(c.get("user"), id);
    if (denied) return refusal(c, denied);
    const rows = await listWebhooks(sql, id);
    return c.json({ count: rows.length, results: rows.map(present) }, 200);
  });

  app.openapi(deleteAllRoute, async (c) => {
    const { id } = c.req.valid("param");
    const denied = await manageable(c.get("user"), id);
    if (denied) return refusal(c, denied);
    await sql`delete from webhooks where project_id = ${id}`;
    return c.body(null, 204);
  });

  app.openapi(deleteOneRoute, async (c) => {
    const { id, webhook_id } = c.req.valid("param");
    const denied = await manageable(c.get("user"), id);
    if (denied) return refusal(c, denied);
    if (!(await deleteWebhook(sql, id, webhook_id))) {
      return problem(c, 404, `webhook not found in project ${id}: ${webhook_id}`);
    }
    return c.body(null, 204);
  });

  return app;
}

/**
 * An attempt's error as a caller who may not see the event's URL reads it: the error texts
 * name the destination (fetch's `error sending request for url (<url>)`, a refused address's
 * host, a redirect's Location), so only their kind is kept: `answered <status>`, `redirect not
 * followed: <status>`, `webhook URL refused`, or `no answer (network error or timeout)`.
 * Null stays null (a 2xx).
 */
export function hiddenDestinationError(
  statusCode: number | null,
  error: string | null,
): string | null {
  if (error === null) return null;
  if (statusCode !== null) {
    return statusCode >= 300 && statusCode < 400
      ? `redirect not followed: ${statusCode}`
      : `answered ${statusCode}`;
  }
  if (error.startsWith("webhook URL refused")) return "webhook URL refused";
  return "no answer (network error or timeout)";
}

/**
 * `GET /api/v2/exports/<id>/deliveries/`; mount the router at `/api/v2/exports`. Whoever may
 * read the export may read its deliveries, never a secret; an event's URL (and the errors that
 * name it) only if {@link canSeeDeliveryDestination} (domain/permissions.ts).
 */
export function exportDeliveriesRoutes(deps: ExportsApiDependencies): OpenAPIHono<ApiEnv> {
  const { sql } = deps;
  const app = new OpenAPIHono<ApiEnv>({ strict: false, defaultHook: validationHook });
  app.openapi(deliveriesRoute, async (c) => {
    const { id } = c.req.valid("param");
    const found = await findReadableExport(sql, { user: c.get("user"), id });
    if (!found) return problem(c, 404, `export not found: ${id}`);
    const { row, access } = found;
    const events = await listExportDeliveries(sql, id);
    const user = c.get("user");
    return c.json({
      count: events.length,
      results: events.map((e) => {
        const visible = canSeeDeliveryDestination(access, {
          userId: user.id,
          exportUserId: row.user_id,
          projectWebhook: e.webhook_id !== null,
        });
        return {
          ...e,
          url: visible ? e.url : null,
          created_at: e.created_at.toISOString(),
          ended_at: e.ended_at?.toISOString() ?? null,
          attempts: e.attempts.map((a) => ({
            ...a,
            error: visible ? a.error : hiddenDestinationError(a.status_code, a.error),
            at: a.at.toISOString(),
            next_try_at: a.next_try_at?.toISOString() ?? null,
          })),
        };
      }),
    }, 200);
  });
  return app;
}
