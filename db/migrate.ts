import shift from "postgres-shift";
import { fileURLToPath } from "node:url";
import type { Sql } from "./client.ts";

const MIGRATIONS_LOCK = 727_001;

/**
 * Applies the forward-only migrations in `db/migrations/` (postgres-shift numbering
 * `00001_name.sql`). An advisory lock, held on a reserved connection, serialises concurrent
 * callers, so the pool needs at least two connections.
 */
export async function migrate(sql: Sql): Promise<string[]> {
  const applied: string[] = [];
  const reserved = await sql.reserve();
  try {
    await reserved`select pg_advisory_lock(${MIGRATIONS_LOCK})`;
    await shift({
      sql,
      path: fileURLToPath(new URL("./migrations", import.meta.url)),
      after: ({ name }: { name: string }) => applied.push(name),
    });
  } finally {
    await reserved`select pg_advisory_unlock(${MIGRATIONS_LOCK})`;
    reserved.release();
  }
  return applied;
}
