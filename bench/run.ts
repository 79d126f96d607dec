/**
 * `deno task bench [--occurrences N] [--formats a,b|all] [--backends s3,fs] [--latency-runs 10]
 * [--workers single,split,split:2] [--skip-copy] [--single-v8-flags F] [--workflows-v8-flags F]
 * [--streaming-v8-flags F] [--detections N] [--image-size WxH] [--fetch-concurrency N]`: how
 * close exports come to the database's pace, and how much memory they take.
 *
 * 1. Seeds (or reuses) a project of N occurrences in the benchmark database
 *    (`ami_exports_bench`, see `bench/database.ts`).
 * 2. Starts a Temporal dev server and a moto S3 server on free loopback ports.
 * 3. Per format: the COPY limit (`bench/copy_limit.ts`: the exporter's own batch statement under
 *    `COPY … TO STDOUT`, summed over the export's keyset batches), the statements per batch, and
 *    the count statement's time.
 * 4. Per format, backend and worker mode: one export end to end through the HTTP API (POST →
 *    workflow → worker → storage → SUCCESS), the workers separate processes whose peak RSS
 *    (VmHWM, reset before each export) is read from /proc. `split` (default): a
 *    `WORKER_ROLE=streaming` process (with `STREAMING_V8_FLAGS`, cli/worker_flags.ts) and a
 *    `WORKER_ROLE=workflows` one, each measured; `single`: one `WORKER_ROLE=all` process.
 * 5. The median POST → SUCCESS latency of a 100-occurrence export.
 *
 * The image formats (`--formats crops_by_taxon,yolo_dataset`, apart from the others) run on a
 * project of `--detections` boxed detections whose captures are synthetic JPEGs of
 * `--image-size` served by moto on loopback (`bench/image_sources.ts`, its own database
 * `ami_exports_bench_images`, the host allowed through `SOURCE_IMAGE_HOSTS`, the workers fetching
 * `--fetch-concurrency` at once); step 3 is then the single-pass image reference
 * (`bench/image_reference.ts`: fetch each capture once, decode once, cut every crop), and the
 * run is kept under `images["WxH"]` of `bench/results.json`, beside the record formats' run.
 *
 * `--formats all` is every format but the image datasets, which need their image project:
 * name them apart (`--formats crops_by_taxon,yolo_dataset`).
 *
 * Prints a table and writes `bench/results.json`. Nothing here is a test: no assertion on time.
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { createApp } from "../api/mod.ts";
import { startMotoServer, startTemporalDevServer } from "../cli/dev_services.ts";
import { Client } from "@temporalio/client";
import { NativeConnection } from "@temporalio/worker";
import { loadConfig } from "../config/mod.ts";
import { withoutParallelWorkers } from "../db/client.ts";
import { readConsistently } from "../db/snapshot.ts";
import { getExporter, supportedFormats } from "../registry/mod.ts";
import type { ExportQueryContext } from "../registry/types.ts";
import { createStorage } from "../storage/mod.ts";
import { type CopyLimit, measureCopyLimit, streamStatementsPerChunk } from "./copy_limit.ts";
import { measureReference, type ReferenceRun } from "./reference.ts";
import {
  BENCH_DATABASE,
  BENCH_IMAGES_DATABASE,
  benchDatabaseUrl,
  benchProject,
  openBenchDatabase,
} from "./database.ts";
import { imageBenchProject, parseImageSize } from "./image_sources.ts";
import { type ImageReferenceRun, measureImageReference } from "./image_reference.ts";
import type { ExportOptions } from "../registry/types.ts";
import { startWorkerProcess, type WorkerProcess } from "./worker_process.ts";
import {
  ALL_V8_FLAGS,
  STREAMING_V8_FLAGS,
  WORKER_MALLOC_ENV,
  WORKFLOWS_V8_FLAGS,
} from "../cli/worker_flags.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MB = 1024 * 1024;

/** COPY options per format: how Postgres would serialize the format's rows itself. */
const COPY_OPTIONS: Record<string, string> = {
  occurrences_simple_csv: "with csv",
  occurrences_api_json: "",
};

/**
 * The record formats whose batches page on the occurrence id (`c.id > $n`), which
 * `measureCopyLimit` replays under COPY.
 */
const OCCURRENCE_BATCH_FORMATS = new Set([
  "occurrences_simple_csv",
  "occurrences_api_json",
  "occurrences_ndjson",
]);

/**
 * The image formats the bench runs on its image project, with the options of their exports (and
 * of their reference): crops padded by 10 % of the box, quality 90, no downscale; frames at
 * quality 90, full size.
 */
export const IMAGE_BENCH_OPTIONS: Record<string, ExportOptions> = {
  crops_by_taxon: { crop_padding: 0.1, jpeg_quality: 90 },
  yolo_dataset: { jpeg_quality: 90 },
};

/** One end-to-end export measured. */
export interface ExportRun {
  format: string;
  backend: "s3" | "fs";
  status: string;
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  ratioToCopy: number;
  /** Rows/s over the independent single-pass reference's (`bench/reference.ts`); 0 without. */
  ratioToReference: number;
  /**
   * `single`: one `WORKER_ROLE=all` process; `split`: a `workflows` and a `streaming` one;
   * `:n` (`single:2`, `split:2`): n `all` / `streaming` processes (what a sharded export
   * spreads over).
   */
  workers: WorkerMode;
  /**
   * Peak RSS of the process that streamed the export (`all`, or `streaming` when split); with
   * several, the largest.
   */
  workerPeakRssMb: number;
  workerRssBeforeMb: number;
  /** Split only: the `workflows` process (workflow tasks and control activities). */
  workflowsPeakRssMb?: number;
  workflowsRssBeforeMb?: number;
  /** `/proc/loadavg` (1, 5, 15 min) when the export ended: the machine is shared. */
  loadAverage: string;
  bytes: number;
  statementsPerBatch: number;
  countShare: number;
  /** Image formats: the sources' size (`1600x1200`) and the concurrent fetches per worker. */
  imageSize?: string;
  fetchConcurrency?: number;
}

/** Everything one bench run found (the content of `bench/results.json`). */
export interface BenchResults {
  date: string;
  /** The command that made this run (`deno task bench …`, its arguments as given). */
  command?: string;
  /** The commit of the code measured (`git rev-parse --short HEAD`), `-dirty` with local changes. */
  commit?: string;
  machine: { nproc: number; memoryGb: number; postgres: Record<string, string> };
  occurrences: number;
  batchSize: number;
  partSizeMb: number;
  copyLimits: Record<string, CopyLimit & { countSeconds: number }>;
  /**
   * Per format: its `count` statement (records, seconds) and the SQL statements one batch (a
   * record format) or one chunk (a stream format, the most of its first chunks) sends.
   */
  counts: Record<string, { records: number; seconds: number; statementsPerBatch: number }>;
  /** Per format: the independent single-pass COPY of the same rows (issue 15, point 1). */
  references: Record<string, ReferenceRun | ImageReferenceRun>;
  exports: ExportRun[];
  latency100: { runs: number; medianSeconds: number; seconds: number[] };
  /** Image runs: the project (`bench/image_sources.ts`). */
  imageProject?: {
    detections: number;
    captures: number;
    width: number;
    height: number;
    sourceBytes: number;
  };
  /** In `bench/results.json`: the image runs by source size, beside the record formats' run. */
  images?: Record<string, BenchResults>;
}

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    occurrences: { type: "string", default: "1000000" },
    formats: { type: "string", default: "occurrences_simple_csv,occurrences_api_json" },
    backends: { type: "string", default: "s3,fs" },
    "latency-runs": { type: "string", default: "10" },
    workers: { type: "string", default: "split" },
    /** Memory runs: no COPY limit, no reference (the ratios are then 0). */
    "skip-copy": { type: "boolean", default: false },
    "single-v8-flags": { type: "string", default: ALL_V8_FLAGS },
    "workflows-v8-flags": { type: "string", default: WORKFLOWS_V8_FLAGS },
    "streaming-v8-flags": { type: "string", default: STREAMING_V8_FLAGS },
    output: { type: "string", default: `${ROOT}bench/results.json` },
    /** Image formats: boxed detections of the image project, source size, fetches at once. */
    detections: { type: "string", default: "10000" },
    "image-size": { type: "string", default: "1600x1200" },
    "fetch-concurrency": { type: "string", default: "8" },
  },
});

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A ratio with two decimals, or "—" when there is nothing to compare with (0). */
function ratio(value: number): string {
  return value > 0 ? value.toFixed(2) : "—";
}

function pad(values: (string | number)[], widths: number[]): string {
  return values.map((v, i) => String(v).padStart(widths[i])).join("  ");
}

async function main(): Promise<void> {
  // the in-process API logs one line per request; the table is what this prints
  Deno.env.set("LOG_LEVEL", "silent");
  const occurrences = Number(flags.occurrences);
  // `all`: every format of the record project; the image datasets need their own (run apart)
  const formats = flags.formats === "all"
    ? supportedFormats().filter((f) => !(f in IMAGE_BENCH_OPTIONS))
    : flags.formats.split(",").filter(Boolean);
  const backends = flags.backends.split(",").filter(Boolean) as ("s3" | "fs")[];
  const imageRun = formats.some((f) => f in IMAGE_BENCH_OPTIONS);
  if (imageRun && !formats.every((f) => f in IMAGE_BENCH_OPTIONS)) {
    throw new Error(
      `--formats: the image formats (${Object.keys(IMAGE_BENCH_OPTIONS)}) run apart from others`,
    );
  }
  const imageSize = parseImageSize(flags["image-size"]);
  const fetchConcurrency = Number(flags["fetch-concurrency"]);
  // image runs: no 100-row latency (a figure of the record formats' run)
  const latencyRuns = imageRun ? 0 : Number(flags["latency-runs"]);
  // the warm-up (and latency) export: of the small project, which has no source images
  const warmFormat = imageRun ? "occurrences_simple_csv" : formats[0];
  const modes = flags.workers.split(",").filter(Boolean) as WorkerMode[];
  for (const mode of modes) {
    if (!/^(single|split)(:[1-9])?$/.test(mode)) {
      throw new Error(`--workers: single, split, single:n or split:n (n = 1–9), not ${mode}`);
    }
  }
  const baseUrl = Deno.env.get("DATABASE_URL") ?? "postgres://postgres@127.0.0.1:5432/ami_exports";
  const database = imageRun ? BENCH_IMAGES_DATABASE : BENCH_DATABASE;
  const dbUrl = benchDatabaseUrl(baseUrl, database);
  const logDir = `${ROOT}.data/bench`;
  await Deno.mkdir(logDir, { recursive: true });

  const sql = await openBenchDatabase(baseUrl, database);
  const records = imageRun ? undefined : await benchProject(sql, occurrences);
  const small = await benchProject(sql, 100); // the warm-up export (and the latency runs)
  const settings = Object.fromEntries(
    (await sql<{ name: string; setting: string; unit: string | null }[]>`
      select name, setting, unit from pg_settings
      where name in ('shared_buffers', 'work_mem', 'autovacuum', 'server_version', 'jit')`)
      .map((s) => [s.name, s.unit ? `${s.setting} × ${s.unit}` : s.setting]),
  );

  console.error("starting Temporal dev server and moto …");
  const temporalServer = await startTemporalDevServer({ logFile: `${logDir}/temporal.log` });
  const moto = backends.includes("s3") || imageRun
    ? await startMotoServer({
      logFile: `${logDir}/moto.log`,
      script: `${ROOT}bench/moto_server.py`,
    })
    : undefined;
  const images = imageRun
    ? await imageBenchProject(sql, {
      detections: Number(flags.detections),
      size: imageSize,
      s3Endpoint: moto!.endpoint,
    })
    : undefined;
  const project = images ?? records!;
  const baseEnv: Record<string, string> = {
    ...Deno.env.toObject(),
    DATABASE_URL: dbUrl,
    TEMPORAL_ADDRESS: temporalServer.address,
    HOUSEKEEPING_INTERVAL_MINUTES: "0",
    AWS_ACCESS_KEY_ID: "bench",
    AWS_SECRET_ACCESS_KEY: "bench",
    ...(images
      ? { SOURCE_IMAGE_HOSTS: images.host, IMAGE_FETCH_CONCURRENCY: String(fetchConcurrency) }
      : {}),
  };
  const batchSize = loadConfig(baseEnv).exportBatchSize;
  const partSizeMb = loadConfig(baseEnv).uploadPartSize / MB;

  const results: BenchResults = {
    date: new Date().toISOString(),
    command: ["deno task bench", ...Deno.args].join(" "),
    commit: await codeCommit(),
    machine: {
      nproc: navigator.hardwareConcurrency,
      memoryGb: Math.round(Deno.systemMemoryInfo().total / 1024 ** 3),
      postgres: settings,
    },
    occurrences: images ? images.detections : occurrences,
    batchSize,
    partSizeMb,
    copyLimits: {},
    counts: {},
    references: {},
    exports: [],
    latency100: { runs: 0, medianSeconds: 0, seconds: [] },
    ...(images
      ? {
        imageProject: {
          detections: images.detections,
          captures: images.captures,
          width: imageSize.width,
          height: imageSize.height,
          sourceBytes: images.sourceBytes,
        },
      }
      : {}),
  };

  try {
    for (const format of flags["skip-copy"] ? [] : formats) {
      const exporter = getExporter(format);
      if (!exporter) throw new Error(`unknown format: ${format}`);
      const ctx: ExportQueryContext = { sql, projectId: project.projectId, filters: {} };
      const countStarted = performance.now();
      // counted as the export's countRecords counts: in a repeatable-read snapshot, one
      // backend's work, no parallel workers
      // (db/client.ts withoutParallelWorkers: on a busy server a parallel plan of
      // taxon_counts_csv's count at 1M took 689 s in this bench, against 3 s without them)
      const counted = await readConsistently(sql, async (tx) => {
        await withoutParallelWorkers(tx);
        return await exporter.count({ ...ctx, sql: tx });
      });
      const countSeconds = (performance.now() - countStarted) / 1000;
      if (format in IMAGE_BENCH_OPTIONS) {
        results.counts[format] = { records: counted, seconds: countSeconds, statementsPerBatch: 0 };
        console.error(`${format}: ${counted} records; single-pass image reference …`);
        const reference = await measureImageReference(sql, format, {
          projectId: project.projectId,
          exportOptions: IMAGE_BENCH_OPTIONS[format],
          concurrency: fetchConcurrency,
        });
        if (reference) {
          results.references[format] = reference;
          console.error(
            `  ${reference.rows} in ${reference.seconds.toFixed(1)} s (${
              reference.rowsPerSecond.toFixed(1)
            }/s, ${reference.captures} captures, ${reference.failed} failed), load ${loadAverage()}`,
          );
        }
        continue;
      }
      if (!OCCURRENCE_BATCH_FORMATS.has(format)) {
        // a stream format (zip, Parquet, COCO, per-detection rows) has no single batch
        // statement whose COPY would be its limit, and the record formats of events, captures
        // and taxa page on other keys than the occurrence cursor the COPY limit replays: end to
        // end only
        const statementsPerBatch = await streamStatementsPerChunk(dbUrl, exporter, {
          projectId: project.projectId,
          limit: batchSize,
        });
        results.counts[format] = { records: counted, seconds: countSeconds, statementsPerBatch };
        console.error(
          `${format}: ${counted} records (count ${countSeconds.toFixed(2)} s), ` +
            `at most ${statementsPerBatch} statement(s) per chunk; single-pass reference …`,
        );
        const reference = await measureReference(dbUrl, exporter, {
          projectId: project.projectId,
          rows: counted,
          timeZone: loadConfig(baseEnv).formats.timeZone,
        });
        if (reference) {
          results.references[format] = reference;
          console.error(
            `  ${reference.seconds.toFixed(1)} s (${Math.round(reference.rowsPerSecond)} rows/s)`,
          );
        }
        continue;
      }
      console.error(`${format}: COPY limit over the export's keyset batches …`);
      const limit = await measureCopyLimit(dbUrl, exporter, {
        projectId: project.projectId,
        limit: batchSize,
        copyOptions: COPY_OPTIONS[format] ?? "",
      });
      results.copyLimits[format] = { ...limit, countSeconds };
      results.counts[format] = {
        records: counted,
        seconds: countSeconds,
        statementsPerBatch: limit.statementsPerBatch,
      };
      console.error(`${format}: independent single-pass reference COPY …`);
      const reference = await measureReference(dbUrl, exporter, {
        projectId: project.projectId,
        rows: limit.rows,
        timeZone: loadConfig(baseEnv).formats.timeZone,
      });
      if (reference) {
        results.references[format] = reference;
        console.error(
          `  ${reference.seconds.toFixed(1)} s (${Math.round(reference.rowsPerSecond)} rows/s)`,
        );
      }
      console.error(
        `  ${limit.rows} rows in ${limit.seconds.toFixed(1)} s (${
          Math.round(limit.rowsPerSecond)
        } rows/s), ${limit.statementsPerBatch} statement(s) per batch, count ${
          countSeconds.toFixed(2)
        } s`,
      );
    }

    for (const backend of backends) {
      const env: Record<string, string> = {
        ...baseEnv,
        STORAGE_BACKEND: backend,
        TEMPORAL_TASK_QUEUE: `bench-${backend}`,
        EXPORTS_DIR: `${ROOT}.data/bench/exports`,
        ...(backend === "s3" ? { S3_ENDPOINT: moto!.endpoint, S3_BUCKET: "bench-exports" } : {}),
        PORT: "8000",
      };
      const config = loadConfig(env);
      const storage = createStorage(config);
      await storage.ensureReady();
      // The Rust core's connection, not the gRPC-js one: under Deno, node:http2 aborted the
      // process (nghttp2 assertion on GOAWAY) once the connection was a few minutes old.
      const connection = await NativeConnection.connect({ address: config.temporalAddress });
      const client = new Client({ connection, namespace: config.temporalNamespace });
      const app = createApp({ sql, storage, config, temporal: client });
      const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, app.fetch);
      const base = `http://127.0.0.1:${server.addr.port}`;
      try {
        for (const mode of modes) {
          const workers = await startWorkers(mode, env, `${logDir}/worker-${backend}`);
          try {
            // warm-up: the first workflow task loads the bundle, the first export the activities
            for (let i = 0; small && i < workers.streaming.length; i++) {
              await exportOnce(base, small.projectId, small.token, warmFormat, 50);
            }
            for (const format of formats) {
              console.error(
                `${format} → ${backend} (${mode} worker): exporting ${
                  images ? `${images.detections} detections` : `${occurrences} occurrences`
                } …`,
              );
              const before = Math.max(...await Promise.all(workers.streaming.map((w) => w.rss())));
              const workflowsBefore = await workers.workflows?.rss();
              await Promise.all(workers.all.map((w) => w.resetPeak()));
              const { seconds, body } = await Promise.race([
                exportOnce(
                  base,
                  project.projectId,
                  project.token,
                  format,
                  200,
                  IMAGE_BENCH_OPTIONS[format],
                ),
                ...workers.all.map((w) => w.exited),
              ]);
              const peaks = await Promise.all(workers.streaming.map((w) => w.peakRss()));
              const peak = Math.max(...peaks);
              const workflowsPeak = await workers.workflows?.peakRss();
              const copy = results.copyLimits[format];
              const counted = results.counts[format];
              const rows = Number(body.record_count ?? 0);
              const run: ExportRun = {
                format,
                backend,
                workers: mode,
                status: String(body.status) + (body.error ? `: ${body.error}` : ""),
                rows,
                seconds,
                rowsPerSecond: rows / seconds,
                ratioToCopy: copy ? rows / seconds / copy.rowsPerSecond : 0,
                ratioToReference: results.references[format]
                  ? rows / seconds / results.references[format].rowsPerSecond
                  : 0,
                workerPeakRssMb: peak / MB,
                workerRssBeforeMb: before / MB,
                ...(workflowsPeak === undefined ? {} : {
                  workflowsPeakRssMb: workflowsPeak / MB,
                  workflowsRssBeforeMb: (workflowsBefore ?? 0) / MB,
                }),
                bytes: Number(body.file_size ?? 0),
                statementsPerBatch: counted?.statementsPerBatch ?? 0,
                countShare: counted ? counted.seconds / seconds : 0,
                loadAverage: loadAverage(),
                ...(images
                  ? { imageSize: `${imageSize.width}x${imageSize.height}`, fetchConcurrency }
                  : {}),
              };
              results.exports.push(run);
              console.error(
                `  ${run.status} ${rows} rows in ${seconds.toFixed(1)} s, ${
                  ratio(run.ratioToCopy)
                }× COPY, ${ratio(run.ratioToReference)}× reference, peak RSS ${
                  run.workerPeakRssMb.toFixed(0)
                } MB${
                  run.workflowsPeakRssMb === undefined
                    ? ""
                    : ` (workflows worker ${run.workflowsPeakRssMb.toFixed(0)} MB)`
                }, load ${run.loadAverage}`,
              );
            }
            if (small && latencyRuns > 0 && backend === backends[0] && mode === modes[0]) {
              console.error(`100-row export latency (${latencyRuns} runs) …`);
              for (let i = 0; i < latencyRuns; i++) {
                const { seconds } = await exportOnce(
                  base,
                  small.projectId,
                  small.token,
                  warmFormat,
                  20,
                );
                results.latency100.seconds.push(seconds);
              }
              results.latency100.runs = latencyRuns;
              results.latency100.medianSeconds = median(results.latency100.seconds);
            }
          } finally {
            await Promise.all(workers.all.map((w) => w.stop()));
          }
        }
      } finally {
        await server.shutdown();
        await connection.close();
      }
    }
  } finally {
    await moto?.stop();
    await temporalServer.stop();
    await sql.end({ timeout: 5 });
  }

  await Deno.writeTextFile(flags.output, JSON.stringify(mergedResults(results), null, 2) + "\n");
  printTable(results);
}

/**
 * What `bench/results.json` becomes: a record formats' run replaces the file but keeps its image
 * runs; an image run is kept under `images["WxH"]`, beside the rest of the file.
 */
function mergedResults(results: BenchResults): BenchResults {
  let previous: BenchResults | undefined;
  try {
    previous = JSON.parse(Deno.readTextFileSync(flags.output));
  } catch {
    previous = undefined;
  }
  if (!results.imageProject) return { ...results, images: previous?.images };
  const key = `${results.imageProject.width}x${results.imageProject.height}`;
  const base = previous ?? results;
  return { ...base, images: { ...base.images, [key]: results } };
}

/** How the bench runs the worker: see {@link ExportRun.workers}. */
export type WorkerMode = "single" | "split" | `${"single" | "split"}:${number}`;

/** The worker processes of one mode. */
interface BenchWorkers {
  all: WorkerProcess[];
  /** The processes that stream exports (`all` or `streaming` role). */
  streaming: WorkerProcess[];
  /** Split only: the `workflows` process. */
  workflows?: WorkerProcess;
}

/**
 * `single`: one `WORKER_ROLE=all` process. `split`: a `streaming` process (measured first) and
 * a `workflows` process, each with its `--v8-flags` and the malloc settings of the deno tasks.
 */
async function startWorkers(
  mode: WorkerMode,
  env: Record<string, string>,
  logPrefix: string,
): Promise<BenchWorkers> {
  const [layout, count] = mode.split(":");
  const n = Number(count ?? 1);
  if (layout === "single") {
    const streaming = await Promise.all(
      Array.from(
        { length: n },
        (_, i) =>
          startWorkerProcess({ ...env, ...WORKER_MALLOC_ENV, WORKER_ROLE: "all" }, {
            logFile: `${logPrefix}-all-${i + 1}.log`,
            v8Flags: flags["single-v8-flags"],
          }),
      ),
    );
    return { all: streaming, streaming };
  }
  const [workflows, ...streaming] = await Promise.all([
    startWorkerProcess({ ...env, ...WORKER_MALLOC_ENV, WORKER_ROLE: "workflows" }, {
      logFile: `${logPrefix}-workflows.log`,
      v8Flags: flags["workflows-v8-flags"],
    }),
    ...Array.from(
      { length: n },
      (_, i) =>
        startWorkerProcess({ ...env, ...WORKER_MALLOC_ENV, WORKER_ROLE: "streaming" }, {
          logFile: `${logPrefix}-streaming-${i + 1}.log`,
          v8Flags: flags["streaming-v8-flags"],
        }),
    ),
  ]);
  return { all: [workflows, ...streaming], streaming, workflows };
}

function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "";
  }
}

/**
 * One export through the HTTP API: POST (`force`: an identical earlier export, of this run or
 * of an earlier one on the same database, is never reused), poll until it ends, then DELETE its
 * file.
 */
async function exportOnce(
  base: string,
  projectId: number,
  token: string,
  format: string,
  pollMs: number,
  options?: ExportOptions,
): Promise<{ seconds: number; body: Record<string, unknown> }> {
  const headers = { Authorization: `Token ${token}`, "Content-Type": "application/json" };
  const started = performance.now();
  const res = await fetch(`${base}/api/v2/exports/`, {
    method: "POST",
    headers,
    body: JSON.stringify({
      project: projectId,
      format,
      filters: {},
      force: true,
      ...(options ? { options } : {}),
    }),
  });
  const created = await res.json();
  if (res.status !== 201) throw new Error(`POST failed: ${res.status} ${created.error}`);
  while (true) {
    const body = await (await fetch(`${base}/api/v2/exports/${created.id}/`, { headers }))
      .json();
    if (!["PENDING", "STARTED"].includes(body.status)) {
      const seconds = (performance.now() - started) / 1000;
      // drop the file: the bench should not fill the disk or moto's memory
      await fetch(`${base}/api/v2/exports/${created.id}/`, { method: "DELETE", headers });
      return { seconds, body };
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Prints the results as the tables of docs/benchmarks.md. */
export function printTable(results: BenchResults): void {
  const widths = [22, 7, 7, 9, 8, 8, 6, 6, 8, 8, 11, 5, 6];
  console.log(
    `\n${results.occurrences} occurrences, batch ${results.batchSize}, part ${results.partSizeMb} MB, ` +
      `${results.machine.nproc} cores`,
  );
  console.log(
    pad(
      [
        "format",
        "backend",
        "workers",
        "rows",
        "seconds",
        "rows/s",
        "×COPY",
        "×ref",
        "peakRSS",
        "wfRSS",
        "bytes",
        "stmts",
        "count",
      ],
      widths,
    ),
  );
  for (const [format, c] of Object.entries(results.copyLimits)) {
    console.log(
      pad([
        format,
        "COPY",
        "",
        c.rows,
        c.seconds.toFixed(1),
        Math.round(c.rowsPerSecond),
        "1.00",
        "",
        "",
        "",
        c.bytes,
        c.statementsPerBatch,
        "",
      ], widths),
    );
  }
  for (const [format, r] of Object.entries(results.references ?? {})) {
    console.log(
      pad([
        format,
        "ref",
        "",
        r.rows,
        r.seconds.toFixed(1),
        Math.round(r.rowsPerSecond),
        "",
        "1.00",
        "",
        "",
        r.bytes,
        1,
        "",
      ], widths),
    );
  }
  for (const r of results.exports) {
    console.log(
      pad([
        r.format,
        r.backend,
        r.workers ?? "single",
        r.rows,
        r.seconds.toFixed(1),
        Math.round(r.rowsPerSecond),
        ratio(r.ratioToCopy),
        ratio(r.ratioToReference),
        `${r.workerPeakRssMb.toFixed(0)} MB`,
        r.workflowsPeakRssMb === undefined ? "" : `${r.workflowsPeakRssMb.toFixed(0)} MB`,
        r.bytes,
        r.statementsPerBatch,
        `${(r.countShare * 100).toFixed(1)}%`,
      ], widths),
    );
  }
  if (results.latency100.runs > 0) {
    console.log(
      `100-row export, POST → SUCCESS: median ${
        results.latency100.medianSeconds.toFixed(2)
      } s over ${results.latency100.runs} runs`,
    );
  }
}

if (import.meta.main) await main();

/** `git rev-parse --short HEAD`, `-dirty` when tracked files differ from it; "unknown" outside git. */
async function codeCommit(): Promise<string> {
  const git = async (...args: string[]) => {
    const out = await new Deno.Command("git", { args, cwd: ROOT, stdout: "piped", stderr: "null" })
      .output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  };
  const head = await git("rev-parse", "--short", "HEAD");
  if (head === null) return "unknown";
  const changed = await git("status", "--porcelain", "--untracked-files=no");
  return changed ? `${head}-dirty` : head;
}
