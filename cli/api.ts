/** `deno task api`: the HTTP API on `PORT`. */
import { loadConfig } from "../config/mod.ts";
import { connectDatabase } from "../db/client.ts";
import { createStorage } from "../storage/mod.ts";
import { createApp } from "../api/mod.ts";
import { connectTemporal } from "./temporal.ts";

/** Serves the API until the process is stopped. */
export async function runApi(): Promise<void> {
  const config = loadConfig();
  const sql = connectDatabase(config.databaseUrl);
  const storage = createStorage(config);
  await storage.ensureReady();
  const temporal = await connectTemporal(config);
  const app = createApp({ sql, storage, config, temporal: temporal.client });
  const server = Deno.serve({
    port: config.port,
    hostname: "0.0.0.0",
    onListen: ({ port }) => console.log(JSON.stringify({ msg: "api listening", port })),
  }, app.fetch);
  await server.finished;
}

if (import.meta.main) {
  await runApi().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    Deno.exit(1);
  });
}
