/**
 * `WORKER_ROLE`: a `workflows` and a `streaming` worker process together run exports that are
 * byte-identical to a single `all` worker's; each polls only its own tasks; `/healthz` names
 * the missing half; a bad role stops the worker with a message.
 */
import { fileURLToPath } from "node:url";
import { seedDemo, type SeedResult } from "../db/seed_demo.ts";
import { controlTaskQueue } from "../workflows/task_queues.ts";
import { assert, assertEquals } from "./assert.ts";
import { expectedOccurrenceIds, type Harness, startHarness } from "./harness.ts";
import { serviceTest, sha256Hex } from "./support.ts";
import { startWorkerProcess, type WorkerProcess } from "./worker_process.ts";

const WORKER = fileURLToPath(new URL("../cli/worker.ts", import.meta.url));
/** Temporal API `TaskQueueType` values (temporal/api/enums/v1/task_queue.proto). */
const WORKFLOW_TASKS = 1;
const ACTIVITY_TASKS = 2;
const FORMATS = ["occurrences_simple_csv", "occurrences_api_json", "occurrences_ndjson"];

async function exportBytes(h: Harness, seed: SeedResult, format: string): Promise<{
  records: number;
  bytes: Uint8Array;
}> {
  const res = await h.api("POST", "/api/v2/exports/", {
    token: seed.token,
    body: { project: seed.project_id, format, filters: {}, force: true },
  });
  const created = await res.json();
  assertEquals(res.status, 201, JSON.stringify(created));
  const done = await h.waitForExport(created.id, seed.token, 120_000);
  assertEquals(done.status, "SUCCESS", JSON.stringify(done));
  return { records: Number(done.record_count), bytes: await h.download(done.file_url as string) };
}

/** Identities (`<pid>@<host>` by default) of the live pollers of one queue and task type. */
async function pollers(h: Harness, queue: string, type: number): Promise<string[]> {
  const described = await h.temporal.client.workflowService.describeTaskQueue({
    namespace: h.config.temporalNamespace,
    taskQueue: { name: queue },
    taskQueueType: type,
  });
  return (described.pollers ?? []).map((p) => p.identity ?? "");
}

function polledBy(identities: string[], worker: WorkerProcess): boolean {
  return identities.some((identity) => identity.startsWith(`${worker.pid}@`));
}

async function healthWorkers(h: Harness): Promise<string> {
  const body = await (await h.app.request("/healthz")).json();
  return body.checks.workers;
}

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

Deno.test({
  name: "WORKER_ROLE: a workflows process and a streaming process export what one worker does",
  ...serviceTest,
  async fn(t) {
    // no in-process worker: its pollers would answer for the roles under test
    const h = await startHarness({ storage: "s3", batchSize: 500, worker: false });
    const processes: WorkerProcess[] = [];
    try {
      const seed = await seedDemo(h.sql, { occurrences: 1500, seed: 15 });
      const expected = await expectedOccurrenceIds(h.sql, seed.project_id);
      const queue = h.config.temporalTaskQueue;

      const workflows = await startWorkerProcess({ ...h.env, WORKER_ROLE: "workflows" }, {
        name: "workflows",
      });
      processes.push(workflows);

      await t.step("with only a workflows worker, /healthz says no worker streams", async () => {
        await waitFor(
          "the workflows worker's pollers",
          async () =>
            polledBy(await pollers(h, queue, WORKFLOW_TASKS), workflows) &&
            polledBy(await pollers(h, controlTaskQueue(queue), ACTIVITY_TASKS), workflows),
        );
        assertEquals(
          await healthWorkers(h),
          `no worker polls task queue ${queue} for activity tasks ` +
            `(start one: deno task worker, or deno task worker:streaming)`,
        );
      });

      const streaming = await startWorkerProcess({ ...h.env, WORKER_ROLE: "streaming" }, {
        name: "streaming",
      });
      processes.push(streaming);

      const split = new Map<string, { records: number; bytes: Uint8Array }>();
      await t.step("exports complete with the two processes; /healthz is ok", async () => {
        for (const format of FORMATS) {
          const file = await exportBytes(h, seed, format);
          assertEquals(file.records, expected.length, format);
          assert(file.bytes.length > 0, format);
          split.set(format, file);
        }
        assertEquals(await healthWorkers(h), "ok");
      });

      await t.step("each process polls only its own tasks", async () => {
        // after the exports: both processes have long been polling everything they poll
        const workflowTasks = await pollers(h, queue, WORKFLOW_TASKS);
        const streamingTasks = await pollers(h, queue, ACTIVITY_TASKS);
        const controlTasks = await pollers(h, controlTaskQueue(queue), ACTIVITY_TASKS);
        assert(polledBy(workflowTasks, workflows), `workflow pollers: ${workflowTasks}`);
        assert(!polledBy(workflowTasks, streaming), `workflow pollers: ${workflowTasks}`);
        assert(polledBy(streamingTasks, streaming), `activity pollers: ${streamingTasks}`);
        assert(!polledBy(streamingTasks, workflows), `activity pollers: ${streamingTasks}`);
        assert(polledBy(controlTasks, workflows), `control pollers: ${controlTasks}`);
        assert(!polledBy(controlTasks, streaming), `control pollers: ${controlTasks}`);
        const logs = await Deno.readTextFile(
          `${
            fileURLToPath(new URL("../.data/test", import.meta.url))
          }/worker-${queue}-streaming.log`,
        );
        assert(logs.includes('"role":"streaming"'), logs);
      });

      await t.step("the files are byte-identical to a single all-role worker's", async () => {
        await Promise.all(processes.splice(0).map((p) => p.stop()));
        await h.startWorker(); // in-process, WORKER_ROLE unset: all
        for (const format of FORMATS) {
          const single = await exportBytes(h, seed, format);
          const file = split.get(format)!;
          assertEquals(single.records, file.records, format);
          assertEquals(await sha256Hex(single.bytes), await sha256Hex(file.bytes), format);
        }
      });
    } finally {
      await Promise.all(processes.map((p) => p.stop()));
      await h.close();
    }
  },
});

Deno.test("a worker with a bad WORKER_ROLE stops at once, naming the variable", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", WORKER],
    env: { WORKER_ROLE: "workflow" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 1);
  const stderr = new TextDecoder().decode(out.stderr);
  assert(
    stderr.includes(
      "WORKER_ROLE: must be one of all, workflows, streaming, activities (activities is streaming)",
    ),
    stderr,
  );
});
