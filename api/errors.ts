import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import {
  ELLIPSIS,
  joinTruncated,
  MAX_ECHO_CHARS,
  MAX_MESSAGE_CHARS,
  moreMarker,
  truncateList,
  truncateText,
} from "../domain/echo.ts";

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

/**
 * A JSON error response `{"error": message, ...extra}` typed for the route's responses; the
 * message is cut to `MAX_MESSAGE_CHARS` (domain/echo.ts).
 */
export function problem<S extends 400 | 401 | 403 | 404 | 409 | 410 | 503>(
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
