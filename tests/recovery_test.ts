/**
 * Idempotence and housekeeping against the real services: one workflow per export whatever the
 * number of starts, a retry race, saveStats and the delete workflow run twice, and the storage
 * sweep that the `export-housekeeping` Schedule runs.
 */
import { discardEndedExportFolder } from "../activities/export_folder.ts";
import { sweepStorage } from "../activities/housekeeping.ts";
import { createActivities, exportFileKey, exportsRoot } from "../activities/mod.ts";
import { ensureHousekeepingSchedule, runHousekeeping } from "../cli/housekeeping.ts";
import { jobLogs } from "../db/exports.ts";
import { seedDemo } from "../db/seed_demo.ts";
import { assert, assertEquals } from "./assert.ts";
import { type Harness, startHarness, workflowIdsOf } from "./harness.ts";
import { serviceTest } from "./support.ts";

async function runsOf(h: Harness, workflowId: string): Promise<string[]> {
  const runs: string[] = [];
  for await (
    const wf of h.temporal.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })
  ) {
    runs.push(wf.runId);
  }
  return runs;
}

async function waitForRuns(h: Harness, workflowId: string, n: number): Promise<string[]> {
  const deadline = Date.now() + 20_000;
  let runs: string[] = [];
  while (Date.now() < deadline) {
    runs = await runsOf(h, workflowId);
    if (runs.length >= n) return runs;
    await new Promise((r) => setTimeout(r, 200));
  }
  return runs;
}

Deno.test({
  name: "idempotence: one workflow per export, retry race, saveStats and delete run twice",
  ...serviceTest,
  async fn(t) {
    const h = await startHarness({ storage: "s3", batchSize: 500, worker: false });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 600, seed: 2001 });
      const post = () =>
        h.api("POST", "/api/v2/exports/", {
          token: seed.token,
          body: { project: seed.project_id, format: "occurrences_simple_csv", force: true },
        });
      /**
       * Creates an export while no worker runs (its workflow stays open), runs `during` on its
       * id, then starts the worker again whatever `during` throws; returns the id.
       */
      const createWithoutWorker = async (during: (id: number) => Promise<void>) => {
        await h.stopWorker();
        try {
          const created = await post();
          assertEquals(created.status, 201);
          const createdId = (await created.json()).id as number;
          await during(createdId);
          return createdId;
        } finally {
          await h.startWorker();
        }
      };
      const res = await post();
      assertEquals(res.status, 201);
      const id = (await res.json()).id as number;
      const workflowId = (await workflowIdsOf(h.sql, id)).export;

      await t.step("starting the same export again joins its workflow: one run", async () => {
        // No worker yet: the workflow is certainly still open when it is started again.
        const first = await h.temporal.client.workflow.getHandle(workflowId).describe();
        const again = await Promise.all(
          [1, 2].map(() =>
            h.temporal.client.workflow.start("exportWorkflow", {
              taskQueue: h.config.temporalTaskQueue,
              workflowId,
              args: [{ exportId: id }],
              workflowIdConflictPolicy: "USE_EXISTING",
            })
          ),
        );
        assertEquals(again.map((a) => a.firstExecutionRunId), [first.runId, first.runId]);
        await h.startWorker();
        const done = await h.waitForExport(id, seed.token);
        assertEquals(done.status, "SUCCESS");
        assertEquals(await runsOf(h, workflowId), [first.runId]);
      });

      await t.step("two concurrent retries of a failed export start one new run", async () => {
        // requested an hour ago: the retry's run starts, and waits, from the retry on
        await h.sql`update data_exports set status = 'FAILURE',
          created_at = now() - interval '1 hour', queued_at = now() - interval '1 hour',
          started_at = now() - interval '1 hour'
          where id = ${id}`;
        const before = (await runsOf(h, workflowId)).length;
        const retriedAt = Date.now();
        const responses = await Promise.all([
          h.api("POST", `/api/v2/exports/${id}/retry/`, { token: seed.token }),
          h.api("POST", `/api/v2/exports/${id}/retry/`, { token: seed.token }),
        ]);
        assertEquals(responses.map((r) => r.status).sort(), [202, 409]);
        const done = await h.waitForExport(id, seed.token);
        assertEquals(done.status, "SUCCESS");
        assertEquals((await waitForRuns(h, workflowId, before + 1)).length, before + 1);
        // (a second of slack: the API's clock and the database's)
        assert(Date.parse(String(done.started_at)) >= retriedAt - 1000, String(done.started_at));
        const admitted = (await jobLogs(h.sql, id)).map((l) => l.message)
          .filter((m) => m.startsWith("admitted after waiting"));
        const waited = Number(/waiting (\d+) s/.exec(admitted.at(-1) ?? "")?.[1]);
        assert(waited < 600, `the retry says it waited ${waited} s: ${admitted.join("; ")}`);
      });

      await t.step("saveStats twice: one row state, one log line", async () => {
        const acts = createActivities({ sql: h.sql, storage: h.storage, config: h.config });
        const [row] = await h.sql<{ record_count: number; file_size: number; checksum: string }[]>`
          select record_count, file_size, checksum from data_exports where id = ${id}`;
        const finishedLines = async () =>
          (await jobLogs(h.sql, id)).filter((l) => l.message.startsWith("export finished"))
            .length;
        const linesBefore = await finishedLines();
        const input = {
          exportId: id,
          records: row.record_count,
          fileSize: row.file_size,
          checksum: row.checksum.replace(/^sha256:/, ""),
        };
        await acts.saveStats(input);
        await acts.saveStats(input);
        assertEquals(await finishedLines(), linesBefore);
        const [after] = await h.sql`select status, checksum from data_exports where id = ${id}`;
        assertEquals([after.status, after.checksum], ["SUCCESS", row.checksum]);
      });

      await t.step("a terminated export can be cancelled, then retried", async () => {
        const other = await createWithoutWorker(async (other) => {
          await h.temporal.client.workflow.getHandle((await workflowIdsOf(h.sql, other)).export)
            .terminate("test");
          const cancel = await h.api("POST", `/api/v2/exports/${other}/cancel/`, {
            token: seed.token,
          });
          const body = await cancel.json();
          assertEquals(cancel.status, 202, JSON.stringify(body));
          assertEquals(body.status, "REVOKED");
        });
        const retry = await h.api("POST", `/api/v2/exports/${other}/retry/`, {
          token: seed.token,
        });
        assertEquals(retry.status, 202);
        assertEquals((await h.waitForExport(other, seed.token)).status, "SUCCESS");
      });

      await t.step("a retry while the failed run is still open: 409, nothing changed", async () => {
        // The failed run marks the row before its workflow closes; a retry in between used to
        // attach to that run (USE_EXISTING) and leave the export PENDING for ever. No worker:
        // the run stays open, as a failed run does for its last workflow task.
        const other = await createWithoutWorker(async (other) => {
          await h.sql`update data_exports set status = 'FAILURE' where id = ${other}`;
          const early = await h.api("POST", `/api/v2/exports/${other}/retry/`, {
            token: seed.token,
          });
          const problem = await early.json();
          assertEquals(early.status, 409, JSON.stringify(problem));
          assert(/previous run is still ending/.test(JSON.stringify(problem)));
          const [row] = await h.sql`select status from data_exports where id = ${other}`;
          assertEquals(row.status, "FAILURE");
          const workflowId = (await workflowIdsOf(h.sql, other)).export;
          await h.temporal.client.workflow.getHandle(workflowId).terminate("test");
          const retry = await h.api("POST", `/api/v2/exports/${other}/retry/`, {
            token: seed.token,
          });
          assertEquals(retry.status, 202, await retry.text());
          // Visibility is eventually consistent: a list right after the start may not hold it yet.
          assertEquals((await waitForRuns(h, workflowId, 2)).length, 2);
        });
        assertEquals((await h.waitForExport(other, seed.token)).status, "SUCCESS");
      });

      await t.step("the delete workflow run twice at once: both succeed, all gone", async () => {
        const [row] = await h.sql<{ file_key: string }[]>`
          select file_key from data_exports where id = ${id}`;
        assert(await h.storage.headObject(row.file_key));
        const runDelete = (suffix: string) =>
          h.temporal.client.workflow.execute("deleteExportWorkflow", {
            taskQueue: h.config.temporalTaskQueue,
            workflowId: `data-export-delete-${id}-${suffix}`,
            args: [{ exportId: id }],
          });
        await Promise.all([runDelete("a"), runDelete("b")]);
        await runDelete("c");
        assertEquals(await h.storage.headObject(row.file_key), null);
        assertEquals((await h.sql`select 1 from data_exports where id = ${id}`).length, 0);
      });
    } finally {
      await h.close();
    }
  },
});

/** `lostAfterSeconds` that no row reaches: housekeeping looks no running export up. */
const NEVER_LOST = 10 * 365 * 24 * 3600;

Deno.test({
  name: "housekeeping: aborts orphaned uploads, removes files of deleted exports, reports them",
  ...serviceTest,
  async fn(t) {
    const h = await startHarness({ storage: "s3", batchSize: 500 });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 200, seed: 2002 });
      const res = await h.api("POST", "/api/v2/exports/", {
        token: seed.token,
        body: { project: seed.project_id, format: "occurrences_simple_csv", force: true },
      });
      const kept = (await res.json()).id as number;
      assertEquals((await h.waitForExport(kept, seed.token)).status, "SUCCESS");
      const [keptRow] = await h.sql<{ file_key: string }[]>`
        select file_key from data_exports where id = ${kept}`;

      const root = exportsRoot(h.config.storagePrefix);
      /** A new export row of this database and the key its file would have. */
      const newExport = async (status: string) => {
        const [row] = await h.sql<{ id: number; file_uuid: string }[]>`
          insert into data_exports (user_id, project_id, format, status)
          values (${seed.user_id}, ${seed.project_id}, 'occurrences_simple_csv', ${status})
          returning id, file_uuid::text`;
        const key = exportFileKey({
          storagePrefix: h.config.storagePrefix,
          fileUuid: row.file_uuid,
          projectSlug: "demo",
          exportId: row.id,
        }, "csv");
        return { id: row.id, key };
      };
      const publish = async (key: string) => {
        const upload = await h.storage.beginUpload(key, "text/csv");
        await h.storage.completeUpload(
          await h.storage.appendPart(upload, new TextEncoder().encode("id\r\n")),
        );
      };
      // An upload a running export owns (its row says so): must survive.
      const running = await newExport("STARTED");
      const owned = await h.storage.beginUpload(running.key, "text/csv");
      await h.sql`update data_exports set upload_id = ${owned.uploadId} where id = ${running.id}`;
      // An orphaned upload: its export was deleted (the row is gone, the database recorded it).
      const deleted = await newExport("STARTED");
      const orphan = await h.storage.beginUpload(deleted.key, "text/csv");
      // A published file whose export row was deleted.
      const stale = await newExport("SUCCESS");
      await publish(stale.key);
      await h.sql`delete from data_exports where id in ${h.sql([deleted.id, stale.id])}`;
      // Another database's upload and file in the same bucket, with ids and slug like ours:
      // never touched, whatever their age.
      const foreignKey = `${root}${crypto.randomUUID()}/demo_export-${stale.id}.csv`;
      const foreign = await h.storage.beginUpload(foreignKey, "text/csv");
      const foreignFile = `${root}${crypto.randomUUID()}/demo_export-${deleted.id}.csv`;
      await publish(foreignFile);

      await t.step("uploads younger than the minimum age are left alone", async () => {
        // Age is taken from the storage's `Initiated` date (moto reports a fixed one), so the
        // sweep is run "10 s after" the date the storage gives for the orphan.
        const listed = await h.storage.listIncompleteUploads(root);
        const initiated = listed.find((u) => u.uploadId === orphan.uploadId)?.initiated;
        assert(initiated, "no Initiated date listed");
        const report = await sweepStorage(h.sql, h.storage, {
          minAgeSeconds: 3600,
          root,
          now: new Date(initiated.getTime() + 10_000),
        });
        assertEquals(report.abortedUploads, []);
        assertEquals(report.removedFiles, [stale.key]);
        assertEquals(await h.storage.headObject(stale.key), null);
      });

      await t.step(
        "the workflow aborts orphaned uploads, keeps owned, live and foreign ones",
        async () => {
          // The stale file again (the previous step removed it), for the workflow to find.
          await publish(stale.key);
          // (running exports are not looked up here: tests/lost_exports_test.ts does that; the
          // lane's database holds other files' running rows without workflows)
          const report = await runHousekeeping(h.temporal.client, {
            taskQueue: h.config.temporalTaskQueue,
            minAgeSeconds: 0,
            lostAfterSeconds: NEVER_LOST,
          });
          assertEquals(report, {
            abortedUploads: [{ key: orphan.key, uploadId: orphan.uploadId }],
            removedFiles: [stale.key],
            expiredExports: [],
            lostExports: [],
          });
          const left = await h.storage.listIncompleteUploads(root);
          assertEquals(
            left.map((u) => u.uploadId).sort(),
            [owned.uploadId, foreign.uploadId].sort(),
          );
          assert(await h.storage.headObject(keptRow.file_key), "a live export's file was removed");
          assert(await h.storage.headObject(foreignFile), "another database's file was removed");
          const second = await runHousekeeping(h.temporal.client, {
            taskQueue: h.config.temporalTaskQueue,
            minAgeSeconds: 0,
            lostAfterSeconds: NEVER_LOST,
          });
          assertEquals(second, {
            abortedUploads: [],
            removedFiles: [],
            expiredExports: [],
            lostExports: [],
          });
          const tombstones = await h.sql`
            select 1 from deleted_export_files where export_id in ${h.sql([deleted.id, stale.id])}`;
          assertEquals(tombstones.length, 0, "deleted exports are forgotten once swept");
        },
      );

      await t.step("`deno task cli housekeeping --install --run` works end to end", async () => {
        const out = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            "cli/main.ts",
            "housekeeping",
            "--install",
            "--run",
            "--min-age",
            "0",
            "--lost-after",
            String(NEVER_LOST),
          ],
          env: h.env,
          stdout: "piped",
          stderr: "piped",
        }).output();
        const stdout = new TextDecoder().decode(out.stdout).trim().split("\n");
        assert(out.success, new TextDecoder().decode(out.stderr));
        assert(/^schedule export-housekeeping (created|exists)$/.test(stdout[0]), stdout[0]);
        assertEquals(JSON.parse(stdout.at(-1)!), {
          abortedUploads: [],
          removedFiles: [],
          expiredExports: [],
          lostExports: [],
        });
        if (stdout[0].endsWith("created")) {
          // (Another test's worker may have created it first in this server: then leave it.)
          const schedule = h.temporal.client.schedule.getHandle("export-housekeeping");
          const described = await schedule.describe();
          assertEquals(
            (described.action as { taskQueue: string }).taskQueue,
            h.config.temporalTaskQueue,
          );
          await schedule.delete();
        }
      });

      await t.step("the schedule is created once, idempotently", async () => {
        const scheduleId = `export-housekeeping-test-${crypto.randomUUID().slice(0, 8)}`;
        const options = { taskQueue: h.config.temporalTaskQueue, everyMinutes: 30, scheduleId };
        assertEquals(await ensureHousekeepingSchedule(h.temporal.client, options), "created");
        assertEquals(await ensureHousekeepingSchedule(h.temporal.client, options), "exists");
        const handle = h.temporal.client.schedule.getHandle(scheduleId);
        const described = await handle.describe();
        assertEquals(
          (described.action as { workflowType: string }).workflowType,
          "housekeepingWorkflow",
        );
        await handle.delete();
      });
      await h.storage.abortUpload(owned);
      await h.storage.abortUpload(foreign);
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "housekeeping: the sweep never removes the file a retry of a failed export published",
  ...serviceTest,
  async fn() {
    // The sweep reads its owners once; an export it read as FAILURE (its file left behind: "could
    // not remove the partial upload now … housekeeping will") is retried meanwhile, and its new
    // run publishes the same key (file keys are stable across retries) and ends SUCCESS. The
    // sweep's delete must not remove that file.
    const h = await startHarness({ storage: "fs", batchSize: 500 });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 200, seed: 2003 });
      const res = await h.api("POST", "/api/v2/exports/", {
        token: seed.token,
        body: { project: seed.project_id, format: "occurrences_simple_csv", force: true },
      });
      const id = (await res.json()).id as number;
      assertEquals((await h.waitForExport(id, seed.token)).status, "SUCCESS");
      const [{ file_key: key }] = await h.sql<{ file_key: string }[]>`
        select file_key from data_exports where id = ${id}`;
      // ended FAILURE with its file left behind, as markFailed leaves it when storage fails
      await h.sql`update data_exports set status = 'FAILURE', file_key = null where id = ${id}`;
      await h.sql`update jobs set status = 'FAILURE' where data_export_id = ${id}`;

      let reached!: () => void;
      const deleteReached = new Promise<void>((resolve) => reached = resolve);
      let release!: () => void;
      const released = new Promise<void>((resolve) => release = resolve);
      const sweep = sweepStorage(h.sql, {
        ...h.storage,
        async deleteObject(k) {
          if (k === key) {
            reached();
            await released;
          }
          await h.storage.deleteObject(k);
        },
      }, { minAgeSeconds: 0, root: exportsRoot(h.config.storagePrefix) });
      await deleteReached;

      const retry = h.api("POST", `/api/v2/exports/${id}/retry/`, { token: seed.token });
      // Either the retry runs to SUCCESS while the sweep is held at its delete, or it waits for
      // the sweep (its transition to PENDING blocked on the export's row): then let the sweep go.
      const deadline = Date.now() + 60_000;
      for (;;) {
        const [row] = await h.sql<{ status: string }[]>`
          select status from data_exports where id = ${id}`;
        if (row.status === "SUCCESS") break;
        const waiting = await h.sql`
          select 1 from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'
            and application_name = 'ami-exports transition PENDING'`;
        if (waiting.length > 0) break;
        assert(Date.now() < deadline, `export ${id} neither succeeded nor waited: ${row.status}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      release();
      const report = await sweep;
      assertEquals((await retry).status, 202);
      const done = await h.waitForExport(id, seed.token);
      assertEquals(done.status, "SUCCESS");
      assert(
        await h.storage.headObject(key),
        `the sweep removed the retried export's file (removed: ${report.removedFiles})`,
      );
      const bytes = await h.download(String(done.file_url));
      assert(bytes.length > 0, "the retried export's file is empty");
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "markFailed retried after its end committed: what is left under the export's folder goes",
  ...serviceTest,
  async fn() {
    // the attempt that ended the export (clearing file_key) was stopped before its cleanup: the
    // retry no longer reads the file's key in the row, and must still remove the file and the
    // upload; an export a retry made PENDING meanwhile keeps what it has
    const h = await startHarness({ storage: "s3", batchSize: 500 });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 200, seed: 2004 });
      const ended = async () => {
        const res = await h.api("POST", "/api/v2/exports/", {
          token: seed.token,
          body: { project: seed.project_id, format: "occurrences_simple_csv", force: true },
        });
        const id = (await res.json()).id as number;
        assertEquals((await h.waitForExport(id, seed.token)).status, "SUCCESS");
        const [row] = await h.sql<{ file_key: string; file_uuid: string }[]>`
          select file_key, file_uuid::text from data_exports where id = ${id}`;
        const folder = `${exportsRoot(h.config.storagePrefix)}${row.file_uuid}/`;
        const upload = await h.storage.beginUpload(`${folder}retry.part`, "text/csv");
        // as markExportEnded leaves it: FAILURE, file_key cleared, the file still in storage
        await h.sql`update data_exports set status = 'FAILURE', file_key = null where id = ${id}`;
        return { id, key: row.file_key, folder, upload };
      };

      const left = await ended();
      assertEquals(await discardEndedExportFolder(h, left.id, "FAILURE"), true);
      assertEquals(await h.storage.headObject(left.key), null);
      assertEquals(await h.storage.listIncompleteUploads(left.folder), []);
      assertEquals(await h.storage.listObjects(left.folder), []);

      const retried = await ended();
      await h.sql`update data_exports set status = 'PENDING' where id = ${retried.id}`;
      assertEquals(await discardEndedExportFolder(h, retried.id, "FAILURE"), false);
      assert(await h.storage.headObject(retried.key), "a retried export's file was removed");
      assertEquals(
        (await h.storage.listIncompleteUploads(retried.folder)).map((u) => u.uploadId),
        [retried.upload.uploadId],
      );
      await h.storage.abortUpload({ key: retried.upload.key, uploadId: retried.upload.uploadId });
    } finally {
      await h.close();
    }
  },
});
