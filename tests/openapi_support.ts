/**
 * Checks responses against the OpenAPI routes of the app: the status must be documented for the
 * route, and a JSON body must parse with the very zod schema that generated the document.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { ZodType } from "zod";
import { assert } from "./assert.ts";

interface RouteDefinition {
  method: string;
  path: string;
  responses: Record<string, { content?: Record<string, { schema: ZodType }> }>;
}

/** The documented routes of `app`, with paths in OpenAPI form (`/api/v2/exports/{id}`). */
export function documentedRoutes(app: OpenAPIHono): RouteDefinition[] {
  return app.openAPIRegistry.definitions
    .filter((d) => d.type === "route")
    .map((d) => (d as unknown as { route: RouteDefinition }).route);
}

/** `/api/v2/exports/17/cancel/?x=1` → the documented template `/api/v2/exports/{id}/cancel`. */
function matchRoute(
  routes: RouteDefinition[],
  method: string,
  url: string,
): RouteDefinition | undefined {
  const path = new URL(url, "http://x").pathname.replace(/\/+$/, "") || "/";
  return routes.find((r) => {
    if (r.method.toUpperCase() !== method.toUpperCase()) return false;
    const template = r.path.replace(/\/+$/, "") || "/";
    const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}$`);
    return pattern.test(path);
  });
}

/**
 * Asserts that `res` is documented for `method url` and that its JSON body validates; returns
 * the parsed body (undefined when there is none).
 */
export async function checkDocumented(
  app: OpenAPIHono,
  method: string,
  url: string,
  res: Response,
): Promise<unknown> {
  const route = matchRoute(documentedRoutes(app), method, url);
  assert(route, `undocumented route: ${method} ${url}`);
  const documented = route.responses[String(res.status)];
  assert(documented, `undocumented status ${res.status} for ${method} ${route.path}`);
  const schema = documented.content?.["application/json"]?.schema;
  if (!schema) {
    await res.body?.cancel();
    return undefined;
  }
  const body = await res.json();
  const parsed = schema.safeParse(body);
  assert(
    parsed.success,
    `${method} ${url} → ${res.status} does not match its documented schema: ${
      parsed.success ? "" : JSON.stringify(parsed.error.issues)
    }\n${JSON.stringify(body).slice(0, 500)}`,
  );
  return body;
}

/** A response whose body was checked against the document. */
export interface DocumentedResponse {
  status: number;
  // deno-lint-ignore no-explicit-any
  body: any;
  headers: Headers;
}

/** Calls `app` with a token and JSON body, and checks the response against the document. */
export async function callDocumented(
  app: OpenAPIHono,
  method: string,
  path: string,
  options: { token?: string; body?: unknown } = {},
): Promise<DocumentedResponse> {
  const headers: Record<string, string> = {};
  if (options.token) headers.Authorization = `Token ${options.token}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const res = await app.request(path, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const body = await checkDocumented(app, method, path, res);
  return { status: res.status, body, headers: res.headers };
}
