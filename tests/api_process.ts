/** Runs the HTTP API (`cli/api.ts`) as a separate OS process, as an operator would. */
import { fileURLToPath } from "node:url";
import { startServiceProcess, type WorkerProcess } from "./worker_process.ts";

const API = fileURLToPath(new URL("../cli/api.ts", import.meta.url));

/** The API as its own OS process; `base` is its URL. */
export interface ApiProcess extends WorkerProcess {
  base: string;
}

/**
 * Starts `cli/api.ts` with `env` (which must hold `PORT`) and waits until it listens; its output
 * goes to `logPath`. `exited` resolves when the process ends; `stop` sends SIGTERM (then KILL).
 */
export async function startApiProcess(
  env: Record<string, string>,
  logPath: string,
): Promise<ApiProcess> {
  const service = await startServiceProcess({
    script: API,
    env,
    readyMarker: '"api listening"',
    logPath,
    readyTimeoutMs: 60_000,
  });
  return Object.assign(service, { base: `http://127.0.0.1:${env.PORT}` });
}
