/**
 * Response contract checking: compares a response with what the OpenAPI document promises for
 * its route (the status is documented; a JSON body parses with the documented zod schema). The
 * app turns it on with `API_VALIDATE_RESPONSES=1` (the test runner does), so every API test, end
 * to end ones included, fails on a response the document does not describe.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";

/** Anything with the routes registry of an OpenAPIHono app. */
export type DocumentedApp = Pick<OpenAPIHono, "openAPIRegistry">;
import type { MiddlewareHandler } from "hono";
import type { ZodType } from "zod";

interface DocumentedRoute {
  method: string;
  path: string;
  pattern: RegExp;
  responses: Record<string, { content?: Record<string, { schema: ZodType }> }>;
}

function documentedRoutes(app: DocumentedApp): DocumentedRoute[] {
  return app.openAPIRegistry.definitions
    .filter((d) => d.type === "route")
    .map((d) => {
      const route = (d as unknown as { route: Omit<DocumentedRoute, "pattern"> }).route;
      const template = route.path.replace(/\/+$/, "") || "/";
      return {
        ...route,
        pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}/*$`),
      };
    });
}

/**
 * What is wrong with `res` as the answer to `method path`, or undefined when it matches the
 * document (or the route is not documented, e.g. `/files/…`).
 */
export async function contractViolation(
  app: DocumentedApp,
  method: string,
  path: string,
  res: Response,
): Promise<string | undefined> {
  const route = documentedRoutes(app).find((r) =>
    r.method.toUpperCase() === method.toUpperCase() && r.pattern.test(path)
  );
  if (!route) return undefined;
  const documented = route.responses[String(res.status)];
  if (!documented) return `status ${res.status} is not documented for ${method} ${route.path}`;
  const schema = documented.content?.["application/json"]?.schema;
  if (!schema) return undefined;
  let body: unknown;
  try {
    body = await res.clone().json();
  } catch (error) {
    return `body of ${method} ${route.path} → ${res.status} is not JSON: ${error}`;
  }
  const parsed = schema.safeParse(body);
  if (parsed.success) return undefined;
  return `body of ${method} ${route.path} → ${res.status} does not match its schema: ${
    JSON.stringify(parsed.error.issues).slice(0, 1000)
  }`;
}

/** Middleware that answers 500 with the violation when a response breaks the document. */
export function responseContract(app: DocumentedApp): MiddlewareHandler {
  return async function checkResponseContract(c, next) {
    await next();
    if (c.res.status >= 500) return;
    const violation = await contractViolation(app, c.req.method, c.req.path, c.res);
    if (violation) {
      c.res = new Response(
        JSON.stringify({ error: `response breaks the OpenAPI document: ${violation}` }),
        { status: 500, headers: { "content-type": "application/json" } },
      );
    }
  };
}
