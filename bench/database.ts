/**
 * The benchmark database: its own PostgreSQL database (`ami_exports_bench` on the server of
 * `DATABASE_URL`), holding one seeded project per requested size. A project of the requested
 * size is reused; otherwise one is seeded (then ANALYZEd by `seedDemo`).
 */
import { hashToken } from "../domain/users.ts";
import { createDatabase, ensurePostgres, withDatabase } from "../cli/dev_services.ts";
import { connectDatabase, type Sql } from "../db/client.ts";
import { migrate } from "../db/migrate.ts";
import { seedDemo } from "../db/seed_demo.ts";

/** Name of the benchmark database. */
export const BENCH_DATABASE = "ami_exports_bench";

/**
 * Name of the benchmark database of the image formats (`bench/image_sources.ts`): apart, so that
 * an image bench never touches the projects (or the load) of the record formats' database.
 */
export const BENCH_IMAGES_DATABASE = "ami_exports_bench_images";

/** A seeded benchmark project and a fresh API token of its owner. */
export interface BenchProject {
  occurrences: number;
  projectId: number;
  userId: number;
  token: string;
  /** Seconds spent seeding now (0 when reused). */
  seededSeconds: number;
}

/** The benchmark database URL (`name`, default {@link BENCH_DATABASE}) on the server of `baseUrl`. */
export function benchDatabaseUrl(baseUrl: string, name = BENCH_DATABASE): string {
  return withDatabase(baseUrl, name);
}

/** Creates (if missing) and migrates the benchmark database `name`; returns a pool on it. */
export async function openBenchDatabase(baseUrl: string, name = BENCH_DATABASE): Promise<Sql> {
  await ensurePostgres(baseUrl);
  await createDatabase(baseUrl, name);
  const sql = connectDatabase(benchDatabaseUrl(baseUrl, name), { max: 4 });
  await migrate(sql);
  await sql`
    create table if not exists bench_projects (
      occurrences bigint primary key,
      project_id bigint not null,
      user_id bigint not null
    )`;
  return sql;
}

/** The project of `occurrences` rows: reused when seeded before, else seeded now. */
export async function benchProject(sql: Sql, occurrences: number): Promise<BenchProject> {
  const [found] = await sql<{ project_id: number; user_id: number }[]>`
    select b.project_id, b.user_id from bench_projects b
    join projects p on p.id = b.project_id
    where b.occurrences = ${occurrences}`;
  let seededSeconds = 0;
  let projectId: number;
  let userId: number;
  if (found) {
    projectId = found.project_id;
    userId = found.user_id;
  } else {
    console.error(`seeding a benchmark project of ${occurrences} occurrences …`);
    const started = performance.now();
    const seeded = await seedDemo(sql, { occurrences, seed: 7 });
    seededSeconds = (performance.now() - started) / 1000;
    projectId = seeded.project_id;
    userId = seeded.user_id;
    await sql`
      insert into bench_projects (occurrences, project_id, user_id)
      values (${occurrences}, ${projectId}, ${userId})
      on conflict (occurrences) do update
        set project_id = excluded.project_id, user_id = excluded.user_id`;
    console.error(`seeded in ${seededSeconds.toFixed(1)} s`);
  }
  const token = await benchToken(sql, userId);
  return { occurrences, projectId, userId, token, seededSeconds };
}

/** A fresh API token of user `userId` (named `bench`). */
export async function benchToken(sql: Sql, userId: number): Promise<string> {
  const token = Array.from(
    crypto.getRandomValues(new Uint8Array(20)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  await sql`
    insert into api_tokens (user_id, token_hash, name)
    values (${userId}, ${await hashToken(token)}, 'bench')`;
  return token;
}

if (import.meta.main) {
  // `deno run -A bench/database.ts N…`: seed (or find) benchmark projects ahead of a run.
  const sql = await openBenchDatabase(
    Deno.env.get("DATABASE_URL") ?? "postgres://postgres@127.0.0.1:5432/ami_exports",
  );
  for (const arg of Deno.args) {
    const project = await benchProject(sql, Number(arg));
    console.log(JSON.stringify({ ...project, token: undefined }));
  }
  await sql.end();
}
