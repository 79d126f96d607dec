/**
 * `deno task worker`: a Temporal worker on the export task queue. Scale out by starting more of
 * these, on any machine that reaches Temporal, Postgres and storage.
 */
import { NativeConnection, Worker } from "@temporalio/worker";
import { fileURLToPath } from "node:url";
import { getHeapStatistics } from "node:v8";
import { type ActivityDependencies, createActivities } from "../activities/mod.ts";
import { activityLogInterceptor } from "../activities/log_interceptor.ts";
import { createScheduleActivities } from "../activities/schedules.ts";
import { createWebhookActivities } from "../activities/webhooks.ts";
import { serializeExport } from "../api/serialize.ts";
import { Client } from "@temporalio/client";
import { type Config, loadConfig, type WorkerRole } from "../config/mod.ts";
import { connectDatabase } from "../db/client.ts";
import { connectExportReads } from "../db/replica.ts";
import { createStorage } from "../storage/mod.ts";
import { setDecodeBudget } from "../registry/image_crops.ts";
import { ensureHousekeepingSchedule } from "./housekeeping.ts";
import { installRuntime } from "./runtime.ts";
import { closeNativeConnection } from "./temporal.ts";
import { backoffDelayMs, retryForever } from "./backoff.ts";
import { watchDependencies } from "./dependencies.ts";
import { ensureSearchAttributes } from "./temporal_setup.ts";
import { admissionTaskQueue, controlTaskQueue } from "../workflows/task_queues.ts";

const BUNDLER = fileURLToPath(new URL("./bundle_workflows.ts", import.meta.url));

let bundle: Promise<{ code: string }> | undefined;

/**
 * The workflow bundle, built once per process by `cli/bundle_workflows.ts` in a child process
 * (keeps webpack out of the worker's memory).
 */
export function workflowBundle(): Promise<{ code: string }> {
  bundle ??= (async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", BUNDLER],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error(`bundling the workflows failed (exit code ${out.code})`);
    return { code: new TextDecoder().decode(out.stdout) };
  })();
  return bundle;
}

/** Connects to Temporal for a worker (installs the SDK runtime first: {@link installRuntime}). */
export async function connectWorker(address: string): Promise<NativeConnection> {
  installRuntime();
  return await NativeConnection.connect({ address });
}

/**
 * Live V8 heap of an idle streaming worker after a full collection (SDK, AWS SDK, postgres.js,
 * the registry): 32 MB measured (`--trace-gc`), rounded up.
 */
export const IDLE_HEAP_MB = 35;

/**
 * Heap one running export takes in the worker, garbage of its batch included: the heaviest
 * measured is `occurrences_parquet` (its row groups are cut by rows only, so each holds
 * `EXPORT_BATCH_SIZE` rows: 5,000 rows are 13–15 MB live while a row group is built);
 * four at once left 85 of 99 MB live after full collections (docs/architecture.md, Worker roles
 * and memory).
 */
export const EXPORT_HEAP_MB = 20;

/**
 * Streaming slots (`exportRecords` activities at once) that a heap of `heapLimitMb` holds:
 * what is left above {@link IDLE_HEAP_MB}, {@link EXPORT_HEAP_MB} an export, at least 1 and at
 * most `max` (the configured slots). `deno task worker:streaming` (96 MB old space, 99 MB limit):
 * 3; an uncapped heap (~4 GB): `max`.
 */
export function activitySlotsFor(heapLimitMb: number, max = 4): number {
  return Math.max(1, Math.min(max, Math.floor((heapLimitMb - IDLE_HEAP_MB) / EXPORT_HEAP_MB)));
}

/** The V8 heap limit of this process in MB (`--max-old-space-size` and the young generation). */
export function heapLimitMb(): number {
  return Math.round(getHeapStatistics().heap_size_limit / 2 ** 20);
}

/** Slots of the admission queue per worker: a waiting export costs a timer and a poll a second. */
const ADMISSION_SLOTS = 1000;

/**
 * One export worker process: SDK workers on one connection, by role ({@link WorkerRole},
 * `WORKER_ROLE`):
 * - `all`: the export task queue runs the workflows and the streaming `exportRecords`
 *   activities (`maxConcurrentActivities` slots, default what the heap cap holds, at most 4:
 *   {@link activitySlotsFor}); its control queue
 *   ({@link controlTaskQueue}) runs the short control activities (resolve, count, finish, save,
 *   mark, delete, housekeeping; `maxConcurrentControlActivities` slots, default 20), so that a
 *   cancel or a delete never waits for a slot behind long exports; and the admission queue
 *   ({@link admissionTaskQueue}) where exports wait for a slot (`awaitAdmission`);
 * - `workflows`: the workflow tasks of the export queue (no activity registered there, so no
 *   activity poller and no eager activity), the control queue and the admission queue;
 * - `streaming`: the activities of the export queue only, without the workflow bundle (no
 *   workflow thread: a second V8 isolate of ~65 MB), so the process holds little besides the
 *   export it streams.
 *
 * The activity workers register every activity, so activities scheduled on the export queue by
 * workflows started before the control queue existed still run.
 */
export interface ExportWorker {
  /** Runs every SDK worker until {@link ExportWorker.shutdown} (or one fails: all stop). */
  run(): Promise<void>;
  /** Drains every SDK worker: running activities finish first. */
  shutdown(): void;
  /** Streaming slots of the export queue (`exportRecords` at once); 0 for `workflows`. */
  readonly activitySlots: number;
}

/** Builds the {@link ExportWorker} that runs the export workflows and activities with `deps`. */
export async function createExportWorker(
  deps: ActivityDependencies,
  options: {
    connection: NativeConnection;
    taskQueue?: string;
    /** Default: `deps.config.workerRole`. */
    role?: WorkerRole;
    maxConcurrentActivities?: number;
    maxConcurrentControlActivities?: number;
  },
): Promise<ExportWorker> {
  const taskQueue = options.taskQueue ?? deps.config.temporalTaskQueue;
  const role = options.role ?? deps.config.workerRole;
  const activities = {
    ...createActivities(deps),
    ...createScheduleActivities(deps),
    ...createWebhookActivities({
      ...deps,
      serializeExport: (row) => serializeExport(row, { ...deps, permissions: [] }),
    }),
  };
  const common = {
    connection: options.connection,
    namespace: deps.config.temporalNamespace,
    interceptors: { activity: [activityLogInterceptor] },
    // Heartbeats carry the export checkpoint. The SDK sends them at most every
    // min(0.8 × heartbeatTimeout, this); a short interval keeps the checkpoint Temporal holds
    // (what a retry after kill -9 resumes from) at most one batch behind.
    maxHeartbeatThrottleInterval: 250,
  };
  // the slots its heap holds: four parquet exports at once left 85 of 99 MB live
  const activitySlots = role === "workflows"
    ? 0
    : options.maxConcurrentActivities ?? activitySlotsFor(heapLimitMb());
  const workers: Worker[] = [];
  if (role === "all" || role === "workflows") {
    workers.push(
      await Worker.create({
        ...common,
        taskQueue,
        workflowBundle: await workflowBundle(),
        // a workflow cached on a worker that died waits this long before another takes it
        stickyQueueScheduleToStartTimeout: `${deps.config.stickyTimeoutSeconds}s`,
        ...(role === "all"
          ? {
            activities,
            maxConcurrentActivityTaskExecutions: activitySlots,
          }
          : {}),
      }),
    );
  } else {
    workers.push(
      await Worker.create({
        ...common,
        taskQueue,
        activities,
        maxConcurrentActivityTaskExecutions: activitySlots,
      }),
    );
  }
  if (role !== "streaming") {
    workers.push(
      await Worker.create({
        ...common,
        activities,
        taskQueue: controlTaskQueue(taskQueue),
        maxConcurrentActivityTaskExecutions: options.maxConcurrentControlActivities ?? 20,
      }),
    );
    // exports waiting for a slot (awaitAdmission): sleeping pollers, one slot each
    workers.push(
      await Worker.create({
        ...common,
        activities,
        taskQueue: admissionTaskQueue(taskQueue),
        maxConcurrentActivityTaskExecutions: ADMISSION_SLOTS,
      }),
    );
  }
  let stopping = false;
  let running = false;
  const stop = (worker: Worker): void => {
    const state = worker.getState();
    if (state === "RUNNING") worker.shutdown();
    // run() was called but this worker is not polling yet: stop it as soon as it is
    else if (state === "INITIALIZED" && running) setTimeout(() => stop(worker), 50);
  };
  const shutdown = () => {
    stopping = true;
    for (const worker of workers) stop(worker);
  };
  return {
    async run() {
      if (stopping) return;
      running = true;
      const outcomes = await Promise.allSettled(workers.map(async (worker) => {
        try {
          await worker.run();
        } finally {
          shutdown(); // one stopped (drained or failed): stop the other too
        }
      }));
      const failed = outcomes.find((o) => o.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
    },
    shutdown,
    activitySlots,
  };
}

/**
 * Runs a worker until SIGINT/SIGTERM, which stop it within seconds: the SDK cancels running
 * activities at shutdown (`shutdownGraceTime` 0), each attempt failing with its last checkpoint
 * for another worker to resume (docs/operations.md, "A worker died"). It starts and
 * keeps running while a dependency is down: Temporal is retried with backoff until it answers
 * (nothing to poll before), PostgreSQL and storage are checked in the background and logged
 * (activities retry on their own), and a worker that stops on an error is rebuilt.
 */
export async function runWorker(): Promise<void> {
  const config = loadConfig();
  setDecodeBudget(config.imageDecodeBudgetBytes);
  const sql = connectDatabase(config.databaseUrl);
  // EXPORT_DATABASE_URL: the exports' reads on a replica (docs/replica.md); else `sql` itself
  const readSql = connectExportReads(config, sql);
  const storage = createStorage(config);
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  watchDependencies({ sql, storage, config }, stop.signal);
  const connection = await retryForever(
    "Temporal",
    config.temporalAddress,
    () => connectWorker(config.temporalAddress),
    stop.signal,
  );
  if (!connection) {
    if (readSql !== sql) await readSql.end({ timeout: 5 });
    return await sql.end({ timeout: 5 });
  }
  const client = new Client({ connection, namespace: config.temporalNamespace });
  try {
    if (config.workerRole !== "streaming") {
      // the workflows' side: a streaming worker neither starts workflows nor needs their attributes
      await prepareNamespace(client, config);
    }
    for (let attempt = 1; !stop.signal.aborted; attempt++) {
      const worker = await createExportWorker({ sql, readSql, storage, config, temporal: client }, {
        connection,
      });
      // the SDK stops on SIGINT/SIGTERM; a signal that came while it was being built counts too
      const shutdown = () => stopWorker(worker);
      stop.signal.addEventListener("abort", shutdown);
      console.log(
        JSON.stringify({
          msg: "worker started",
          taskQueue: config.temporalTaskQueue,
          role: config.workerRole,
          // the V8 heap cap (`DENO_V8_FLAGS=--max-old-space-size=N`), ~4 GB when not set
          heapLimitMb: heapLimitMb(),
          // exports streamed at once: what that heap holds (activitySlotsFor), at most 4
          activitySlots: worker.activitySlots,
          pid: Deno.pid,
        }),
      );
      try {
        await worker.run();
        return;
      } catch (error) {
        if (stop.signal.aborted) return;
        const delayMs = backoffDelayMs(attempt);
        console.error(JSON.stringify({
          level: "error",
          msg: "worker stopped on an error; starting a new one",
          error: error instanceof Error ? error.message : String(error),
          retryInSeconds: delayMs / 1000,
        }));
        await new Promise((r) => setTimeout(r, delayMs));
      } finally {
        stop.signal.removeEventListener("abort", shutdown);
      }
    }
  } finally {
    await closeNativeConnection(connection);
    if (readSql !== sql) await readSql.end({ timeout: 5 });
    await sql.end({ timeout: 5 });
  }
}

/**
 * Asks `worker` to drain and stop. The SDK itself shuts a worker down on SIGINT/SIGTERM, so a
 * worker that is already stopping (or stopped) is left alone instead of throwing
 * ({@link ExportWorker.shutdown} only stops SDK workers that are RUNNING).
 */
export function stopWorker(worker: ExportWorker): void {
  worker.shutdown();
}

/**
 * What a worker that runs workflows sets up in its Temporal namespace at start (the demo too):
 * the export search attributes ({@link ensureSearchAttributesAtStart}) and the housekeeping
 * Schedule ({@link ensureHousekeeping}). Never throws: each one that fails is logged.
 */
export async function prepareNamespace(client: Client, config: Config): Promise<void> {
  await ensureSearchAttributesAtStart(client, config);
  await ensureHousekeeping(client, config);
}

/**
 * Creates the housekeeping Schedule unless `config.housekeepingIntervalMinutes` is 0
 * (`HOUSEKEEPING_INTERVAL_MINUTES`, default 60: how often it sweeps storage; a value that is not
 * a whole number of minutes is refused at start with the other settings). Exports do not depend
 * on it: when it cannot be created the worker runs without and says so
 * (`deno task cli housekeeping --install` later).
 */
async function ensureHousekeeping(client: Client, config: Config): Promise<void> {
  const everyMinutes = config.housekeepingIntervalMinutes;
  if (everyMinutes <= 0) return;
  try {
    const outcome = await ensureHousekeepingSchedule(client, {
      taskQueue: config.temporalTaskQueue,
      everyMinutes,
    });
    console.log(JSON.stringify({ msg: `housekeeping schedule ${outcome}`, everyMinutes }));
  } catch (error) {
    console.error(
      JSON.stringify({ msg: "could not create the housekeeping schedule", error: String(error) }),
    );
  }
}

/**
 * Registers the export search attributes if they are missing (`deno task cli temporal-setup`
 * does the same); a cluster that refuses (no admin rights) is logged, not fatal: run
 * temporal-setup with an operator's credentials, or export workflows fail their first task.
 */
async function ensureSearchAttributesAtStart(client: Client, config: Config): Promise<void> {
  try {
    const { added } = await ensureSearchAttributes(client, config.temporalNamespace);
    if (added.length > 0) {
      console.log(JSON.stringify({ msg: "search attributes added", added }));
    }
  } catch (error) {
    console.error(JSON.stringify({
      level: "error",
      msg: "could not register the export search attributes: run deno task cli temporal-setup",
      error: error instanceof Error ? error.message : String(error),
    }));
  }
}

if (import.meta.main) {
  await runWorker().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    Deno.exit(1);
  });
}
