import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Sql } from "./client.ts";

const MIGRATIONS_LOCK = 727_001;

const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations", import.meta.url));

/** One migration file, `00001_name.sql`. */
interface Migration {
  id: number;
  name: string;
  path: string;
}

function migrationFiles(): Migration[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((file) => /^[0-9]{5}_.*\.sql$/.test(file))
    .sort()
    .map((file) => ({
      id: Number.parseInt(file.slice(0, 5), 10),
      name: file.slice(6).replace(/-/g, " "),
      path: `${MIGRATIONS_DIR}/${file}`,
    }));
}

/**
 * Applies the forward-only migrations in `db/migrations/` (`00001_name.sql`), each at most
 * once, in number order, in one transaction. The bookkeeping table is postgres-shift's
 * (`migrations (migration_id, created_at, name)`), so databases migrated before keep their
 * history. Unlike postgres-shift, numbering may have gaps and a lower number may arrive after a
 * higher one was applied (branches adding migrations in parallel): every file whose number is not
 * recorded runs. An advisory lock, held on a reserved connection, serialises concurrent callers,
 * so the pool needs at least two connections.
 */
export async function migrate(sql: Sql): Promise<string[]> {
  const applied: string[] = [];
  const migrations = migrationFiles();
  const reserved = await sql.reserve();
  try {
    await reserved`select pg_advisory_lock(${MIGRATIONS_LOCK})`;
    await sql`
      create table if not exists migrations (
        migration_id serial primary key,
        created_at timestamp with time zone not null default now(),
        name text
      )`;
    const done = new Set(
      (await sql<{ id: number }[]>`select migration_id as id from migrations`).map((r) => r.id),
    );
    const needed = migrations.filter((m) => !done.has(m.id));
    if (needed.length > 0) {
      await sql.begin(async (tx) => {
        for (const m of needed) {
          await tx.file(m.path);
          await tx`insert into migrations (migration_id, name) values (${m.id}, ${m.name})`;
          applied.push(m.name);
        }
      });
    }
  } finally {
    await reserved`select pg_advisory_unlock(${MIGRATIONS_LOCK})`;
    reserved.release();
  }
  return applied;
}
