/**
 * `deno task worker` (cli/worker_pair.ts) against the real Temporal dev server, PostgreSQL and
 * moto: it starts a `workflows` and a `streaming` process with their V8 flags, an export runs
 * through them, and they stop together — on SIGTERM (exit 0), when one of them is killed
 * (the other stopped, exit 1, an error line naming the role) and when the parent itself is
 * killed with SIGKILL (both children stop: no worker outlives it).
 */
import { parse } from "csv-parse/sync";
import { fileURLToPath } from "node:url";
import { workerProcessPlan } from "../cli/worker_pair.ts";
import { STREAMING_V8_FLAGS, WORKFLOWS_V8_FLAGS } from "../cli/worker_flags.ts";
import { seedDemo } from "../db/seed_demo.ts";
import { assert, assertEquals } from "./assert.ts";
import { expectedOccurrenceIds, type Harness, startHarness } from "./harness.ts";
import { serviceTest } from "./support.ts";

const PAIR = fileURLToPath(new URL("../cli/worker_pair.ts", import.meta.url));

Deno.test("workerProcessPlan: both halves by default, else the one role with its flags", () => {
  assertEquals(workerProcessPlan(undefined), [
    { role: "workflows", v8Flags: WORKFLOWS_V8_FLAGS },
    { role: "streaming", v8Flags: STREAMING_V8_FLAGS },
  ]);
  assertEquals(workerProcessPlan(""), workerProcessPlan(undefined));
  assertEquals(workerProcessPlan("streaming"), [{
    role: "streaming",
    v8Flags: STREAMING_V8_FLAGS,
  }]);
  assertEquals(workerProcessPlan("activities"), [
    { role: "activities", v8Flags: STREAMING_V8_FLAGS },
  ]);
  assertEquals(workerProcessPlan("all"), [{ role: "all", v8Flags: WORKFLOWS_V8_FLAGS }]);
});

Deno.test("deno task worker runs cli/worker_pair.ts", async () => {
  const { tasks } = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  ) as { tasks: Record<string, string> };
  assertEquals(tasks.worker, "deno run -A cli/worker_pair.ts");
});

/** A running `cli/worker_pair.ts` and what it printed. */
interface Pair {
  process: Deno.ChildProcess;
  output(): string;
  /** The pids of the `worker started` lines, by role. */
  started(): Record<string, number>;
}

async function startPair(h: Harness): Promise<Pair> {
  const process = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", PAIR],
    env: { ...h.env, HOUSEKEEPING_INTERVAL_MINUTES: "0", NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  for (const stream of [process.stdout, process.stderr]) {
    (async () => {
      for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
    })();
  }
  const started = () => {
    const pids: Record<string, number> = {};
    for (const line of text.split("\n")) {
      if (!line.includes('"worker started"')) continue;
      const { role, pid } = JSON.parse(line);
      pids[role] = pid;
    }
    return pids;
  };
  const deadline = Date.now() + 90_000;
  while (Object.keys(started()).length < 2) {
    if (Date.now() > deadline) {
      process.kill("SIGKILL");
      throw new Error(`the pair did not start in 90 s:\n${text}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { process, output: () => text, started };
}

function alive(pid: number): boolean {
  try {
    return !Deno.readTextFileSync(`/proc/${pid}/status`).includes("State:\tZ");
  } catch {
    return false;
  }
}

async function waitGone(pids: number[], what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (pids.some(alive)) {
    assert(Date.now() < deadline, `${what}: still running after 60 s: ${pids.filter(alive)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

Deno.test({
  name: "deno task worker: two processes export together and stop together",
  ...serviceTest,
  async fn(t) {
    const h = await startHarness({ storage: "s3", worker: false });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 300, seed: 5 });

      await t.step("both roles start, with their flags, and an export succeeds", async () => {
        const pair = await startPair(h);
        const pids = pair.started();
        const flags = (pid: number) => Deno.readTextFileSync(`/proc/${pid}/cmdline`);
        assert(flags(pids.streaming).includes(STREAMING_V8_FLAGS), flags(pids.streaming));
        assert(flags(pids.workflows).includes(WORKFLOWS_V8_FLAGS), flags(pids.workflows));
        const created = await h.api("POST", "/api/v2/exports/", {
          token: seed.token,
          body: { project: seed.project_id, format: "occurrences_simple_csv" },
        });
        assertEquals(created.status, 201, await created.clone().text());
        const done = await h.waitForExport((await created.json()).id, seed.token, 120_000);
        assertEquals(done.status, "SUCCESS", JSON.stringify(done.error));
        const rows = parse(new TextDecoder().decode(await h.download(done.file_url as string)), {
          columns: true,
        }) as { id: string }[];
        assertEquals(
          rows.map((r) => Number(r.id)),
          await expectedOccurrenceIds(h.sql, seed.project_id),
        );

        pair.process.kill("SIGTERM");
        assertEquals((await pair.process.status).code, 0, pair.output());
        await waitGone(Object.values(pids), "after SIGTERM");
      });

      await t.step("one process killed: the other is stopped, exit 1, the role named", async () => {
        const pair = await startPair(h);
        const pids = pair.started();
        Deno.kill(pids.streaming, "SIGKILL");
        const status = await pair.process.status;
        assertEquals(status.code, 1, pair.output());
        assert(
          pair.output().includes('"msg":"worker process exited on its own; stopping the others"') &&
            pair.output().includes('"role":"streaming"'),
          pair.output(),
        );
        await waitGone([pids.workflows], "the workflows process after the streaming one died");
      });

      await t.step("the parent killed with SIGKILL: both children stop", async () => {
        const pair = await startPair(h);
        const pids = pair.started();
        pair.process.kill("SIGKILL");
        await pair.process.status;
        await waitGone(Object.values(pids), "children of a killed parent");
        assert(
          pair.output().includes("parent process gone (stdin closed); stopping"),
          pair.output(),
        );
      });
    } finally {
      await h.close();
    }
  },
});
