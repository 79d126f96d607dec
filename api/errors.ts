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
 * `MAX_MESSAGE_CHARS` (domain/echo.ts), whatever input it repeats. A 400 always names its bad
 * parameters under `fields` ({@link ErrorFields}).
 */
export function jsonError(
  c: Context,
  status: 400,
  message: string,
  extra: { fields: ErrorFields } & Record<string, unknown>,
): Response;
export function jsonError(
  c: Context,
  status: Exclude<ContentfulStatusCode, 400>,
  message: string,
  extra?: Record<string, unknown>,
): Response;
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
 * `fields` of a 400 (docs/http-api.md "Requests, errors and the contract"): each bad parameter,
 * named as the client wrote it (a query or path parameter, `limit`; a body member as its path,
 * `options.split_seed`, `filters.taxon_id`, `columns[2]`; `body` for the body as a whole), with
 * one or more messages saying what it must be.
 */
export type ErrorFields = Record<string, string[]>;

/** The typed JSON error response of a route. */
export type Problem<S> = Response & { _data: { error: string }; _status: S; _format: "json" };

/**
 * A JSON error response `{"error": message, ...extra}` typed for the route's responses; the
 * message is cut to `MAX_MESSAGE_CHARS` (domain/echo.ts). A 400 always names its bad
 * parameters under `fields` ({@link ErrorFields}).
 */
export function problem(
  c: Context,
  status: 400,
  message: string,
  extra: { fields: ErrorFields } & Record<string, unknown>,
): Problem<400>;
export function problem<S extends 401 | 403 | 404 | 409 | 410 | 503>(
  c: Context,
  status: S,
  message: string,
  extra?: Record<string, unknown>,
): Problem<S>;
export function problem(
  c: Context,
  status: 400 | 401 | 403 | 404 | 409 | 410 | 503,
  message: string,
  extra: Record<string, unknown> = {},
): Problem<number> {
  return c.json({ error: truncateText(message, MAX_MESSAGE_CHARS), ...extra }, status) as never;
}

/**
 * What is wrong with a value, as a predicate a person reads after the parameter's name
 * ("limit must be an integer from 1 to 100"), from a zod issue: zod's own messages
 * ("Invalid input: expected number, received string") name types, not what to send.
 */
export function issueMessage(issue: ZodIssueLike): string {
  // our schemas write their messages as such predicates (`must be an integer from 1 to 100`);
  // zod's own start with a capital (`Invalid input: …`, `Too small: …`)
  if (/^[a-z]/.test(issue.message)) return issue.message;
  const kind = (expected: unknown): string =>
    ({
      number: "a number",
      string: "a string",
      boolean: "true or false",
      object: "an object",
      array: "a list",
      int: "an integer",
    } as Record<string, string>)[String(expected)] ?? String(expected);
  switch (issue.code) {
    case "invalid_type":
      // zod v4 leaves out `input` unless asked to report it; its message says "received undefined"
      return /received undefined$/.test(issue.message)
        ? "is required"
        : `must be ${kind(issue.expected)}`;
    case "invalid_value":
      return issue.values && issue.values.length > 0
        ? `must be one of: ${issue.values.map((v) => String(v)).join(", ")}`
        : issue.message;
    case "too_small":
    case "too_big": {
      const bound = issue.code === "too_small" ? "at least" : "at most";
      if (issue.origin === "string") {
        return `must have ${bound} ${issue.minimum ?? issue.maximum} characters`;
      }
      if (issue.origin === "array" || issue.origin === "set") {
        return `must have ${bound} ${issue.minimum ?? issue.maximum} items`;
      }
      return `must be ${bound} ${issue.minimum ?? issue.maximum}`;
    }
    case "invalid_format":
      return issue.format === "regex"
        ? "is not in the accepted form"
        : `must be a valid ${issue.format}`;
    case "invalid_union":
      return "matches none of the accepted forms";
    default:
      return issue.message;
  }
}

/** The members of a zod (v4) issue that {@link issueMessage} and {@link validationHook} read. */
export interface ZodIssueLike {
  code?: string;
  path: PropertyKey[];
  message: string;
  expected?: unknown;
  values?: unknown[];
  origin?: string;
  minimum?: unknown;
  maximum?: unknown;
  format?: string;
  keys?: string[];
}

/** A zod issue path as the client wrote it: `options.split_seed`, `columns[2]`, `body`. */
function pathName(path: PropertyKey[]): string {
  let name = "";
  for (const part of path) {
    name += typeof part === "number" ? `[${part}]` : name ? `.${String(part)}` : String(part);
  }
  return name || "body";
}

/**
 * Turns a failed request validation into a 400 naming every bad parameter under `fields`, each
 * with human messages ({@link issueMessage}); the error says the same, parameter by parameter
 * (`limit must be an integer from 1 to 100`). The default hook of every OpenAPI router. A key
 * the request may not hold is named as its own field (`options.crop_paddin: is not accepted`).
 */
export function validationHook(
  result: { success: boolean; error?: { issues: ZodIssueLike[] } },
  c: Context,
): Response | undefined {
  if (result.success) return undefined;
  // zod's messages echo input (unrecognized keys, paths into the body): cut to the echo limits
  const all: Record<string, string[]> = {};
  const add = (name: string, message: string): void => {
    (all[truncateText(name, MAX_ECHO_CHARS)] ??= []).push(truncateText(message, MAX_ECHO_CHARS));
  };
  for (const issue of result.error!.issues) {
    if (issue.code === "unrecognized_keys" && issue.keys) {
      const under = issue.path.length > 0 ? `${pathName(issue.path)}.` : "";
      for (const key of issue.keys) add(`${under}${key}`, "is not accepted by this request");
    } else {
      add(pathName(issue.path), issueMessage(issue));
    }
  }
  const shown = truncateList(Object.entries(all));
  const fields = Object.fromEntries(shown.items.map(([key, messages]) => {
    const cut = truncateList(messages);
    return [key, cut.omitted > 0 ? [...cut.items, moreMarker(cut.omitted)] : cut.items];
  }));
  const summary = joinTruncated(
    Object.entries(all).map(([k, v]) =>
      // a predicate reads after the name (`limit must be …`), anything else after a colon
      /^(must|is|has) /.test(v[0]) ? `${k} ${v.join(", and ")}` : `${k}: ${v.join("; ")}`
    ),
    { separator: "; ", maxChars: MAX_MESSAGE_CHARS },
  );
  return problem(c, 400, summary, {
    fields: shown.omitted > 0 ? { ...fields, [ELLIPSIS]: [moreMarker(shown.omitted)] } : fields,
  });
}
