/**
 * Users and API tokens: the caller's identity (tokens stored as SHA-256 hashes in
 * `api_tokens.token_hash`), used by the API's token middleware, the operator CLI and the
 * schedule activities.
 */
import type { Sql } from "../db/client.ts";

/** The authenticated caller. */
export interface CurrentUser {
  id: number;
  name: string;
  email: string;
  superuser: boolean;
}

/** Hex SHA-256 of a token, as stored in `api_tokens.token_hash`. */
export async function hashToken(token: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The user an active (not revoked) token belongs to, or undefined. */
export async function findUserByToken(sql: Sql, token: string): Promise<CurrentUser | undefined> {
  const [user] = await sql<CurrentUser[]>`
    select u.id, u.name, u.email, u.is_superuser as superuser
    from api_tokens t join users u on u.id = t.user_id
    where t.token_hash = ${await hashToken(token)} and t.revoked_at is null`;
  return user;
}

/** The user with `id`, or undefined. */
export async function findUserById(sql: Sql, id: number): Promise<CurrentUser | undefined> {
  const [user] = await sql<CurrentUser[]>`
    select id, name, email, is_superuser as superuser from users where id = ${id}`;
  return user;
}
