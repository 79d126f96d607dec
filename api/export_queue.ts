/**
 * `GET /api/v2/exports/queue/`: the exports waiting for a slot, in admission order, for
 * operators (docs/fair-scheduling.md). Mounted before the exports router, so that `queue` is not
 * read as an export id.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { listQueue } from "../db/export_queue.ts";
import { canSeeQueue } from "../domain/permissions.ts";
import type { ApiEnv, ExportsApiDependencies } from "./env.ts";
import { problem, validationHook } from "./errors.ts";
import { errorResponses, jsonResponse as json } from "./schemas.ts";

/** One waiting export of the queue. */
export const QueuedExportSchema = z.object({
  position: z.number().int().min(1).openapi({
    description: "1-based place in the admission order (the export's `queue_position`)",
  }),
  export_id: z.number().int(),
  user: z.object({
    id: z.number().int(),
    name: z.string().nullable(),
    email: z.string().nullable(),
  }).nullable().openapi({
    description: "The owner: the requesting user, or the schedule's owner; null when deleted",
  }),
  project: z.object({ id: z.number().int(), name: z.string() }),
  format: z.string(),
  created_at: z.string(),
  waited_seconds: z.number().int().min(0).openapi({
    description: "Seconds since the export was requested",
  }),
  admissible: z.boolean().openapi({
    description: "A slot is free for it now: its workflow admits it at its next poll (~1 s)",
  }),
}).openapi("QueuedExport");

/** The queue: every waiting export, in admission order, and the caps in force. */
export const ExportQueueSchema = z.object({
  count: z.number().int(),
  max_running_per_user: z.number().int().min(0).openapi({
    description: "`EXPORT_MAX_RUNNING_PER_USER` (0: unlimited)",
  }),
  max_running_per_project: z.number().int().min(0).openapi({
    description: "`EXPORT_MAX_RUNNING_PER_PROJECT` (0: unlimited)",
  }),
  results: z.array(QueuedExportSchema),
}).openapi("ExportQueue");

const queueRoute = createRoute({
  method: "get",
  path: "/",
  tags: ["exports"],
  security: [{ TokenAuth: [] }],
  summary: "Exports waiting for a slot, in admission order (operators only)",
  responses: {
    200: json(ExportQueueSchema, "The waiting exports"),
    ...errorResponses(401, 403),
  },
});

/** The queue router; mount it at `/api/v2/exports/queue`, before the exports router. */
export function exportQueueRoutes(
  deps: Pick<ExportsApiDependencies, "sql" | "config">,
): OpenAPIHono<ApiEnv> {
  const app = new OpenAPIHono<ApiEnv>({ strict: false, defaultHook: validationHook });
  app.openapi(queueRoute, async (c) => {
    if (!canSeeQueue(c.get("user"))) {
      return problem(c, 403, "only operators (superusers) may see the export queue");
    }
    const caps = deps.config.exportMaxRunning;
    const queue = await listQueue(deps.sql, caps);
    return c.json({
      count: queue.length,
      max_running_per_user: caps.perUser,
      max_running_per_project: caps.perProject,
      results: queue.map((q) => ({ ...q, created_at: q.created_at.toISOString() })),
    }, 200);
  });
  return app;
}
