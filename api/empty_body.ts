/**
 * An empty request body is no body, whatever its declared type: `curl -X POST -H 'Content-Type:
 * application/json'` sends a JSON content type with zero bytes, and a JSON parser refuses zero
 * bytes. RFC 9110 §8.6 (a Content-Length of 0 is no content) and §15.5.16 (415 is for a body
 * in a format the route does not read, and an empty body is in none).
 */
import type { MiddlewareHandler } from "hono";

/** The methods whose body a route may read. */
const BODY_METHODS = ["POST", "PUT", "PATCH"];

/**
 * Middleware: a POST, PUT or PATCH with a `Content-Type` and an empty body goes on as a request
 * without a body and without that header, so a route whose body is optional (an export's cancel
 * and retry, a schedule's pause, unpause and trigger) takes it as no body (it answered 400
 * "malformed JSON"), and a route that needs one names the fields it lacks (400). The body is
 * read once here (after the size limit) and cached for the middleware after it.
 */
export function emptyBodyIsNoBody(): MiddlewareHandler {
  return async function dropEmptyBody(c, next) {
    if (!BODY_METHODS.includes(c.req.method) || c.req.header("content-type") === undefined) {
      return await next();
    }
    if ((await c.req.text()) !== "") return await next();
    const headers = new Headers(c.req.raw.headers);
    headers.delete("content-type");
    headers.delete("content-length");
    c.req.raw = new Request(c.req.raw.url, { method: c.req.method, headers });
    return await next();
  };
}
