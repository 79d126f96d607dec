/**
 * `deno task demo [--exit] [--no-exports] [--occurrences N]`: the main job. Starts what is
 * missing (Temporal dev server with its Web UI, the database), migrates, seeds a demo project if
 * there is none (showing its progress), runs the worker and the API, prints the token and curl
 * commands, exports every registered format through the HTTP API with a live progress bar each
 * (an identical export of unchanged data is reused, one still running from an earlier demo is
 * followed: restarts do not stack exports), prints where the files are, and keeps serving until
 * Ctrl-C.
 *
 * The formats that fetch capture images (`fetchesImages`) get synthetic ones: a capture set of
 * 12 nights' slices of the demo project, and a JPEG for every capture holding a box of an
 * occurrence seen on it (db/seed_demo_images.ts, a few missing or broken on purpose), kept in the configured storage under `<STORAGE_PREFIX>sources/` and served
 * read-only by this process at `http://127.0.0.1:<PORT>/sources/` (api/sources.ts); that
 * loopback host:port, and no other, is added to the image hosts allowed (`SOURCE_IMAGE_HOSTS`),
 * and those formats are exported with that capture set as their `collection_id`.
 *
 * On a terminal the JSON logs go to `.data/demo.log` so that they never break into the bars;
 * otherwise to stderr.
 */
// @ts-types="@types/cli-progress"
import cliProgress from "cli-progress";
import { parseArgs } from "node:util";
import { createApp } from "../api/mod.ts";
import { SOURCES_PATH, sourcesRoutes } from "../api/sources.ts";
import { type Config, loadConfig } from "../config/mod.ts";
import { connectDatabase } from "../db/client.ts";
import { migrate } from "../db/migrate.ts";
import { seedDemo, type SeedResult } from "../db/seed_demo.ts";
import { seedDemoImages } from "../db/seed_demo_images.ts";
import { getExporter, supportedFormats } from "../registry/mod.ts";
import { createStorage } from "../storage/mod.ts";
import {
  createDatabase,
  ensurePostgres,
  freePort,
  startTemporalDevServer,
  type TemporalDevServer,
} from "./dev_services.ts";
import { closeNativeConnection, connectTemporal } from "./temporal.ts";
import { connectWorker, createExportWorker, prepareNamespace, stopWorker } from "./worker.ts";
import { hashToken } from "../domain/users.ts";
import { captureLogs, pendingPayload, recordsProgress, say } from "./terminal.ts";
import { isDemoRequest, type ListedExport } from "./demo_request.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    exit: { type: "boolean", default: false },
    "no-exports": { type: "boolean", default: false },
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

await Deno.mkdir(".data", { recursive: true });
const logs = captureLogs(".data/demo.log", Deno.stderr.isTerminal()); // the bars draw on stderr
if (logs.file) say(`logs: ${logs.file}`);

const env = Deno.env.toObject();
env.DATABASE_URL ??= "postgres://postgres@127.0.0.1:5432/ami_exports";
let temporalServer: TemporalDevServer | undefined;
if (!env.TEMPORAL_ADDRESS || !(await reachable(env.TEMPORAL_ADDRESS))) {
  if (env.TEMPORAL_ADDRESS) {
    say(`Temporal at ${env.TEMPORAL_ADDRESS} is not reachable; starting a dev server`);
  }
  await Deno.mkdir(".data", { recursive: true });
  const port = portFree(7233) ? 7233 : freePort();
  const uiPort = portFree(8233) ? 8233 : freePort();
  say(`starting Temporal dev server on 127.0.0.1:${port} (Web UI on ${uiPort}) …`);
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
const loaded = loadConfig(env);
/** This process's own loopback listener, which serves the synthetic source images. */
const sourcesHost = `127.0.0.1:${loaded.port}`;
const sourcesBaseUrl = `http://${sourcesHost}${SOURCES_PATH}/`;
/** The configuration, with the demo's loopback host:port (only) added to the image hosts. */
const config: Config = {
  ...loaded,
  formats: {
    ...loaded.formats,
    images: loaded.formats.images && {
      ...loaded.formats.images,
      hosts: [...new Set([...loaded.formats.images.hosts, sourcesHost])],
    },
  },
};
/** True when `format` fetches capture images (it is exported filtered by the image set). */
const fetchesImages = (format: string): boolean => getExporter(format)?.fetchesImages === true;
/**
 * The formats the demo exports: every registered one, except an image format that cannot be
 * narrowed to the captures with images (no `collection_id` filter): the other captures are not
 * served, so nearly every image would be left out and the export refused.
 */
const demoFormats = supportedFormats().filter((key) =>
  !fetchesImages(key) || getExporter(key)?.acceptedFilters.includes("collection_id")
);
const leftOut = supportedFormats().filter((key) => !demoFormats.includes(key));

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
  say(`using demo project ${existing.project_id} (already seeded)`);
} else {
  const occurrences = Number(flags.occurrences);
  const started = performance.now();
  const elapsed = () => ((performance.now() - started) / 1000).toFixed(0);
  const label = `seeding a demo project with ${occurrences.toLocaleString("en-US")} occurrences`;
  // one transaction, no intermediate counts to show: the elapsed time, redrawn on a terminal
  const tty = Deno.stdout.isTerminal();
  if (!tty) say(`${label} …`);
  const ticker = setInterval(() => {
    if (tty) Deno.stdout.writeSync(new TextEncoder().encode(`\r${label} … ${elapsed()} s`));
    else say(`  still seeding … ${elapsed()} s`);
  }, tty ? 500 : 10_000);
  try {
    seed = await seedDemo(sql, { occurrences, seed: 1 });
  } finally {
    clearInterval(ticker);
  }
  if (tty) Deno.stdout.writeSync(new TextEncoder().encode("\r\x1b[K"));
  say(`${label}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

const storage = createStorage(config);
await storage.ensureReady();
const images = await seedDemoImages(sql, storage, {
  projectId: seed.project_id,
  baseUrl: sourcesBaseUrl,
  storagePrefix: config.storagePrefix,
});
const broken = images.captures - images.kinds.image;
say(
  `source images: ${images.captures} captures of ${images.eventIds.length} nights ` +
    `(capture set ${images.collectionId}) ` +
    `served at ${sourcesBaseUrl}; ${broken} broken on purpose (${images.kinds.missing} missing, ` +
    `${images.kinds.not_an_image} not an image, ${images.kinds.truncated} truncated) holding ` +
    `${images.brokenCrops} of ${images.crops} boxes; ${images.written} written in ` +
    `${images.seconds.toFixed(1)} s`,
);
const temporal = await connectTemporal(config);
// as `deno task worker` does: a Temporal server the demo did not start (TEMPORAL_ADDRESS) may
// lack the search attributes every export workflow is started with, and the housekeeping
// Schedule that expires exports
await prepareNamespace(temporal.client, config);
const connection = await connectWorker(config.temporalAddress);
const worker = await createExportWorker({ sql, storage, config, temporal: temporal.client }, {
  connection,
});
const workerRun = worker.run();
const app = createApp({ sql, storage, config, temporal: temporal.client });
app.route(SOURCES_PATH, sourcesRoutes(storage, { storagePrefix: config.storagePrefix }));
const server = Deno.serve(
  { port: config.port, hostname: "127.0.0.1", onListen: () => {} },
  app.fetch,
);
const base = `http://127.0.0.1:${config.port}`;
say(`API on ${base} · storage: ${config.storageBackend} · task queue ${config.temporalTaskQueue}`);
say(
  `Temporal: ${config.temporalAddress}${
    temporalServer?.uiUrl ? ` · Web UI ${temporalServer.uiUrl}` : ""
  } · API reference ${base}/api/v2/docs`,
);
say(`Token: ${seed.token}`);
say(`Try:
  curl -H 'Authorization: Token ${seed.token}' '${base}/api/v2/exports/?project_id=${seed.project_id}'
  curl -H 'Authorization: Token ${seed.token}' -H 'Content-Type: application/json' \\
       -d '{"project": ${seed.project_id}, "format": "occurrences_simple_csv", "filters": {"collection_id": ${seed.collection_id}}}' \\
       ${base}/api/v2/exports/
`);

const headers = { Authorization: `Token ${seed.token}`, "Content-Type": "application/json" };
const results: {
  format: string;
  status: string;
  url?: string;
  id: number;
  records: number;
  /** Records counted but not written (an image format's `skipped.csv`), as seen running. */
  leftOut: number;
  size: string;
}[] = [];

/**
 * An export of `format` in the demo project with the demo's own `filters` (and no options),
 * still running from an earlier demo, if any ({@link isDemoRequest}: another request of the
 * format, e.g. from `deno task cli export`, is not followed).
 */
async function unfinished(
  format: string,
  filters: Record<string, unknown>,
): Promise<number | undefined> {
  for (const status of ["STARTED", "PENDING"]) {
    const res = await fetch(
      `${base}/api/v2/exports/?project_id=${seed.project_id}&format=${format}&status=${status}`,
      { headers },
    );
    const page = await res.json();
    if (!res.ok) continue;
    const own = (page.results as ListedExport[]).find((e) => isDemoRequest(e, filters));
    if (own) return own.id;
  }
  return undefined;
}

if (!flags["no-exports"]) {
  const bars = new cliProgress.MultiBar({
    format: " {format} [{bar}] {percentage}% | {records} | {rate} rec/s | ETA {left} | {status}",
    hideCursor: true,
    noTTYOutput: true,
    notTTYSchedule: 2000,
  }, cliProgress.Presets.shades_classic);
  if (leftOut.length > 0) {
    say(
      `Not exported: ${leftOut.join(", ")} (they fetch capture images but have no ` +
        "collection_id filter to keep to the captures the demo serves)",
    );
  }
  await Promise.all(
    demoFormats.map(async (format) => {
      const filters = fetchesImages(format) ? { collection_id: images.collectionId } : {};
      let id = await unfinished(format, filters);
      let note = id === undefined ? "" : " (from an earlier run)";
      if (id === undefined) {
        const res = await fetch(`${base}/api/v2/exports/`, {
          method: "POST",
          headers,
          body: JSON.stringify({ project: seed.project_id, format, filters }),
        });
        const created = await res.json();
        if (res.status !== 201 && res.status !== 200) {
          results.push({
            format,
            status: `HTTP ${res.status}: ${created.error}`,
            id: 0,
            records: 0,
            leftOut: 0,
            size: "",
          });
          return;
        }
        id = created.id as number;
        if (created.reused) note = " (reused: same request, data unchanged)";
      }
      const bar = bars.create(1, 0, { format: format.padEnd(24), ...pendingPayload() });
      const draw = recordsProgress(bar);
      // an image format counts every image it will try; its total while it runs, less the
      // records written, is what it left out (`skipped.csv`): the end total is the written count
      let counted = 0;
      while (true) {
        const body = await (await fetch(`${base}/api/v2/exports/${id}/`, { headers })).json();
        const stage = body.job.progress.stages[0];
        // the rate over this demo's observation, from the first record seen (not from PENDING)
        const { total } = draw(
          { status: body.status, recordCount: body.record_count, params: stage.params },
          `${body.status}${note}`,
        );
        if (body.status === "STARTED") counted = Math.max(counted, total ?? 0);
        if (!["PENDING", "STARTED"].includes(body.status)) {
          results.push({
            format,
            status: body.status === "SUCCESS" ? `SUCCESS${note}` : `${body.status}: ${body.error}`,
            url: body.download_url ?? undefined,
            id: body.id,
            records: body.record_count,
            leftOut: fetchesImages(format) ? Math.max(0, counted - (body.record_count ?? 0)) : 0,
            size: body.file_size_display,
          });
          return;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }),
  );
  bars.stop();

  say("\nExports:");
  for (const r of results.sort((a, b) => a.format.localeCompare(b.format))) {
    say(
      `  #${r.id} ${r.format}: ${r.status}${
        r.status.startsWith("SUCCESS") ? `, ${r.records} records, ${r.size}` : ""
      }${
        r.status.startsWith("SUCCESS") && r.leftOut > 0
          ? ` (${r.leftOut} skipped: listed in skipped.csv)`
          : ""
      }`,
    );
    if (r.url) {
      say(
        `      download: curl -L -H 'Authorization: Token ${seed.token}' -o export-${r.id} ${r.url}`,
      );
    }
  }
  if (config.storageBackend === "fs") say(`Files are under ${config.exportsDir}/exports/`);
}

const allOk = flags["no-exports"] ||
  (results.length === demoFormats.length &&
    results.every((r) => r.status.startsWith("SUCCESS")));

async function shutdown(code: number): Promise<never> {
  stopWorker(worker);
  await workerRun.catch(() => {});
  await server.shutdown();
  await closeNativeConnection(connection);
  await temporal.close();
  await sql.end({ timeout: 5 });
  await temporalServer?.stop();
  logs.restore();
  Deno.exit(code);
}

if (flags.exit) await shutdown(allOk ? 0 : 1);
say("\nServing until Ctrl-C …");
Deno.addSignalListener("SIGINT", () => void shutdown(0));
Deno.addSignalListener("SIGTERM", () => void shutdown(0));
