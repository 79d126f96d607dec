/**
 * Issue 14: control activities never wait behind streaming ones. Four exports hold every
 * `exportRecords` slot of the worker (default 4) and are kept running by a test transaction
 * that locks `occurrences` (their next batch query waits on it, heartbeating); meanwhile a
 * cancel ends an export REVOKED and a delete removes one within 5 s each, for exports waiting
 * for a slot and for running ones. On one shared queue the cleanup activities would wait for a
 * slot as long as the four exports run (here: as long as the lock is held).
 */
import type { Sql } from "../db/client.ts";
import { seedDemo } from "../db/seed_demo.ts";
import { assert, assertEquals } from "./assert.ts";
import { startHarness } from "./harness.ts";
import { serviceTest } from "./support.ts";

/** The bound for a cancel to show REVOKED and a delete to be gone. */
const BOUND_MS = 5000;

Deno.test({
  name: "cancel and delete finish within 5 s while 4 long exports hold every streaming slot",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "fs", batchSize: 20 });
    let release: (() => void) | undefined;
    let locked: Promise<unknown> | undefined;
    try {
      const seed = await seedDemo(h.sql, { occurrences: 1500, seed: 14 });
      const token = seed.token;
      const ids: number[] = [];
      for (let i = 0; i < 6; i++) {
        const res = await h.api("POST", "/api/v2/exports/", {
          token,
          body: { project: seed.project_id, format: "occurrences_simple_csv", force: true },
        });
        assertEquals(res.status, 201, await res.clone().text());
        ids.push((await res.json()).id);
      }

      // wait until four exports stream (records exported > 0) and two wait for a slot (counted)
      let running: number[] = [];
      let waiting: number[] = [];
      for (let tries = 0;; tries++) {
        const progress = await exportProgress(h.sql, ids);
        running = ids.filter((id) => (progress.get(id)?.records ?? 0) > 0);
        waiting = ids.filter((id) =>
          !running.includes(id) && progress.get(id)?.total !== null &&
          progress.get(id)?.total !== undefined
        );
        if (running.length === 4 && waiting.length === 2) break;
        assert(
          tries < 600,
          `exports did not reach 4 running, 2 waiting: ${JSON.stringify([...progress])}`,
        );
        await new Promise((r) => setTimeout(r, 50));
      }
      // hold the four inside exportRecords: their next batch waits for this lock
      const held = new Promise<void>((r) => release = r);
      let lockTaken!: () => void;
      const taken = new Promise<void>((r) => lockTaken = r);
      locked = h.sql.begin(async (tx) => {
        await tx`lock table occurrences in access exclusive mode`;
        lockTaken();
        await held;
      });
      await taken;
      const progress = await exportProgress(h.sql, running);
      for (const id of running) {
        assertEquals(progress.get(id)?.status, "STARTED", `export ${id} still streams`);
      }

      const [cancelWaiting, deleteWaiting] = waiting;
      const [cancelRunning, deleteRunning, ...stillRunning] = running;
      for (const id of [cancelWaiting, cancelRunning]) {
        const started = performance.now();
        const res = await h.api("POST", `/api/v2/exports/${id}/cancel/`, { token });
        assert(res.status < 300, `cancel ${id}: ${res.status} ${await res.text()}`);
        const status = await untilStatus(h.sql, id, "REVOKED", started + BOUND_MS);
        assertEquals(status, "REVOKED", `export ${id} REVOKED within ${BOUND_MS} ms`);
      }
      for (const id of [deleteWaiting, deleteRunning]) {
        const started = performance.now();
        const res = await h.api("DELETE", `/api/v2/exports/${id}/`, { token });
        assert(res.status < 300, `delete ${id}: ${res.status} ${await res.text()}`);
        const status = await untilStatus(h.sql, id, "gone", started + BOUND_MS);
        assertEquals(status, "gone", `export ${id} deleted within ${BOUND_MS} ms`);
        assertEquals(
          (await h.api("GET", `/api/v2/exports/${id}/`, { token })).status,
          404,
        );
      }
      // the other two streamed on all the while and finish once the lock goes
      const stillStreaming = await exportProgress(h.sql, stillRunning);
      for (const id of stillRunning) assertEquals(stillStreaming.get(id)?.status, "STARTED");
      release!();
      await locked;
      for (const id of stillRunning) {
        assertEquals((await h.waitForExport(id, token, 120_000)).status, "SUCCESS");
      }
    } finally {
      release?.();
      await locked?.catch(() => {});
      await h.close();
    }
  },
});

/** Status, records exported and total per export, from the database. */
async function exportProgress(
  sql: Sql,
  ids: number[],
): Promise<Map<number, { status: string; records: number | null; total: number | null }>> {
  const rows = await sql<{ id: number; status: string; stages: unknown }[]>`
    select e.id, e.status, j.progress -> 'stages' as stages
    from data_exports e join jobs j on j.data_export_id = e.id
    where e.id in ${sql(ids)}`;
  const out = new Map<number, { status: string; records: number | null; total: number | null }>();
  for (const row of rows) {
    const stages = row.stages as { key: string; params: { key: string; value: unknown }[] }[];
    const params = stages.find((s) => s.key === "data_export")?.params ?? [];
    const value = (key: string) => {
      const v = params.find((p) => p.key === key)?.value;
      return typeof v === "number" ? v : null;
    };
    out.set(row.id, {
      status: row.status,
      records: value("records_exported"),
      total: value("total_records"),
    });
  }
  return out;
}

/** Polls export `id` until it has `want` ("gone": no row) or `deadline` passes; the last seen. */
async function untilStatus(
  sql: Sql,
  id: number,
  want: string,
  deadline: number,
): Promise<string> {
  let seen = "";
  do {
    const [row] = await sql<{ status: string }[]>`select status from data_exports where id = ${id}`;
    seen = row?.status ?? "gone";
    if (seen === want) return seen;
    await new Promise((r) => setTimeout(r, 50));
  } while (performance.now() < deadline);
  return seen;
}
