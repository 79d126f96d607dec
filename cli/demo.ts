/**
 * `deno task demo [--exit] [--occurrences N]`: the main job. Starts what is missing (Temporal
 * dev server with its Web UI, the database), migrates, seeds a demo project if there is none,
 * runs the worker and the API, exports every registered format through the HTTP API with a live
 * progress bar each, prints where the files are, and keeps serving until Ctrl-C.
 */
// @ts-types="@types/cli-progress"
import cliProgress from "cli-progress";
import { parseArgs } from "node:util";
import { createApp } from "../api/mod.ts";
import { loadConfig } from "../config/mod.ts";
import { connectDatabase } from "../db/client.ts";
import { migrate } from "../db/migrate.ts";
import { seedDemo, type SeedResult } from "../db/seed_demo.ts";
import { supportedFormats } from "../registry/mod.ts";
import { createStorage } from "../storage/mod.ts";
import {
  createDatabase,
  ensurePostgres,
  freePort,
  startTemporalDevServer,
  type TemporalDevServer,
} from "./dev_services.ts";
import { connectTemporal } from "./temporal.ts";
import { connectWorker, createExportWorker, stopWorker } from "./worker.ts";
import { hashToken } from "../api/auth.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    exit: { type: "boolean", default: false },
    occurrences: { type: "string", default: "20000" },
  },
});

async function reachable(address: string): Promise<boolean> {
  const [hostname, port] = address.split(":");
  try {
    const conn = await Deno.connect({
      hostname: hostname === "localhost" ? "127.0.0.1" : hostname,
      port: Number(port),
    });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

function portFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

const env = Deno.env.toObject();
env.DATABASE_URL ??= "postgres://postgres@127.0.0.1:5432/ami_exports";
let temporalServer: TemporalDevServer | undefined;
if (!env.TEMPORAL_ADDRESS || !(await reachable(env.TEMPORAL_ADDRESS))) {
  if (env.TEMPORAL_ADDRESS) {
    console.log(`Temporal at ${env.TEMPORAL_ADDRESS} is not reachable; starting a dev server`);
  }
  await Deno.mkdir(".data", { recursive: true });
  const port = portFree(7233) ? 7233 : freePort();
  const uiPort = portFree(8233) ? 8233 : freePort();
  console.log(`starting Temporal dev server on 127.0.0.1:${port} (Web UI on ${uiPort}) …`);
  temporalServer = await startTemporalDevServer({
    port,
    uiPort,
    dbFile: ".data/temporal-dev.sqlite",
    logFile: ".data/temporal-dev.log",
  });
  env.TEMPORAL_ADDRESS = temporalServer.address;
}
if (!env.PORT && !portFree(8000)) env.PORT = String(freePort());
// One task queue per database: a second demo on another DATABASE_URL that reuses this Temporal
// server must not have its workflows run by this demo's worker (against the wrong database).
env.TEMPORAL_TASK_QUEUE ??= `data-exports-${new URL(env.DATABASE_URL).pathname.slice(1)}`;
const config = loadConfig(env);

await ensurePostgres(config.databaseUrl);
await createDatabase(config.databaseUrl, new URL(config.databaseUrl).pathname.slice(1));
const sql = connectDatabase(config.databaseUrl);
await migrate(sql);

let seed: SeedResult;
const [existing] = await sql<{ project_id: number; collection_id: number; user_id: number }[]>`
  select p.id as project_id, c.id as collection_id, p.owner_id as user_id
  from projects p join source_image_collections c on c.project_id = p.id
  where p.slug like 'demo-%' order by p.id limit 1`;
if (existing) {
  const token = Array.from(
    crypto.getRandomValues(new Uint8Array(20)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  await sql`insert into api_tokens (user_id, token_hash, name) values (${existing.user_id}, ${await hashToken(
    token,
  )}, 'demo')`;
  seed = { ...existing, token };
  console.log(`using demo project ${existing.project_id} (already seeded)`);
} else {
  const occurrences = Number(flags.occurrences);
  console.log(`seeding a demo project with ${occurrences} occurrences …`);
  const started = performance.now();
  seed = await seedDemo(sql, { occurrences, seed: 1 });
  console.log(`seeded in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

const storage = createStorage(config);
await storage.ensureReady();
const temporal = await connectTemporal(config);
const connection = await connectWorker(config.temporalAddress);
const worker = await createExportWorker({ sql, storage, config, temporal: temporal.client }, {
  connection,
});
const workerRun = worker.run();
const app = createApp({ sql, storage, config, temporal: temporal.client });
const server = Deno.serve(
  { port: config.port, hostname: "127.0.0.1", onListen: () => {} },
  app.fetch,
);
const base = `http://127.0.0.1:${config.port}`;
console.log(
  `API on ${base} · storage: ${config.storageBackend} · task queue ${config.temporalTaskQueue}`,
);

const headers = { Authorization: `Token ${seed.token}`, "Content-Type": "application/json" };
const bars = new cliProgress.MultiBar({
  format:
    " {format} [{bar}] {percentage}% | {value}/{total} records | {rate} rec/s | ETA {eta}s | {status}",
  hideCursor: true,
  noTTYOutput: true,
  notTTYSchedule: 2000,
}, cliProgress.Presets.shades_classic);
const results: {
  format: string;
  status: string;
  url?: string;
  id: number;
  records: number;
  size: string;
}[] = [];
await Promise.all(
  supportedFormats().map(async (format) => {
    const res = await fetch(`${base}/api/v2/exports/`, {
      method: "POST",
      headers,
      body: JSON.stringify({ project: seed.project_id, format, filters: {} }),
    });
    const created = await res.json();
    if (res.status !== 201) {
      results.push({
        format,
        status: `HTTP ${res.status}: ${created.error}`,
        id: 0,
        records: 0,
        size: "",
      });
      return;
    }
    const bar = bars.create(1, 0, { format: format.padEnd(24), rate: 0, status: "PENDING" });
    const started = performance.now();
    while (true) {
      const body = await (await fetch(`${base}/api/v2/exports/${created.id}/`, { headers })).json();
      const stage = body.job.progress.stages[0];
      const done = stage.params.find((p: { key: string }) => p.key === "records_exported")?.value ??
        0;
      const total = stage.params.find((p: { key: string }) => p.key === "total_records")?.value ??
        1;
      const rate = Math.round(done / ((performance.now() - started) / 1000));
      bar.setTotal(Math.max(1, total));
      bar.update(done, { rate, status: body.status });
      if (!["PENDING", "STARTED"].includes(body.status)) {
        results.push({
          format,
          status: body.status === "SUCCESS" ? "SUCCESS" : `${body.status}: ${body.error}`,
          url: body.download_url ?? undefined,
          id: body.id,
          records: body.record_count,
          size: body.file_size_display,
        });
        return;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }),
);
bars.stop();

console.log("\nExports:");
for (const r of results) {
  console.log(
    `  #${r.id} ${r.format}: ${r.status}${
      r.status === "SUCCESS" ? `, ${r.records} records, ${r.size}` : ""
    }`,
  );
  if (r.url) {
    console.log(
      `      download: curl -L -H 'Authorization: Token ${seed.token}' -o export-${r.id} ${r.url}`,
    );
  }
}
if (config.storageBackend === "fs") console.log(`Files are under ${config.exportsDir}/exports/`);
console.log(
  `\nTemporal: ${config.temporalAddress}${
    temporalServer?.uiUrl ? ` · Web UI ${temporalServer.uiUrl}` : ""
  }`,
);
console.log(`Try:
  curl -H 'Authorization: Token ${seed.token}' '${base}/api/v2/exports/?project_id=${seed.project_id}'
  curl -H 'Authorization: Token ${seed.token}' -H 'Content-Type: application/json' \\
       -d '{"project": ${seed.project_id}, "format": "occurrences_simple_csv", "filters": {"collection_id": ${seed.collection_id}}}' \\
       ${base}/api/v2/exports/`);

const allOk = results.length === supportedFormats().length &&
  results.every((r) => r.status === "SUCCESS");

async function shutdown(code: number): Promise<never> {
  stopWorker(worker);
  await workerRun.catch(() => {});
  await server.shutdown();
  await connection.close();
  await temporal.close();
  await sql.end({ timeout: 5 });
  await temporalServer?.stop();
  Deno.exit(code);
}

if (flags.exit) await shutdown(allOk ? 0 : 1);
console.log("\nServing until Ctrl-C …");
Deno.addSignalListener("SIGINT", () => void shutdown(0));
Deno.addSignalListener("SIGTERM", () => void shutdown(0));
