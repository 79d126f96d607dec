import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** A JSON error response `{"error": message, ...extra}`. */
export function jsonError(
  c: Context,
  status: ContentfulStatusCode,
  message: string,
  extra: Record<string, unknown> = {},
): Response {
  return c.json({ error: message, ...extra }, status);
}
