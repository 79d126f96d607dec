/** Token authentication: `Authorization: Token <key>`, tokens stored as SHA-256 hashes. */
import type { MiddlewareHandler } from "hono";
import type { Sql } from "../db/client.ts";
import { type CurrentUser, findUserByToken } from "../domain/users.ts";
import { jsonError } from "./errors.ts";

/** Middleware that resolves the caller from the token, or answers 401. */
export function tokenAuth(sql: Sql): MiddlewareHandler<{ Variables: { user: CurrentUser } }> {
  return async function authenticate(c, next) {
    const header = c.req.header("Authorization") ?? "";
    const match = /^(?:Token|Bearer)\s+(\S+)$/i.exec(header);
    if (!match) {
      return jsonError(
        c,
        401,
        "authentication credentials were not provided: use the header Authorization: Token <key>",
      );
    }
    const user = await findUserByToken(sql, match[1]);
    if (!user) return jsonError(c, 401, "invalid or revoked token");
    c.set("user", user);
    await next();
  };
}
