/** What the API's routers are built over: their dependencies and the Hono environment. */
import type { Client } from "@temporalio/client";
import type { Config } from "../config/mod.ts";
import type { Sql } from "../db/client.ts";
import type { CurrentUser } from "../domain/users.ts";
import type { ObjectStorage } from "../storage/types.ts";

/** What the exports routes need. */
export interface ExportsApiDependencies {
  sql: Sql;
  /** The export read database (`EXPORT_DATABASE_URL`), for `/healthz` only (docs/replica.md). */
  readSql?: Sql;
  storage: ObjectStorage;
  config: Config;
  temporal: Client;
}

/** The Hono environment of the authenticated API routes. */
export interface ApiEnv {
  Variables: { user: CurrentUser };
}
