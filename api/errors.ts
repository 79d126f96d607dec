import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { MAX_MESSAGE_CHARS, truncateText } from "../domain/echo.ts";

/**
 * A JSON error response `{"error": message, ...extra}`; the message is cut to
 * `MAX_MESSAGE_CHARS` (domain/echo.ts), whatever input it repeats.
 */
export function jsonError(
  c: Context,
  status: ContentfulStatusCode,
  message: string,
  extra: Record<string, unknown> = {},
): Response {
  return c.json({ error: truncateText(message, MAX_MESSAGE_CHARS), ...extra }, status);
}

/** gRPC status UNAVAILABLE (grpc/grpc doc/statuscodes.md): the server cannot be reached. */
const GRPC_UNAVAILABLE = 14;
/** Node/Deno socket error codes meaning "nobody answered". */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTFOUND",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
]);

/**
 * The dependency an error says is unreachable (`"Temporal"`, `"storage"`, `"database"`), or
 * undefined for any other error. Such errors answer 503, not 500: the request was fine.
 */
export function unavailableDependency(error: unknown): string | undefined {
  const e = error as { name?: string; code?: unknown } | null;
  if (!e || typeof e !== "object") return undefined;
  if (e.name === "TemporalUnavailableError") return "Temporal";
  if (e.name === "StorageUnavailableError") return "storage";
  if (e.code === GRPC_UNAVAILABLE) return "Temporal";
  if (typeof e.code === "string" && NETWORK_CODES.has(e.code)) return "database";
  return undefined;
}
