/**
 * `deno task worker`: a Temporal worker on the export task queue. Scale out by starting more of
 * these, on any machine that reaches Temporal, Postgres and storage.
 */
import {
  DefaultLogger,
  type LogLevel,
  NativeConnection,
  Runtime,
  Worker,
} from "@temporalio/worker";
import { fileURLToPath } from "node:url";
import { type ActivityDependencies, createActivities } from "../activities/mod.ts";
import { activityLogInterceptor } from "../activities/log_interceptor.ts";
import { createScheduleActivities } from "../activities/schedules.ts";
import { loadConfig } from "../config/mod.ts";
import { connectDatabase } from "../db/client.ts";
import { createStorage } from "../storage/mod.ts";
import { ensureHousekeepingSchedule } from "./housekeeping.ts";
import { connectTemporal } from "./temporal.ts";

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

let runtimeInstalled = false;

/**
 * Connects to Temporal for a worker. The first call installs the SDK runtime with a logger at
 * `TEMPORAL_LOG_LEVEL` (default WARN), so the workflow bundler and worker state changes do not
 * flood the output.
 */
export async function connectWorker(address: string): Promise<NativeConnection> {
  if (!runtimeInstalled) {
    runtimeInstalled = true;
    const level = (Deno.env.get("TEMPORAL_LOG_LEVEL") ?? "WARN").toUpperCase() as LogLevel;
    try {
      Runtime.install({ logger: new DefaultLogger(level) });
    } catch {
      // a runtime was installed already (e.g. by another module): keep it
    }
  }
  return await NativeConnection.connect({ address });
}

/** Builds a worker that runs the export workflows and activities with `deps`. */
export async function createExportWorker(
  deps: ActivityDependencies,
  options: { connection: NativeConnection; taskQueue?: string; maxConcurrentActivities?: number },
): Promise<Worker> {
  return await Worker.create({
    connection: options.connection,
    namespace: deps.config.temporalNamespace,
    taskQueue: options.taskQueue ?? deps.config.temporalTaskQueue,
    workflowBundle: await workflowBundle(),
    activities: { ...createActivities(deps), ...createScheduleActivities(deps) },
    interceptors: { activity: [activityLogInterceptor] },
    maxConcurrentActivityTaskExecutions: options.maxConcurrentActivities ?? 4,
    // Heartbeats carry the export checkpoint. The SDK sends them at most every
    // min(0.8 × heartbeatTimeout, this); a short interval keeps the checkpoint Temporal holds
    // (what a retry after kill -9 resumes from) at most one batch behind.
    maxHeartbeatThrottleInterval: 250,
  });
}

/** Runs a worker until SIGINT/SIGTERM (which drain running activities first). */
export async function runWorker(): Promise<void> {
  const config = loadConfig();
  const sql = connectDatabase(config.databaseUrl);
  const storage = createStorage(config);
  await storage.ensureReady();
  const temporal = await connectTemporal(config);
  const connection = await connectWorker(config.temporalAddress);
  const worker = await createExportWorker({ sql, storage, config, temporal: temporal.client }, {
    connection,
  });
  // HOUSEKEEPING_INTERVAL_MINUTES: how often the housekeeping Schedule sweeps storage (default
  // 60; 0 = do not create the schedule from this worker).
  const everyMinutes = Number(Deno.env.get("HOUSEKEEPING_INTERVAL_MINUTES") ?? "60");
  if (everyMinutes > 0) {
    try {
      const outcome = await ensureHousekeepingSchedule(temporal.client, {
        taskQueue: config.temporalTaskQueue,
        everyMinutes,
      });
      console.log(JSON.stringify({ msg: `housekeeping schedule ${outcome}`, everyMinutes }));
    } catch (error) {
      // Exports do not depend on it: run without, say so (`deno task cli housekeeping --install`).
      console.error(
        JSON.stringify({ msg: "could not create the housekeeping schedule", error: String(error) }),
      );
    }
  }
  console.log(
    JSON.stringify({ msg: "worker started", taskQueue: config.temporalTaskQueue, pid: Deno.pid }),
  );
  try {
    await worker.run();
  } finally {
    await connection.close();
    await temporal.close();
    await sql.end({ timeout: 5 });
  }
}

if (import.meta.main) {
  await runWorker().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    Deno.exit(1);
  });
}
