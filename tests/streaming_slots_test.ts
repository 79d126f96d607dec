/**
 * The streaming slots follow the heap cap: a `deno task worker:streaming` process, and the
 * default worker of `deno task worker` (both 96 MB old space, 99 MB heap limit), streams at most
 * 3 exports at once (`activitySlotsFor`), says so in its "worker started" line, and 4 heavy
 * exports posted at once all succeed (the fourth waits for a slot). Four at once filled that heap to 85 MB live after full collections
 * (docs/architecture.md, Worker roles and memory).
 */
import { fileURLToPath } from "node:url";
import { seedDemo } from "../db/seed_demo.ts";
import { activitySlotsFor, IDLE_HEAP_MB } from "../cli/worker.ts";
import { ALL_V8_FLAGS, STREAMING_V8_FLAGS, WORKER_MALLOC_ENV } from "../cli/worker_flags.ts";
import { assert, assertEquals } from "./assert.ts";
import { startHarness } from "./harness.ts";
import { serviceTest } from "./support.ts";
import { startWorkerProcess, type WorkerProcess } from "./worker_process.ts";

const LOG_DIR = fileURLToPath(new URL("../.data/test", import.meta.url));

Deno.test("activitySlotsFor: what the heap holds above the idle worker, 1 to the configured", () => {
  assertEquals(activitySlotsFor(99), 3); // worker:streaming (--max-old-space-size=96)
  assertEquals(activitySlotsFor(4144), 4); // no cap
  assertEquals(activitySlotsFor(4144, 8), 8);
  assertEquals(activitySlotsFor(IDLE_HEAP_MB + 20), 1);
  assertEquals(activitySlotsFor(40), 1); // never 0: a worker that polls nothing is useless
});

/** The intervals [started, completed] of each export's exportRecords activity in a worker log. */
function activityIntervals(log: string): Map<number, { start?: number; end?: number }> {
  const spans = new Map<number, { start?: number; end?: number }>();
  for (const line of log.split("\n")) {
    if (!line.startsWith("{") || !line.includes('"stage":"exportRecords"')) continue;
    const entry = JSON.parse(line);
    const span = spans.get(entry.export_id) ?? {};
    if (entry.msg === "activity started") span.start ??= Date.parse(entry.time);
    if (entry.msg === "activity completed") span.end = Date.parse(entry.time);
    spans.set(entry.export_id, span);
  }
  return spans;
}

/**
 * Starts the role's worker exactly as its deno task does (`worker:streaming` beside a
 * `workflows` worker, or `worker` alone: `DENO_V8_FLAGS` passes the same flags), posts 4
 * parquet exports at once, and checks that all succeed with never more than 3 streaming at once.
 */
async function fourExportsUnderHeapCap(role: "streaming" | "all", v8Flags: string): Promise<void> {
  const h = await startHarness({ storage: "s3", batchSize: 200, worker: false });
  const processes: WorkerProcess[] = [];
  try {
    const seed = await seedDemo(h.sql, { occurrences: 2000, seed: 22 });
    if (role === "streaming") {
      processes.push(
        await startWorkerProcess({ ...h.env, WORKER_ROLE: "workflows" }, { name: "workflows" }),
      );
    }
    const name = `slots-${role}`;
    processes.push(
      await startWorkerProcess({
        ...h.env,
        ...WORKER_MALLOC_ENV,
        DENO_V8_FLAGS: v8Flags,
        WORKER_ROLE: role,
      }, { name }),
    );

    const created = await Promise.all([0, 1, 2, 3].map(async () => {
      const res = await h.api("POST", "/api/v2/exports/", {
        token: seed.token,
        body: {
          project: seed.project_id,
          format: "occurrences_parquet",
          filters: {},
          force: true,
        },
      });
      const body = await res.json();
      assertEquals(res.status, 201, JSON.stringify(body));
      return body.id as number;
    }));
    const done = await Promise.all(
      created.map((id) => h.waitForExport(id, seed.token, 120_000)),
    );
    for (const d of done) assertEquals(d.status, "SUCCESS", JSON.stringify(d));
    assertEquals(new Set(done.map((d) => d.checksum)).size, 1);

    const log = await Deno.readTextFile(
      `${LOG_DIR}/worker-${h.config.temporalTaskQueue}-${name}.log`,
    );
    const started = log.split("\n").find((l) => l.includes('"msg":"worker started"'))!;
    assertEquals(JSON.parse(started).heapLimitMb, 99, started);
    assertEquals(JSON.parse(started).activitySlots, 3, started);
    // never more than 3 exportRecords at once in the process
    const spans = [...activityIntervals(log).values()];
    assertEquals(spans.length, 4, log);
    for (const s of spans) assert(s.start !== undefined && s.end !== undefined, log);
    const events = spans.flatMap((s) => [[s.start!, 1], [s.end!, -1]]).sort((a, b) =>
      a[0] - b[0] || a[1] - b[1]
    );
    let running = 0;
    let most = 0;
    for (const [, delta] of events) most = Math.max(most, running += delta);
    assert(most <= 3, `${most} at once: ${JSON.stringify(spans)}`);
    // no process died on its own (a heap cap too small for the role ends in a V8 OOM)
    for (const p of processes) assert(p.running, `a ${role} test worker exited`);
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
    await h.close();
  }
}

Deno.test({
  name: "worker:streaming under its heap cap: 3 slots, 4 parquet exports at once all succeed",
  ...serviceTest,
  fn: () => fourExportsUnderHeapCap("streaming", STREAMING_V8_FLAGS),
});

Deno.test({
  name:
    "deno task worker (role all) under its heap cap: 3 slots, 4 parquet exports at once all succeed",
  ...serviceTest,
  fn: () => fourExportsUnderHeapCap("all", ALL_V8_FLAGS),
});
