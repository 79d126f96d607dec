/**
 * An in-process ami-exports against the real services of the test run: a worker (own task
 * queue), the Hono app (called with `app.request`), PostgreSQL and S3 (moto) or the filesystem.
 */
import type { NativeConnection } from "@temporalio/worker";
import { createApp } from "../api/mod.ts";
import { connectTemporal, type TemporalHandle } from "../cli/temporal.ts";
import { connectWorker, createExportWorker, type ExportWorker } from "../cli/worker.ts";
import { type Config, loadConfig } from "../config/mod.ts";
import { connectDatabase, type Sql } from "../db/client.ts";
import { deleteWorkflowId, type ExportIdentity, exportWorkflowId } from "../db/exports.ts";
import { createStorage } from "../storage/mod.ts";
import type { ObjectStorage } from "../storage/types.ts";
import { requireEnv, testDatabase } from "./support.ts";

/** A running in-process service for one test file. */
export interface Harness {
  sql: Sql;
  storage: ObjectStorage;
  config: Config;
  /** The environment the config was loaded from (give it to a worker process). */
  env: Record<string, string>;
  app: ReturnType<typeof createApp>;
  temporal: TemporalHandle;
  /** Calls the API with a token; JSON bodies are encoded. */
  api(
    method: string,
    path: string,
    options?: { token?: string; body?: unknown; raw?: string },
  ): Promise<Response>;
  /** Downloads a `file_url` (presigned S3 URL, or a signed `/files/` URL served by the app). */
  download(url: string): Promise<Uint8Array>;
  /** Polls an export until it leaves PENDING/STARTED; returns its final JSON. */
  waitForExport(id: number, token: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Starts (or restarts) the worker; `stopWorker` shuts it down. */
  startWorker(): Promise<void>;
  stopWorker(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a harness with S3 (moto) or filesystem storage and its own task queue and bucket. */
export async function startHarness(
  options: {
    storage?: "s3" | "fs";
    batchSize?: number;
    env?: Record<string, string>;
    /** Start the in-process worker (default true); false when workers are separate processes. */
    worker?: boolean;
    /** Another (migrated) database than the run's test database. */
    databaseUrl?: string;
  } = {},
): Promise<Harness> {
  const suffix = crypto.randomUUID().slice(0, 8);
  const backend = options.storage ?? "s3";
  const exportsDir = backend === "fs"
    ? await Deno.makeTempDir({ prefix: "ami-exports-test-" })
    : "";
  const env: Record<string, string> = {
    DATABASE_URL: options.databaseUrl ?? requireEnv("TEST_DATABASE_URL"),
    TEMPORAL_ADDRESS: requireEnv("TEMPORAL_ADDRESS"),
    TEMPORAL_TASK_QUEUE: `test-${suffix}`,
    STORAGE_BACKEND: backend,
    EXPORTS_DIR: exportsDir || ".data/unused",
    S3_ENDPOINT: requireEnv("TEST_S3_ENDPOINT"),
    S3_BUCKET: `exports-${suffix}`,
    AWS_ACCESS_KEY_ID: "testing",
    AWS_SECRET_ACCESS_KEY: "testing",
    PUBLIC_BASE_URL: "http://api.test",
    EXPORT_BATCH_SIZE: String(options.batchSize ?? 5000),
    UPLOAD_PART_SIZE_MB: "5",
    HEARTBEAT_TIMEOUT_SECONDS: "10",
    // a workflow cached on a worker killed with -9 moves to another after 2 s, not the SDK's 10
    // (a task that waits longer on a busy machine only moves too: the workflow replays)
    WORKER_STICKY_TIMEOUT_SECONDS: "2",
    // no running caps unless a test sets them (tests/fair_queue_test.ts): other tests insert
    // STARTED rows without workflows and start more exports per user than the caps admit
    EXPORT_MAX_RUNNING_PER_USER: "0",
    EXPORT_MAX_RUNNING_PER_PROJECT: "0",
    ...options.env,
  };
  const config = loadConfig(env);
  const sql = options.databaseUrl
    ? connectDatabase(options.databaseUrl, { max: 8 })
    : testDatabase(8);
  const storage = createStorage(config);
  await storage.ensureReady();
  const temporal = await connectTemporal(config);
  const app = createApp({ sql, storage, config, temporal: temporal.client });
  let worker: ExportWorker | undefined;
  let running: Promise<void> | undefined;
  let connection: NativeConnection | undefined;

  const harness: Harness = {
    sql,
    storage,
    config,
    env,
    app,
    temporal,
    async api(method, path, opts = {}) {
      const headers: Record<string, string> = {};
      if (opts.token) headers.Authorization = `Token ${opts.token}`;
      let body: string | undefined = opts.raw;
      if (opts.body !== undefined) body = JSON.stringify(opts.body);
      if (body !== undefined) headers["Content-Type"] = "application/json";
      return await app.request(path, { method, headers, body });
    },
    async download(url) {
      if (url.startsWith(config.publicBaseUrl)) {
        const res = await app.request(url.slice(config.publicBaseUrl.length));
        if (!res.ok) throw new Error(`download failed: ${res.status} ${await res.text()}`);
        return new Uint8Array(await res.arrayBuffer());
      }
      const res = await fetch(url);
      if (!res.ok) throw new Error(`download failed: ${res.status} ${await res.text()}`);
      return new Uint8Array(await res.arrayBuffer());
    },
    async waitForExport(id, token, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const res = await harness.api("GET", `/api/v2/exports/${id}/`, { token });
        const body = await res.json();
        if (!["PENDING", "STARTED"].includes(body.status)) return body;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`export ${id} did not finish within ${timeoutMs} ms`);
    },
    async startWorker() {
      connection = await connectWorker(config.temporalAddress);
      const started = await createExportWorker(
        { sql, storage, config, temporal: temporal.client },
        { connection },
      );
      worker = started;
      running = started.run();
    },
    async stopWorker() {
      if (!worker) return;
      worker.shutdown();
      await running;
      await connection?.close();
      worker = undefined;
    },
    async close() {
      await harness.stopWorker();
      await temporal.close();
      await sql.end({ timeout: 5 });
      if (exportsDir) await Deno.remove(exportsDir, { recursive: true }).catch(() => {});
    },
  };
  if (options.worker !== false) await harness.startWorker();
  return harness;
}

/** The ids of the project's valid occurrences, by an independent SQL query. */
export async function expectedOccurrenceIds(
  sql: Sql,
  projectId: number,
  collectionId?: number,
): Promise<number[]> {
  const rows = await sql<{ id: number }[]>`
    select o.id from occurrences o
    where o.project_id = ${projectId}
      and o.determination_id is not null
      and o.id in (select occurrence_id from detections where bbox is not null)
      and (${collectionId ?? null}::bigint is null or o.id in (
        select d.occurrence_id from detections d
        join source_image_collection_images ci on ci.source_image_id = d.source_image_id
        where ci.collection_id = ${collectionId ?? null}))
    order by o.id`;
  return rows.map((r) => r.id);
}

/** The workflow ids of export `id` (`data-export-<id>-<file_uuid>`, and its deletion's). */
export async function workflowIdsOf(
  sql: Sql,
  id: number,
): Promise<{ export: string; delete: string }> {
  const [row] = await sql<ExportIdentity[]>`
    select id, file_uuid::text from data_exports where id = ${id}`;
  if (!row) throw new Error(`no export ${id}`);
  return { export: exportWorkflowId(row), delete: deleteWorkflowId(row) };
}

/**
 * Waits (at most `timeoutMs`) until every run of export `id`'s workflow has closed. An ended
 * export's row reads REVOKED or FAILURE before its run has removed the partial files: the run
 * ends the row first, under its lock, and cleans up after (activities/export_outcome.ts), so
 * "nothing left" holds once the run has closed, not at the first read of the status.
 */
export async function exportRunsClosed(h: Harness, id: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const query = `WorkflowId STARTS_WITH "data-export-${id}-"`;
  for await (const run of h.temporal.client.workflow.list({ query })) {
    const handle = h.temporal.client.workflow.getHandle(run.workflowId, run.runId);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
    });
    await Promise.race([handle.result().catch(() => {}), expired]);
    clearTimeout(timer);
  }
}
