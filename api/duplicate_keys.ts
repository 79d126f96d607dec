/**
 * Duplicate member names in a JSON request body, refused at the door. `JSON.parse` keeps the
 * last of `{"split_seed": "a", "split_seed": "b"}` and drops the first without a word, so the
 * request meant one thing to its writer and another to the API. RFC 8259 §4: "The names within
 * an object SHOULD be unique … When the names within an object are not unique, the behavior of
 * software that receives such an object is unpredictable"; I-JSON (RFC 7493 §2.3) makes them
 * MUST be unique. No npm package checks this without a parser of its own, so this is a small
 * scanner over text `JSON.parse` has already accepted.
 */
import type { MiddlewareHandler } from "hono";
import { jsonError } from "./errors.ts";
import { MAX_ECHO_CHARS, truncateText } from "../domain/echo.ts";

/**
 * The first member name repeated within one object of `text`, a JSON document that
 * `JSON.parse` accepts: `{ path: "options.split_seed", key: "split_seed" }` (path: the
 * enclosing object's keys joined with dots, array indexes in brackets, then the key), or
 * undefined when every object's names are unique. Names compare after unescaping, so `"a"` and
 * `"\u0061"` are the same name. Linear in the text's length; keeps its own stack (a body may
 * nest 100,000 levels deep).
 */
export function duplicateKey(text: string): { path: string; key: string } | undefined {
  /** One open container: an object's names so far, or an array's next index. */
  type Open =
    | { kind: "object"; path: string; names: Set<string>; key: string | undefined }
    | { kind: "array"; path: string; index: number };
  const stack: Open[] = [];
  /** The path of the value that starts next, inside the innermost open container. */
  const childPath = (): string => {
    const top = stack[stack.length - 1];
    if (!top) return "";
    if (top.kind === "array") return `${top.path}[${top.index}]`;
    return top.path ? `${top.path}.${top.key}` : top.key!;
  };
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "{") {
      stack.push({ kind: "object", path: childPath(), names: new Set(), key: undefined });
      expectKey = true;
    } else if (ch === "[") {
      stack.push({ kind: "array", path: childPath(), index: 0 });
    } else if (ch === "}" || ch === "]") {
      stack.pop();
      expectKey = false;
    } else if (ch === ",") {
      const top = stack[stack.length - 1];
      if (top?.kind === "array") top.index++;
      expectKey = top?.kind === "object";
    } else if (ch === '"') {
      const start = i;
      for (i++; text[i] !== '"'; i++) if (text[i] === "\\") i++;
      if (!expectKey) continue;
      const top = stack[stack.length - 1] as Extract<Open, { kind: "object" }>;
      // escapes (\u0061, \n, \") are decoded by the parser that accepted the text
      const key = JSON.parse(text.slice(start, i + 1)) as string;
      if (top.names.has(key)) {
        return { path: top.path ? `${top.path}.${key}` : key, key };
      }
      top.names.add(key);
      top.key = key;
      expectKey = false;
    }
  }
  return undefined;
}

/**
 * Middleware: a JSON request body (POST, PUT, PATCH with a JSON content type) in which one
 * object names a member twice is a 400 naming it, `{"error": "options.split_seed: named twice
 * in one object …", "fields": {"options.split_seed": [...]}}`, before any route reads it. A body
 * that is not JSON goes on to the route, whose validation says so.
 */
export function refuseDuplicateKeys(): MiddlewareHandler {
  return async function checkDuplicateKeys(c, next) {
    const type = c.req.header("content-type") ?? "";
    if (!["POST", "PUT", "PATCH"].includes(c.req.method) || !/\bjson\b/i.test(type)) {
      return await next();
    }
    const text = await c.req.text();
    try {
      JSON.parse(text);
    } catch {
      return await next();
    }
    const found = duplicateKey(text);
    if (!found) return await next();
    const path = truncateText(found.path, MAX_ECHO_CHARS);
    const message = "named twice in one object; a JSON body's names must be unique " +
      "(RFC 8259 §4), send it once";
    return jsonError(c, 400, `${path}: ${message}`, { fields: { [path]: [message] } });
  };
}
