/**
 * `deno task api`: the HTTP API on `PORT`. It starts and serves whatever is down: PostgreSQL,
 * Temporal and storage are retried in the background (logged), `/healthz` answers 503 naming
 * what is missing, and routes that need a missing dependency answer 503.
 */
import { loadConfig } from "../config/mod.ts";
import { connectDatabase } from "../db/client.ts";
import { connectExportReads } from "../db/replica.ts";
import { createStorage } from "../storage/mod.ts";
import { createApp } from "../api/mod.ts";
import { watchDependencies } from "./dependencies.ts";
import { connectTemporalInBackground } from "./temporal.ts";

/** Serves the API until SIGINT/SIGTERM. */
export async function runApi(): Promise<void> {
  const config = loadConfig();
  const sql = connectDatabase(config.databaseUrl);
  // only /healthz asks the export read database (docs/replica.md): one connection is enough
  const readSql = connectExportReads(config, sql, { max: 1 });
  const storage = createStorage(config);
  const stop = new AbortController();
  watchDependencies({ sql, storage, config }, stop.signal);
  const temporal = connectTemporalInBackground(config);
  const app = createApp({ sql, readSql, storage, config, temporal: temporal.client });
  const server = Deno.serve({
    port: config.port,
    hostname: "0.0.0.0",
    onListen: ({ port }) => console.log(JSON.stringify({ msg: "api listening", port })),
  }, app.fetch);
  const shutdown = () => {
    stop.abort();
    server.shutdown();
  };
  Deno.addSignalListener("SIGINT", shutdown);
  Deno.addSignalListener("SIGTERM", shutdown);
  await server.finished;
  // the connections close within a deadline: a Temporal or database gone at the same moment
  // must not keep a stopped API alive
  let deadline: ReturnType<typeof setTimeout> | undefined;
  const closed = await Promise.race([
    (async () => {
      await temporal.close();
      if (readSql !== sql) await readSql.end({ timeout: 5 });
      await sql.end({ timeout: 5 });
      return true;
    })(),
    new Promise<false>((resolve) => deadline = setTimeout(() => resolve(false), CLOSE_DEADLINE_MS)),
  ]);
  clearTimeout(deadline);
  if (!closed) {
    console.log(JSON.stringify({ msg: "api stopped before its connections closed" }));
    Deno.exit(0);
  }
}

/** How long a stopping API waits for its Temporal and database connections to close. */
const CLOSE_DEADLINE_MS = 10_000;

if (import.meta.main) {
  await runApi().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    Deno.exit(1);
  });
}
