/**
 * The soak: the API and a worker as separate processes, exports and cancels in a loop against a
 * Temporal dev server whose frontend closes every connection (GOAWAY) every 20 s, with the
 * Temporal server restarted once and S3 unreachable for 30 s while exports keep being requested.
 * The S3 outage is a TCP proxy (`tests/tcp_proxy.ts`) in front of moto that cuts every connection
 * and refuses new ones; moto keeps running, so, as with real storage, no stored file is lost.
 * Any process death is a failure; every export must end SUCCESS with exactly the expected rows
 * (its file downloaded and checked against the checksum and an independent SQL count) or
 * FAILURE/REVOKED with a readable error.
 *
 * `tests/soak_test.ts` runs it in the suite (2 minutes); `deno task soak --minutes N` runs it
 * standalone on a fresh database.
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { parse } from "csv-parse/sync";
import {
  createDatabase,
  dropDatabase,
  ensurePostgres,
  freePort,
  type MotoServer,
  startMotoServer,
  startTemporalDevServer,
  type TemporalDevServer,
  withDatabase,
} from "../cli/dev_services.ts";
import { connectDatabase, type Sql } from "../db/client.ts";
import { migrate } from "../db/migrate.ts";
import { seedDemo, type SeedResult } from "../db/seed_demo.ts";
import { expectedOccurrenceIds } from "./harness.ts";
import { sha256Hex } from "./support.ts";
import { type ApiProcess, startApiProcess } from "./api_process.ts";
import { startWorkerProcess, type WorkerProcess } from "./worker_process.ts";
import { startTcpProxy, type TcpProxy } from "./tcp_proxy.ts";

const LOG_DIR = fileURLToPath(new URL("../.data/soak", import.meta.url));
/** Formats whose files the soak checks row by row. */
const FORMATS = ["occurrences_simple_csv", "occurrences_ndjson"] as const;

/** What a soak found. */
export interface SoakReport {
  minutes: number;
  requested: number;
  /** Create requests answered 503 while Temporal restarted (nothing created: allowed). */
  unavailable: number;
  succeeded: number;
  failed: number;
  revoked: number;
  /** Processes that ended on their own: must be empty. */
  deaths: string[];
  /** Exports that ended wrong (bad file, unreadable error, never ended): must be empty. */
  problems: string[];
  /** GOAWAY-driven reconnects happened: seconds between forced connection closes. */
  maxConnectionAgeSeconds: number;
  /** Exports in flight at some instant of the S3 outage (created before or during it). */
  duringS3Outage: number;
  /** S3 connections (worker, API, downloads) open when the outage began, cut by it. */
  s3ConnectionsCut: number;
  /** Exports seen SUCCESS after S3 was reachable again: the last fault (recovery shown). */
  succeededAfterFaults: number;
}

/** Runs the soak for `minutes` against the (migrated) database at `databaseUrl`. */
export async function runSoak(options: {
  minutes: number;
  databaseUrl: string;
  log?: (line: string) => void;
}): Promise<SoakReport> {
  const log = options.log ?? ((line: string) => console.error(`[soak] ${line}`));
  await Deno.mkdir(LOG_DIR, { recursive: true });
  const dir = await Deno.makeTempDir({ prefix: "ami-soak-" });
  const dbFile = `${dir}/temporal.db`;
  const maxConnectionAgeSeconds = 20;
  const dynamicConfig = {
    "frontend.keepAliveMaxConnectionAge": `${maxConnectionAgeSeconds}s`,
    "frontend.keepAliveMaxConnectionAgeGrace": "5s",
  };
  const temporalLog = `${LOG_DIR}/temporal.log`;
  let temporal: TemporalDevServer = await startTemporalDevServer({
    dbFile,
    logFile: temporalLog,
    dynamicConfig,
  });
  const moto: MotoServer = await startMotoServer({ logFile: `${LOG_DIR}/moto.log` });
  // every S3 client (worker, API, presigned downloads) goes through the proxy: the outage
  const s3: TcpProxy = startTcpProxy(moto.port);
  const sql = connectDatabase(options.databaseUrl, { max: 2 });
  const report: SoakReport = {
    minutes: options.minutes,
    requested: 0,
    unavailable: 0,
    succeeded: 0,
    failed: 0,
    revoked: 0,
    deaths: [],
    problems: [],
    maxConnectionAgeSeconds,
    duringS3Outage: 0,
    s3ConnectionsCut: 0,
    succeededAfterFaults: 0,
  };
  let api: ApiProcess | undefined;
  let worker: WorkerProcess | undefined;
  let stopping = false;
  try {
    const seed = await seedDemo(sql, { occurrences: 1500, seed: 4242 });
    const expected = await expectedOccurrenceIds(sql, seed.project_id);
    const suffix = crypto.randomUUID().slice(0, 8);
    const env: Record<string, string> = {
      DATABASE_URL: options.databaseUrl,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_TASK_QUEUE: `soak-${suffix}`,
      STORAGE_BACKEND: "s3",
      S3_ENDPOINT: s3.endpoint,
      S3_BUCKET: `soak-${suffix}`,
      AWS_ACCESS_KEY_ID: "testing",
      AWS_SECRET_ACCESS_KEY: "testing",
      EXPORT_BATCH_SIZE: "100",
      HEARTBEAT_TIMEOUT_SECONDS: "10",
      HOUSEKEEPING_INTERVAL_MINUTES: "0",
      LOG_LEVEL: "silent",
    };
    api = await startApiProcess({ ...env, PORT: String(freePort()) }, `${LOG_DIR}/api.log`);
    worker = await startWorkerProcess(env, { name: "soak" });
    const processes: [string, { exited: Promise<Deno.CommandStatus> }][] = [
      ["api", api],
      ["worker", worker],
    ];
    for (const [name, p] of processes) {
      p.exited.then((status) => {
        if (!stopping) {
          report.deaths.push(`${name} exited on its own: ${JSON.stringify(status)}`);
          log(`!! ${name} died: ${JSON.stringify(status)}`);
        }
      });
    }

    const client = new SoakClient(api.base, seed, expected.length, log);
    const started = Date.now();
    const deadline = started + options.minutes * 60_000;
    const restartTemporalAt = started + options.minutes * 60_000 * 0.3;
    const stopS3At = started + options.minutes * 60_000 * 0.6;
    let temporalRestarted = false;
    let s3Outage: Promise<void> | undefined;
    let s3BackAt = Infinity;
    const inFlight = new Map<number, Promise<void>>();
    const duringOutage = new Set<number>();
    let n = 0;
    while (Date.now() < deadline && report.deaths.length === 0) {
      if (!temporalRestarted && Date.now() >= restartTemporalAt) {
        temporalRestarted = true;
        log("restarting the Temporal server (same port and database file)");
        await temporal.stop();
        await sleep(3000);
        temporal = await startTemporalDevServer({
          port: temporal.port,
          dbFile,
          logFile: temporalLog,
          dynamicConfig,
        });
        log("Temporal server is back");
      }
      if (!s3Outage && Date.now() >= stopS3At) {
        // S3 goes away for 30 s while the loop goes on: exports in flight lose their
        // connections, new ones start without storage; every one must still end right
        s3Outage = (async () => {
          log("S3 unreachable for 30 s (every connection cut, new ones refused)");
          await s3.stop();
          report.s3ConnectionsCut = s3.cut;
          for (const id of inFlight.keys()) duringOutage.add(id);
          await sleep(30_000);
          await s3.start();
          s3BackAt = Date.now();
          log("S3 reachable again");
        })();
      }
      if (inFlight.size < 2) {
        const format = FORMATS[n % FORMATS.length];
        const cancel = n % 4 === 3;
        n++;
        report.requested++;
        const id = await client.create(format);
        if (id === undefined) {
          report.unavailable++;
        } else {
          const run = client.follow(id, { cancel }).finally(() => inFlight.delete(id));
          inFlight.set(id, run);
          if (s3Outage && !s3.listening) duringOutage.add(id);
        }
      }
      await sleep(1000);
    }
    log(`loop over after ${((Date.now() - started) / 1000).toFixed(0)} s; draining`);
    await s3Outage;
    report.duringS3Outage = duringOutage.size;
    const died = new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (report.deaths.length > 0) resolve();
      }, 500);
      Promise.all(inFlight.values()).then(() => clearInterval(check));
    });
    await Promise.race([Promise.all(inFlight.values()), died]);
    if (report.deaths.length === 0) {
      await client.verifyFinished();
      // healthy again within 30 s: one check may time out (5 s each) on a loaded machine
      const healthDeadline = Date.now() + 30_000;
      let health = await fetch(`${api.base}/healthz`);
      let body = await health.json();
      while (health.status !== 200 && Date.now() < healthDeadline) {
        await sleep(2000);
        health = await fetch(`${api.base}/healthz`);
        body = await health.json();
      }
      if (health.status !== 200) {
        report.problems.push(`healthz ${health.status} for 30 s: ${JSON.stringify(body)}`);
      }
    }
    Object.assign(report, client.counts());
    report.succeededAfterFaults = client.succeededSince(s3BackAt);
    report.problems.push(...client.problems);
    return report;
  } finally {
    stopping = true;
    await Promise.all([api?.stop(), worker?.stop()]);
    await s3.stop();
    await Promise.all([temporal.stop(), moto.stop()]);
    await sql.end({ timeout: 5 });
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Talks to the API process like a user: create, poll, cancel, download, check. */
class SoakClient {
  readonly problems: string[] = [];
  #succeeded: { id: number; format: string; checksum: string }[] = [];
  /** When each SUCCESS was seen (ms since the epoch). */
  #succeededAt: number[] = [];
  #counts = { succeeded: 0, failed: 0, revoked: 0 };

  constructor(
    private readonly base: string,
    private readonly seed: SeedResult,
    private readonly expectedRows: number,
    private readonly log: (line: string) => void,
  ) {}

  counts(): { succeeded: number; failed: number; revoked: number } {
    return { ...this.#counts };
  }

  /** Exports seen SUCCESS at or after `time` (ms since the epoch). */
  succeededSince(time: number): number {
    return this.#succeededAt.filter((at) => at >= time).length;
  }

  async #call(method: string, path: string, body?: unknown): Promise<Response> {
    return await fetch(`${this.base}${path}`, {
      method,
      headers: { Authorization: `Token ${this.seed.token}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  /** Requests an export; undefined when the API answers 503 (Temporal away: nothing created). */
  async create(format: string): Promise<number | undefined> {
    const res = await this.#call("POST", "/api/v2/exports/", {
      project: this.seed.project_id,
      format,
      force: true, // every round exports (an identical request would reuse the file)
    });
    const body = await res.json();
    if (res.status === 503) return undefined;
    if (res.status !== 201) {
      this.problems.push(`create ${format}: ${res.status} ${JSON.stringify(body)}`);
      return undefined;
    }
    return body.id as number;
  }

  /** Polls the export to its end (cancelling it first when asked) and records the outcome. */
  async follow(id: number, options: { cancel: boolean }): Promise<void> {
    const deadline = Date.now() + 6 * 60_000;
    let cancelled = false;
    while (Date.now() < deadline) {
      const res = await this.#call("GET", `/api/v2/exports/${id}/`).catch((e) => e as Error);
      if (res instanceof Error || res.status >= 500) {
        await sleep(1000);
        continue;
      }
      const body = await res.json();
      if (options.cancel && !cancelled && body.status === "STARTED") {
        const r = await this.#call("POST", `/api/v2/exports/${id}/cancel/`);
        await r.body?.cancel();
        cancelled = [202, 409].includes(r.status);
      }
      if (body.status === "SUCCESS") {
        this.#counts.succeeded++;
        this.#succeededAt.push(Date.now());
        this.#succeeded.push({
          id,
          format: body.format,
          checksum: String(body.checksum ?? ""),
        });
        if (body.record_count !== this.expectedRows) {
          this.problems.push(
            `export ${id}: record_count ${body.record_count} ≠ ${this.expectedRows}`,
          );
        }
        return;
      }
      if (body.status === "FAILURE" || body.status === "REVOKED") {
        if (body.status === "FAILURE") this.#counts.failed++;
        else this.#counts.revoked++;
        if (
          body.status === "FAILURE" && !(typeof body.error === "string" && body.error.length > 10)
        ) {
          this.problems.push(`export ${id}: FAILURE without a readable error: ${body.error}`);
        }
        if (body.status === "REVOKED" && !options.cancel) {
          this.problems.push(`export ${id}: REVOKED without a cancel`);
        }
        this.log(`export ${id} ${body.status}${body.error ? `: ${body.error}` : ""}`);
        return;
      }
      await sleep(500);
    }
    this.problems.push(`export ${id} did not end within 6 minutes`);
  }

  /**
   * Downloads every finished, unchecked file: checksum and row count must be exact, and a file
   * that cannot be downloaded is a problem (a finished export never loses its file).
   */
  async verifyFinished(): Promise<void> {
    for (const done of this.#succeeded.splice(0)) {
      const res = await this.#call("GET", `/api/v2/exports/${done.id}/`);
      const body = await res.json();
      const file = await fetch(body.file_url);
      if (!file.ok) {
        this.problems.push(`export ${done.id}: download ${file.status}`);
        await file.body?.cancel();
        continue;
      }
      const bytes = new Uint8Array(await file.arrayBuffer());
      const digest = await sha256Hex(bytes);
      if (!done.checksum.includes(digest)) {
        this.problems.push(`export ${done.id}: sha256 ${digest} ≠ checksum ${done.checksum}`);
      }
      const text = new TextDecoder().decode(bytes);
      const rows = done.format === "occurrences_simple_csv"
        ? (parse(text, { columns: true }) as unknown[]).length
        : text.split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l)).length;
      if (rows !== this.expectedRows) {
        this.problems.push(
          `export ${done.id} (${done.format}): ${rows} rows ≠ ${this.expectedRows}`,
        );
      }
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { minutes: { type: "string", default: "10" } },
  });
  const minutes = Number(values.minutes);
  if (!(minutes > 0)) {
    console.error("usage: deno task soak [--minutes N]   (N > 0, default 10)");
    Deno.exit(2);
  }
  const baseUrl = Deno.env.get("DATABASE_URL") ?? "postgres://postgres@127.0.0.1:5432/postgres";
  await ensurePostgres(baseUrl);
  const dbName = `ami_exports_soak_${Date.now()}`;
  await createDatabase(baseUrl, dbName);
  const databaseUrl = withDatabase(baseUrl, dbName);
  let report: SoakReport | undefined;
  try {
    const sql: Sql = connectDatabase(databaseUrl, { max: 2 });
    await migrate(sql);
    await sql.end();
    report = await runSoak({ minutes, databaseUrl });
  } finally {
    await dropDatabase(baseUrl, dbName).catch(() => {});
  }
  console.log(JSON.stringify(report, null, 2));
  const ok = report.deaths.length === 0 && report.problems.length === 0 && report.succeeded > 0;
  console.log(ok ? "soak passed" : "soak FAILED");
  Deno.exit(ok ? 0 : 1);
}
