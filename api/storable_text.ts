/**
 * Text PostgreSQL cannot store, refused at the door: a request body's strings (values and keys)
 * end up in `text` and `jsonb` columns, and PostgreSQL stores neither U+0000 (`text` cannot hold
 * the NUL byte, `jsonb` refuses the `\u0000` escape: "unsupported Unicode escape sequence") nor
 * an unpaired UTF-16 surrogate (`\ud800` is no Unicode scalar value, so it has no UTF-8 form:
 * RFC 8259 §8.2). Without this check such a body reached the database and answered 500.
 */
import type { MiddlewareHandler } from "hono";
import { jsonError } from "./errors.ts";
import { MAX_ECHO_CHARS, truncateText } from "../domain/echo.ts";

/**
 * Where in `value` (a parsed JSON document) a string PostgreSQL cannot store sits, and why:
 * `{ path: "options.split_seed", problem: "holds U+0000" }`; undefined when every string is
 * storable. Paths join keys with dots and give array indexes in brackets (`taxa[2]`).
 */
export function unstorableText(value: unknown): { path: string; problem: string } | undefined {
  // depth-first with a stack of its own: a body may nest 100,000 arrays deep
  const pending: [unknown, string][] = [[value, ""]];
  while (pending.length > 0) {
    const [item, path] = pending.pop()!;
    if (typeof item === "string") {
      const problem = textProblem(item);
      if (problem) return { path: path || "(body)", problem };
    } else if (Array.isArray(item)) {
      for (let i = item.length - 1; i >= 0; i--) pending.push([item[i], `${path}[${i}]`]);
    } else if (item !== null && typeof item === "object") {
      const entries = Object.entries(item);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, child] = entries[i];
        const at = path ? `${path}.${key}` : key;
        const keyProblem = textProblem(key);
        if (keyProblem) return { path: at, problem: `its key ${keyProblem}` };
        pending.push([child, at]);
      }
    }
  }
  return undefined;
}

function textProblem(text: string): string | undefined {
  if (text.includes("\u0000")) return "holds U+0000 (NUL), which cannot be stored";
  if (!text.isWellFormed()) return "holds an unpaired UTF-16 surrogate (not Unicode text)";
  return undefined;
}

/**
 * Middleware: a JSON request body holding a string PostgreSQL cannot store
 * ({@link unstorableText}) is a 400 naming where, with `fields: {<path>: [problem]}`, before any
 * route reads it; a body that is not JSON goes on to the route, whose validation says so.
 */
export function refuseUnstorableText(): MiddlewareHandler {
  return async (c, next) => {
    const type = c.req.header("content-type") ?? "";
    if (!["POST", "PUT", "PATCH"].includes(c.req.method) || !/\bjson\b/i.test(type)) {
      return await next();
    }
    let body: unknown;
    try {
      body = JSON.parse(await c.req.text());
    } catch {
      return await next();
    }
    const found = unstorableText(body);
    if (!found) return await next();
    const path = truncateText(found.path, MAX_ECHO_CHARS);
    return jsonError(c, 400, `${path}: ${found.problem}`, { fields: { [path]: [found.problem] } });
  };
}
