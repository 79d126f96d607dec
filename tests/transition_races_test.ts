/**
 * A cancel that races the end of an export (docs/operations.md, "Cancel"), against the real
 * services: a cancel while `saveStats` commits never leaves a SUCCESS export without its file,
 * and the API's cancel of an export whose run is gone never overwrites the FAILURE that run
 * wrote meanwhile. Each race is forced by holding a row lock until the transition in question
 * waits on it (tests/lock_holder.ts). A run that finds its export already
 * REVOKED (the API's cancel found no open run as the run was starting) completes as the row
 * reads, `revoked: true`, instead of failing. A retry whose workflow start fails ends the export
 * FAILURE, saying so, and answers 503 (before, the export stayed PENDING with no run).
 */
import { Client } from "@temporalio/client";
import { createApp } from "../api/mod.ts";
import { jobLogs, markExportEnded } from "../db/exports.ts";
import { seedDemo } from "../db/seed_demo.ts";
import { assert, assertEquals } from "./assert.ts";
import { type Harness, startHarness, workflowIdsOf } from "./harness.ts";
import { holdLockUntilBlocked } from "./lock_holder.ts";
import { serviceTest } from "./support.ts";

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

async function createExport(h: Harness, token: string, project: number): Promise<number> {
  const res = await h.api("POST", "/api/v2/exports/", {
    token,
    body: { project, format: "occurrences_simple_csv", force: true },
  });
  const body = await res.json();
  assertEquals(res.status, 201, JSON.stringify(body));
  return body.id;
}

/**
 * Holds the export's job row until saveStats's transaction (it has locked and updated the export
 * row, not committed) waits on it, letting other writers of the job (progress) pass; then
 * cancels through the API and waits (bounded) for the cancel's cleanup. Returns the export's
 * file key, or null when the export ended without its SUCCESS having been caught waiting.
 */
async function cancelWhileSuccessWaits(
  h: Harness,
  id: number,
  token: string,
): Promise<string | null> {
  return await holdLockUntilBlocked(h.sql, {
    lock: (locker) => locker`select 1 from jobs where data_export_id = ${id} for update`,
    label: `the job row of export ${id}`,
    waiter: { applicationName: "ami-exports transition SUCCESS" },
    letOthersPass: true,
    async ended() {
      const [{ status }] = await h.sql<{ status: string }[]>`
        select status from data_exports where id = ${id}`;
      return !["PENDING", "STARTED"].includes(status); // ended between two polls: missed
    },
    async action() {
      const [row] = await h.sql<{ file_key: string }[]>`
        select file_key from data_exports where id = ${id}`;
      assert(row.file_key, "saveStats runs for an export without a file_key");
      assert(await h.storage.headObject(row.file_key), "the file is there before the cancel");
      const cancel = await h.api("POST", `/api/v2/exports/${id}/cancel/`, { token });
      assertEquals(cancel.status, 202);
      // the race: the cancel's cleanup removes the file while SUCCESS is not committed
      // (fixed, the cleanup waits for saveStats: bounded)
      const until = Date.now() + 10_000;
      while (Date.now() < until && await h.storage.headObject(row.file_key)) await sleep(50);
      return row.file_key;
    },
    timeoutMs: 120_000,
    pollMs: 10,
  });
}

Deno.test({
  name: "a cancel while saveStats commits: SUCCESS with its file, or REVOKED without one",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "fs", batchSize: 500 });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 200, seed: 2401 });
      // The window is caught by polling, which a busy machine may miss (saveStats commits
      // between two polls): the export then ends SUCCESS uncaught and another is made, at most
      // three; a miss is never taken for a result.
      let caught: { id: number; fileKey: string } | null = null;
      for (let attempt = 1; caught === null; attempt++) {
        assert(attempt <= 3, "saveStats's transaction was never caught waiting in 3 exports");
        const id = await createExport(h, seed.token, seed.project_id);
        const fileKey = await cancelWhileSuccessWaits(h, id, seed.token);
        if (fileKey !== null) caught = { id, fileKey };
        else await h.waitForExport(id, seed.token);
      }
      const { id, fileKey } = caught;
      const handle = h.temporal.client.workflow.getHandle((await workflowIdsOf(h.sql, id)).export);
      await handle.result().catch(() => {}); // completed, or cancelled
      const done = await h.waitForExport(id, seed.token);
      const [row] = await h.sql<{ status: string; file_key: string | null }[]>`
        select status, file_key from data_exports where id = ${id}`;
      const present = await h.storage.headObject(fileKey);
      const logs = (await jobLogs(h.sql, id)).map((l) => l.message);
      const finished = logs.some((m) => m.startsWith("export finished"));
      const cancelled = logs.includes("export cancelled");
      if (row.status === "SUCCESS") {
        assertEquals(row.file_key, fileKey);
        assert(present, `export ${id} is SUCCESS but its file ${fileKey} is gone`);
        assert(done.file_url, "a SUCCESS export without a file_url");
        assert(!cancelled, `a SUCCESS export logged its cancel: ${logs.join("; ")}`);
      } else {
        assertEquals(row.status, "REVOKED");
        assertEquals([row.file_key, done.file_url, present], [null, null, null]);
        assert(!finished, `a REVOKED export logged its success: ${logs.join("; ")}`);
      }
      assertEquals(done.status, row.status);
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "the API's cancel of an export whose run is gone keeps the FAILURE written meanwhile",
  ...serviceTest,
  async fn() {
    // no worker: the run never starts; it is terminated, so the cancel finds no open run
    const h = await startHarness({ storage: "fs", worker: false });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 20, seed: 2402 });
      const id = await createExport(h, seed.token, seed.project_id);
      await h.temporal.client.workflow.getHandle((await workflowIdsOf(h.sql, id)).export)
        .terminate("test");
      // the run fails (FAILURE, not committed yet) while the cancel reads the export PENDING;
      // committed once the cancel's REVOKED transition waits on the row
      let cancel: Promise<Response> | undefined;
      let settled = false;
      const held = await holdLockUntilBlocked(h.sql, {
        async lock(locker) {
          await locker`
            update data_exports set status = 'FAILURE', error = 'boom', error_stage = 'data_export',
              finished_at = now()
            where id = ${id}`;
          await locker`update jobs set status = 'FAILURE' where data_export_id = ${id}`;
        },
        label: `the row of export ${id} and its job`,
        waiter: { applicationName: "ami-exports transition REVOKED" },
        onLocked() {
          cancel = h.api("POST", `/api/v2/exports/${id}/cancel/`, { token: seed.token });
          cancel.then(() => settled = true, () => settled = true);
          return Promise.resolve();
        },
        ended: () => Promise.resolve(settled), // the cancel answered without waiting
        action: () => Promise.resolve(true),
        finish: "commit",
        timeoutMs: 30_000,
      });
      assert(cancel, "the cancel was never sent");
      const response = await cancel;
      assert(held, `the cancel answered ${response.status} before it waited on the run's FAILURE`);
      const [row] = await h.sql<{ status: string; error: string | null }[]>`
        select status, error from data_exports where id = ${id}`;
      assertEquals([row.status, row.error], ["FAILURE", "boom"]);
      assertEquals(response.status, 409);
      const logs = (await jobLogs(h.sql, id)).map((l) => l.message);
      assert(!logs.includes("export cancelled"), logs.join("; "));
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "a run that finds its export REVOKED completes, revoked: true, as the row reads",
  ...serviceTest,
  async fn() {
    // no worker yet: the run is open but has not started an activity
    const h = await startHarness({ storage: "fs", worker: false });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 20, seed: 2403 });
      const id = await createExport(h, seed.token, seed.project_id);
      // what the API's cancel writes when it finds no open run (the run not started yet, as
      // Temporal saw it a moment before): REVOKED, before the run's first activity
      assert(await markExportEnded(h.sql, id, { status: "REVOKED", onlyRunning: true }));
      await h.startWorker();
      const handle = h.temporal.client.workflow.getHandle((await workflowIdsOf(h.sql, id)).export);
      const result = await handle.result().catch((error) => ({ failed: String(error) }));
      assertEquals(result, {
        exportId: id,
        revoked: true,
        records: 0,
        fileSize: 0,
        checksum: "",
        fileKey: "",
      });
      assertEquals((await handle.describe()).status.name, "COMPLETED");
      const [row] = await h.sql<{ status: string; error: string | null }[]>`
        select status, error from data_exports where id = ${id}`;
      assertEquals([row.status, row.error], ["REVOKED", null]);
      const read = await (await h.api("GET", `/api/v2/exports/${id}/`, { token: seed.token }))
        .json();
      assertEquals([read.status, read.job.status], ["REVOKED", "REVOKED"]);
      const logs = (await jobLogs(h.sql, id)).map((l) => l.message);
      assert(!logs.some((m) => m.startsWith("export failed")), logs.join("; "));
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "a retry whose workflow start fails ends the export FAILURE, saying so, and answers 503",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "fs", worker: false });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 20, seed: 2404 });
      const id = await createExport(h, seed.token, seed.project_id);
      // its run gone, the API's cancel marks it REVOKED: retriable
      await h.temporal.client.workflow.getHandle((await workflowIdsOf(h.sql, id)).export)
        .terminate("test");
      const cancel = await h.api("POST", `/api/v2/exports/${id}/cancel/`, { token: seed.token });
      assertEquals(cancel.status, 202);
      // the same real Temporal, whose workflow starts fail (as while it restarts): the lookups
      // pass, the retry's start does not
      const refusing = new Client({
        connection: h.temporal.client.connection,
        namespace: h.config.temporalNamespace,
        interceptors: {
          workflow: [{
            startWithDetails() {
              return Promise.reject(new Error("Temporal refused the start: test"));
            },
          }],
        },
      });
      const app = createApp({
        sql: h.sql,
        storage: h.storage,
        config: h.config,
        temporal: refusing,
      });
      const res = await app.request(`/api/v2/exports/${id}/retry/`, {
        method: "POST",
        headers: { Authorization: `Token ${seed.token}` },
      });
      const body = await res.json();
      assertEquals(res.status, 503, JSON.stringify(body));
      assert(String(body.error).includes("the export is FAILURE again"), JSON.stringify(body));
      const [row] = await h.sql<{ status: string; error: string | null; error_stage: string }[]>`
        select status, error, error_stage from data_exports where id = ${id}`;
      assertEquals([row.status, row.error_stage], ["FAILURE", "workflow"]);
      assert(
        String(row.error).startsWith("could not start its workflow for a retry: "),
        String(row.error),
      );
      assert(String(row.error).includes("Temporal refused the start: test"), String(row.error));
      const read = await (await h.api("GET", `/api/v2/exports/${id}/`, { token: seed.token }))
        .json();
      assertEquals([read.status, read.job.status], ["FAILURE", "FAILURE"]);
      // a retry once Temporal takes starts again runs it
      const again = await h.api("POST", `/api/v2/exports/${id}/retry/`, { token: seed.token });
      assertEquals(again.status, 202);
      await h.startWorker();
      assertEquals((await h.waitForExport(id, seed.token, 60_000)).status, "SUCCESS");
    } finally {
      await h.close();
    }
  },
});
