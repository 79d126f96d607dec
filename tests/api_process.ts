/** Runs the HTTP API (`cli/api.ts`) as a separate OS process, as an operator would. */
import { fileURLToPath } from "node:url";

const API = fileURLToPath(new URL("../cli/api.ts", import.meta.url));

/** The API as its own OS process (`cli/api.ts`). */
export interface ApiProcess {
  base: string;
  exited: Promise<Deno.CommandStatus>;
  stop(): Promise<void>;
}

/**
 * Starts `cli/api.ts` with `env` (which must hold `PORT`) and waits until it listens; its output
 * goes to `logPath`. `exited` resolves when the process ends; `stop` sends SIGTERM (then KILL).
 */
export async function startApiProcess(
  env: Record<string, string>,
  logPath: string,
): Promise<ApiProcess> {
  const log = await Deno.open(logPath, { create: true, append: true, write: true });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", API],
    env: { ...env, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let ended = false;
  const exited = child.status.then((s) => {
    ended = true;
    return s;
  });
  let ready!: () => void;
  const listening = new Promise<void>((r) => ready = r);
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      if (decoder.decode(chunk).includes('"api listening"')) ready();
      try {
        log.writeSync(chunk);
      } catch { /* closed */ }
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]).catch(() => {});
  const outcome = await Promise.race([
    listening.then(() => "ready"),
    exited.then(() => "exited"),
    sleep(60_000).then(() => "timeout"),
  ]);
  const stop = async () => {
    if (!ended) {
      child.kill("SIGTERM");
      const force = setTimeout(() => !ended && child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(force);
    }
    await pumps;
    try {
      log.close();
    } catch { /* closed */ }
  };
  if (outcome !== "ready") {
    await stop();
    throw new Error(`the API process did not start (${outcome}); see ${logPath}`);
  }
  return { base: `http://127.0.0.1:${env.PORT}`, exited, stop };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
