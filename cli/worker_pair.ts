/**
 * `deno task worker`: the export worker as it should run, its two halves in two processes.
 *
 * One `cli/worker.ts` process of role `workflows` (workflow tasks and control activities) and
 * one of role `streaming` (the exports' streaming activities), each started with its V8 flags
 * and the malloc settings of `cli/worker_flags.ts` — the layout whose every process stays under
 * 200 MB (docs/architecture.md, "Worker roles and memory"); a single `WORKER_ROLE=all` process
 * holds both isolates and the export's buffers, and peaks far higher. With `WORKER_ROLE` set,
 * only that role is started (its flags: the streaming ones for `streaming`/`activities`, the
 * workflow ones otherwise).
 *
 * The processes are stopped together: SIGINT or SIGTERM is passed on as SIGTERM (each drains its
 * running activities) and the exit code is 0 when all stopped cleanly. A process that exits on
 * its own is a defect, never restarted here: the other is stopped, an error line names the role
 * and exit code, and this process exits with code 1, for the service manager to see. Each child
 * holds a pipe from this process on its stdin (`WORKER_PARENT_PIPE=1`) and stops when it closes,
 * so that no worker outlives this process, even when it is killed with SIGKILL.
 */
import { fileURLToPath } from "node:url";
import { SPLIT_WORKER_MALLOC_ENV, STREAMING_V8_FLAGS, WORKFLOWS_V8_FLAGS } from "./worker_flags.ts";

const WORKER = fileURLToPath(new URL("./worker.ts", import.meta.url));

/** One worker process to start: its role and V8 flags. */
export interface WorkerProcessPlan {
  role: string;
  v8Flags: string;
}

/**
 * The processes `deno task worker` starts for `role` (the `WORKER_ROLE` environment variable,
 * `undefined` when not set): both halves when not set, else that one role.
 */
export function workerProcessPlan(role: string | undefined): WorkerProcessPlan[] {
  const flagsOf = (r: string) =>
    r === "streaming" || r === "activities" ? STREAMING_V8_FLAGS : WORKFLOWS_V8_FLAGS;
  const roles = role === undefined || role === "" ? ["workflows", "streaming"] : [role];
  return roles.map((r) => ({ role: r, v8Flags: flagsOf(r) }));
}

/** Starts the planned processes and supervises them; resolves with this process's exit code. */
export async function runWorkerProcesses(plan: WorkerProcessPlan[]): Promise<number> {
  let stopping = false;
  const children = plan.map(({ role, v8Flags }) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `--v8-flags=${v8Flags}`, WORKER],
      env: { ...SPLIT_WORKER_MALLOC_ENV, WORKER_ROLE: role, WORKER_PARENT_PIPE: "1" },
      stdin: "piped",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    return { role, child };
  });
  const stopAll = () => {
    stopping = true;
    for (const { child } of children) {
      try {
        child.kill("SIGTERM");
      } catch {
        // already exited
      }
    }
  };
  Deno.addSignalListener("SIGINT", stopAll);
  Deno.addSignalListener("SIGTERM", stopAll);
  let failed = false;
  await Promise.all(children.map(async ({ role, child }) => {
    const status = await child.status;
    if (stopping && status.success) return;
    if (!stopping || !status.success) {
      failed = true;
      console.error(JSON.stringify({
        level: "error",
        msg: stopping
          ? "worker process did not stop cleanly"
          : "worker process exited on its own; stopping the others",
        role,
        pid: child.pid,
        code: status.code,
        signal: status.signal,
      }));
    }
    if (!stopping) stopAll();
  }));
  Deno.removeSignalListener("SIGINT", stopAll);
  Deno.removeSignalListener("SIGTERM", stopAll);
  return failed ? 1 : 0;
}

if (import.meta.main) {
  Deno.exit(await runWorkerProcesses(workerProcessPlan(Deno.env.get("WORKER_ROLE"))));
}
