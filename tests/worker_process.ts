/**
 * Runs `cli/worker.ts` as a separate OS process, so that fault tests can kill -9 it like a
 * crashed machine (an in-process worker can only be shut down gracefully).
 */
import { fileURLToPath } from "node:url";

const WORKER = fileURLToPath(new URL("../cli/worker.ts", import.meta.url));
const LOG_DIR = fileURLToPath(new URL("../.data/test", import.meta.url));

/** A service process (a worker, the API). */
export interface WorkerProcess {
  readonly pid: number;
  /** SIGKILL: the worker dies mid-activity, nothing is drained or reported. */
  kill(): Promise<void>;
  /** SIGTERM (running activities are cancelled with their checkpoint), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** True until the process has exited. */
  readonly running: boolean;
  /** Resolves with the exit status (code, signal) when the process ends. */
  readonly exited: Promise<Deno.CommandStatus>;
}

/**
 * Starts a worker with `env` (the harness's environment: database, Temporal address, task
 * queue, storage) and waits until it polls its task queue. Output goes to
 * `.data/test/worker-<queue>-<n>.log`.
 */
export async function startWorkerProcess(
  env: Record<string, string>,
  options: { name?: string; readyTimeoutMs?: number } = {},
): Promise<WorkerProcess> {
  await Deno.mkdir(LOG_DIR, { recursive: true });
  return await startServiceProcess({
    script: WORKER,
    env: { HOUSEKEEPING_INTERVAL_MINUTES: "0", ...env },
    readyMarker: '"worker started"',
    logPath: `${LOG_DIR}/worker-${env.TEMPORAL_TASK_QUEUE}-${options.name ?? Date.now()}.log`,
    readyTimeoutMs: options.readyTimeoutMs,
  });
}

/**
 * Starts `deno run -A <script>` with `env` and waits until its output contains `readyMarker`
 * (default timeout 90 s); stdout and stderr are appended to `logPath`. Throws, after killing
 * it, when the process exits or times out first.
 */
export async function startServiceProcess(options: {
  script: string;
  env: Record<string, string>;
  readyMarker: string;
  logPath: string;
  readyTimeoutMs?: number;
}): Promise<WorkerProcess> {
  const { logPath } = options;
  const log = await Deno.open(logPath, { create: true, append: true, write: true });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", options.script],
    env: { ...options.env, NO_COLOR: "1" },
    clearEnv: false,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  let ready!: () => void;
  const started = new Promise<void>((r) => ready = r);
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  const write = (text: string) => {
    try {
      log.writeSync(encoder.encode(text));
    } catch { /* closed */ }
  };
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      const text = decoder.decode(chunk);
      if (text.includes(options.readyMarker)) ready();
      write(text);
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]).catch(() => {});
  const timeoutMs = options.readyTimeoutMs ?? 90_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    started.then(() => "ready" as const),
    status.then(() => "exited" as const),
    new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), timeoutMs)),
  ]);
  clearTimeout(timer);
  const end = async (signal: Deno.Signal, graceMs: number) => {
    if (!exited) {
      try {
        child.kill(signal);
      } catch { /* gone */ }
      const force = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, graceMs);
      await status;
      clearTimeout(force);
    }
    await pumps;
    try {
      log.close();
    } catch { /* closed */ }
  };
  if (outcome !== "ready") {
    await end("SIGKILL", 0);
    throw new Error(`${options.script} did not start (${outcome}); see ${logPath}`);
  }
  return {
    pid: child.pid,
    kill: () => end("SIGKILL", 0),
    stop: (graceMs = 10_000) => end("SIGTERM", graceMs),
    get running() {
      return !exited;
    },
    exited: status,
  };
}
