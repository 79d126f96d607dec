/**
 * A worker (`cli/worker.ts`) as a separate process, so that its memory can be read from
 * `/proc/<pid>/status`: the peak resident set (VmHWM) can be reset between exports by writing
 * `5` to `/proc/<pid>/clear_refs`.
 */
import { fileURLToPath } from "node:url";

const WORKER = fileURLToPath(new URL("../cli/worker.ts", import.meta.url));

/** A running worker process. */
export interface WorkerProcess {
  pid: number;
  /** Rejects when the process exits (a crash mid-export must not leave the bench polling). */
  exited: Promise<never>;
  /** Resets the peak RSS to the current RSS (false if the kernel refused). */
  resetPeak(): Promise<boolean>;
  /** Peak resident set size in bytes since start or the last reset. */
  peakRss(): Promise<number>;
  /** Current resident set size in bytes. */
  rss(): Promise<number>;
  stop(): Promise<void>;
}

async function statusField(pid: number, field: string): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/**
 * Starts `deno run -A [--v8-flags=…] cli/worker.ts` with `env` (its `WORKER_ROLE` says what it
 * polls) and waits for its "worker started" line.
 */
export async function startWorkerProcess(
  env: Record<string, string>,
  options: { logFile: string; v8Flags?: string },
): Promise<WorkerProcess> {
  const v8Flags = options.v8Flags ? [`--v8-flags=${options.v8Flags}`] : [];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...v8Flags, WORKER],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const log = await Deno.open(options.logFile, { create: true, append: true, write: true });
  const encoder = new TextEncoder();
  const { promise: ready, resolve: started } = Promise.withResolvers<void>();
  const pumpOut = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stdout) {
      await log.write(chunk);
      if (decoder.decode(chunk, { stream: true }).includes("worker started")) started();
    }
  })();
  const pumpErr = child.stderr.pipeTo(
    new WritableStream({ write: async (chunk) => void await log.write(chunk) }),
  ).catch(() => {});
  const exited = child.status;
  const failed = exited.then((s) => {
    throw new Error(`worker exited with code ${s.code} before it started: see ${options.logFile}`);
  });
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error("worker did not start within 120 s")), 120_000)
  );
  await Promise.race([ready, failed, timeout]);
  failed.catch(() => {});
  await log.write(encoder.encode(""));
  let stopping = false;
  const died = exited.then((s): never => {
    throw new Error(
      `worker process ${child.pid} exited (code ${s.code}, signal ${s.signal})` +
        (stopping ? "" : `: see ${options.logFile} and dmesg`),
    );
  });
  died.catch(() => {});
  return {
    pid: child.pid,
    exited: died,
    async resetPeak(): Promise<boolean> {
      try {
        await Deno.writeTextFile(`/proc/${child.pid}/clear_refs`, "5");
        return true;
      } catch {
        return false;
      }
    },
    peakRss: (): Promise<number> => statusField(child.pid, "VmHWM"),
    rss: (): Promise<number> => statusField(child.pid, "VmRSS"),
    async stop(): Promise<void> {
      stopping = true;
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 10_000);
      await exited;
      clearTimeout(timer);
      await Promise.all([pumpOut.catch(() => {}), pumpErr]);
      log.close();
    },
  };
}
