/**
 * Fault injection against real services on the 100,000-occurrence project: a worker killed
 * with SIGKILL, the S3 server paused or unreachable, Postgres connections terminated, the
 * Temporal server restarted, cancels, deletions and `temporal workflow reset` mid-export. Every
 * wait is bounded; durations are printed (`[faults] …`), never asserted. The API JSON and other
 * formats' kills and the 50 concurrent exports are in `faults_formats_test.ts` (a process of its
 * own, so that the test runner's lanes run both files at once). Helpers: `faults_support.ts`.
 */
import { jobLogs } from "../db/exports.ts";
import { assert, assertEquals } from "./assert.ts";
import { workflowIdsOf } from "./harness.ts";
import { serviceTest, testDatabase } from "./support.ts";
import { startTcpProxy } from "./tcp_proxy.ts";
import { createS3Storage } from "../storage/s3.ts";
import {
  activityAttempts,
  assertExactFile,
  assertNothingLeft,
  assertNothingLeftButTheFile,
  bigProjectOnce,
  createExport,
  CSV_BATCH,
  exportStatus,
  killAndResume,
  note,
  recordsExported,
  sleep,
  waitForProgress,
  withProcesses,
} from "./faults_support.ts";

Deno.test({
  name: "kill -9 the worker at ~50% of a 100,000-row CSV export: a new worker resumes it",
  ...serviceTest,
  async fn() {
    const { seed, ids } = await bigProjectOnce();
    assert(ids.length > 99_000, `valid occurrences: ${ids.length}`);
    // exact 12,500-row batches (one 5 MiB part each), not shrunk to the 4 MB byte target
    await withProcesses(
      { batchSize: CSV_BATCH, env: { EXPORT_BATCH_MB: "64" } },
      async (h, spawn) => {
        await killAndResume(h, spawn, {
          seed,
          ids,
          format: "occurrences_simple_csv",
          batch: CSV_BATCH,
        });
      },
    );
  },
});

Deno.test({
  name:
    "SIGTERM the worker at ~50% of a 100,000-row CSV export: it stops at once, a new worker resumes",
  ...serviceTest,
  async fn() {
    const { seed, ids } = await bigProjectOnce();
    await withProcesses(
      { batchSize: CSV_BATCH, env: { EXPORT_BATCH_MB: "64" } },
      async (h, spawn) => {
        const first = await spawn("first");
        const id = await createExport(h, seed, "occurrences_simple_csv");
        await waitForProgress(h, id, Math.floor(ids.length / 2));
        const asked = Date.now();
        // SIGKILL only if it has not stopped by itself within the minute
        await first.stop(60_000);
        const ended = await first.exited;
        const stopSeconds = (Date.now() - asked) / 1000;
        assertEquals([ended.signal, ended.code], [null, 0], "the worker did not stop on SIGTERM");
        // the running export was handed back, not finished first: its attempt ended with the
        // worker (the SDK cancels running activities at shutdown: no grace period)
        assertEquals(await exportStatus(h.sql, id), "STARTED");
        const atStop = await recordsExported(h.sql, id);
        assert(atStop < ids.length, `the export finished before the worker stopped: ${atStop}`);
        await spawn("second");
        const done = await h.waitForExport(id, seed.token, 240_000);
        await assertExactFile(h, done, ids);
        const resumes = (await jobLogs(h.sql, id)).filter((l) =>
          l.message.startsWith("resumed at")
        );
        assertEquals(resumes.length, 1, resumes.map((l) => l.message).join("\n"));
        const match = /after (\d+) records \(attempt 2\)$/.exec(resumes[0].message);
        assert(
          match && Number(match[1]) > 0,
          `not resumed from a checkpoint: ${resumes[0].message}`,
        );
        assert(
          atStop - Number(match[1]) <= 2 * CSV_BATCH,
          `re-read ${atStop - Number(match[1])} rows`,
        );
        await assertNothingLeftButTheFile(h, id);
        note(
          `SIGTERM at ${atStop}/${ids.length} records: the worker stopped in ` +
            `${stopSeconds.toFixed(1)} s, the next resumed at record ${match[1]}`,
        );
      },
    );
  },
});

Deno.test({
  name: "the S3 server paused (SIGSTOP) or unreachable mid-export, or the upload lost: completes",
  ...serviceTest,
  async fn() {
    const { startMotoServer } = await import("../cli/dev_services.ts");
    const { seed, ids } = await bigProjectOnce();
    const moto = await startMotoServer({ logFile: ".data/test/moto-faults.log" });
    // the worker and the harness reach S3 through the proxy; stopping it is the outage
    const s3 = startTcpProxy(moto.port);
    try {
      await withProcesses(
        { batchSize: CSV_BATCH, env: { S3_ENDPOINT: s3.endpoint } },
        async (h, spawn) => {
          await spawn("s3");

          // 1. Frozen: the port accepts connections but nothing answers for 10 s. The state
          //    survives, so the same upload continues (heartbeats go on meanwhile: the activity
          //    waits for S3 instead of being retried).
          const paused = await createExport(h, seed, "occurrences_simple_csv");
          await waitForProgress(h, paused, 30_000);
          Deno.kill(moto.pid, "SIGSTOP");
          const pausedAt = Date.now();
          await sleep(10_000);
          Deno.kill(moto.pid, "SIGCONT");
          const donePaused = await h.waitForExport(paused, seed.token, 240_000);
          note(`S3 paused 10 s: export finished ${(Date.now() - pausedAt) / 1000} s after pause`);
          await assertExactFile(h, donePaused, ids);
          await assertNothingLeftButTheFile(h, paused);

          // 2. Unreachable for 10 s (every connection cut, new ones refused), storage intact:
          //    the export continues its own upload, as it would after a real network outage.
          const cut = await createExport(h, seed, "occurrences_simple_csv");
          await waitForProgress(h, cut, 30_000);
          await s3.stop();
          const stoppedAt = Date.now();
          await sleep(10_000);
          await s3.start();
          const doneCut = await h.waitForExport(cut, seed.token, 240_000);
          note(
            `S3 unreachable 10 s (${s3.cut} connections cut): export finished ` +
              `${(Date.now() - stoppedAt) / 1000} s after the cut`,
          );
          await assertExactFile(h, doneCut, ids);
          const cutLogs = (await jobLogs(h.sql, cut)).map((l) => l.message);
          assert(
            !cutLogs.some((m) => m.startsWith("could not resume the upload")),
            `the upload survived the outage, yet the export started over:\n${cutLogs.join("\n")}`,
          );
          await assertNothingLeftButTheFile(h, cut);

          // 3. The upload lost while S3 was unreachable (aborted at the server, as a lifecycle
          //    rule for incomplete uploads does): the export starts its upload over (logged)
          //    and still writes every record exactly once.
          const lost = await createExport(h, seed, "occurrences_simple_csv");
          await waitForProgress(h, lost, 30_000);
          await s3.stop();
          const direct = createS3Storage({ ...h.config.s3, endpoint: moto.endpoint });
          const uploads = (await direct.listIncompleteUploads("exports/")).filter((u) =>
            u.key.includes(`_export-${lost}.`)
          );
          assertEquals(uploads.length, 1, JSON.stringify(uploads));
          await direct.abortUpload(uploads[0]);
          await sleep(5_000);
          await s3.start();
          const doneLost = await h.waitForExport(lost, seed.token, 240_000);
          await assertExactFile(h, doneLost, ids);
          const lostLogs = (await jobLogs(h.sql, lost)).map((l) => l.message);
          assert(
            lostLogs.some((m) => m.startsWith("could not resume the upload, starting over")),
            lostLogs.join("\n"),
          );
          await assertNothingLeftButTheFile(h, lost);
        },
      );
    } finally {
      await s3.stop();
      await moto.stop();
    }
  },
});

Deno.test({
  name: "the worker's Postgres connections terminated mid-export: completes",
  ...serviceTest,
  async fn() {
    const { seed, ids } = await bigProjectOnce();
    const appName = `ami-worker-${crypto.randomUUID().slice(0, 8)}`;
    const url = new URL(Deno.env.get("TEST_DATABASE_URL")!);
    url.searchParams.set("application_name", appName);
    await withProcesses(
      { batchSize: CSV_BATCH, env: { DATABASE_URL: url.toString() } },
      async (h, spawn) => {
        await spawn("pg");
        const id = await createExport(h, seed, "occurrences_simple_csv");
        await waitForProgress(h, id, 30_000);
        const terminated = await h.sql`
          select pg_terminate_backend(pid) from pg_stat_activity where application_name = ${appName}`;
        assert(terminated.length > 0, "no worker connection found to terminate");
        const done = await h.waitForExport(id, seed.token, 240_000);
        note(`terminated ${terminated.length} worker connections mid-export`);
        await assertExactFile(h, done, ids);
        await assertNothingLeftButTheFile(h, id);
      },
    );
  },
});

Deno.test({
  name: "the Temporal server restarted (same --db-filename, same port) mid-export: completes",
  ...serviceTest,
  async fn() {
    const { startTemporalDevServer } = await import("../cli/dev_services.ts");
    const { seed, ids } = await bigProjectOnce();
    const dir = await Deno.makeTempDir({ prefix: "ami-temporal-" });
    const dbFile = `${dir}/temporal.db`;
    const logFile = ".data/test/temporal-faults.log";
    let temporal = await startTemporalDevServer({ dbFile, logFile });
    try {
      await withProcesses(
        { batchSize: CSV_BATCH, env: { TEMPORAL_ADDRESS: temporal.address } },
        async (h, spawn) => {
          const worker = await spawn("temporal");
          const id = await createExport(h, seed, "occurrences_simple_csv");
          await waitForProgress(h, id, 30_000);
          await temporal.stop();
          const stoppedAt = Date.now();
          await sleep(3_000);
          temporal = await startTemporalDevServer({ port: temporal.port, dbFile, logFile });
          // A restart sends a GOAWAY on every connection: the worker must ride it out (it died
          // here while its client used node:http2; docs/architecture.md, "Running Temporal's TS
          // SDK under Deno"). A death fails the test; nothing restarts it.
          const died = await Promise.race([worker.exited, sleep(15_000).then(() => null)]);
          assertEquals(
            died,
            null,
            `the worker died while Temporal restarted: ${JSON.stringify(died)}`,
          );
          const done = await h.waitForExport(id, seed.token, 240_000);
          note(`Temporal restarted: export finished ${(Date.now() - stoppedAt) / 1000} s after`);
          await assertExactFile(h, done, ids);
          await assertNothingLeftButTheFile(h, id);
        },
      );
    } finally {
      await temporal.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "cancel mid-export through the API (S3): REVOKED, no object, no incomplete upload",
  ...serviceTest,
  async fn() {
    const { seed } = await bigProjectOnce();
    // exact 12,500-row batches (one 5 MiB part each), not shrunk to the 4 MB byte target
    await withProcesses(
      { batchSize: CSV_BATCH, env: { EXPORT_BATCH_MB: "64" } },
      async (h, spawn) => {
        await spawn("cancel");
        const id = await createExport(h, seed, "occurrences_simple_csv");
        await waitForProgress(h, id, 20_000);
        const res = await h.api("POST", `/api/v2/exports/${id}/cancel/`, { token: seed.token });
        assertEquals(res.status, 202, await res.text());
        const done = await h.waitForExport(id, seed.token, 60_000);
        assertEquals(done.status, "REVOKED");
        assertEquals(done.file_url ?? null, null);
        await assertNothingLeft(h, id);
        const again = await h.api("POST", `/api/v2/exports/${id}/cancel/`, { token: seed.token });
        assertEquals(again.status, 409);
      },
    );
  },
});

Deno.test({
  name: "cancel mid-export with `temporal workflow cancel` (filesystem): REVOKED, no temp file",
  ...serviceTest,
  async fn() {
    const { findOrInstallTool } = await import("../cli/dev_services.ts");
    const { seed } = await bigProjectOnce();
    await withProcesses({ batchSize: CSV_BATCH, storage: "fs" }, async (h, spawn) => {
      await spawn("cli-cancel");
      const id = await createExport(h, seed, "occurrences_simple_csv");
      await waitForProgress(h, id, 20_000);
      const temporal = await findOrInstallTool("temporal");
      const out = await new Deno.Command(temporal, {
        args: [
          "workflow",
          "cancel",
          "--workflow-id",
          (await workflowIdsOf(h.sql, id)).export,
          "--address",
          h.config.temporalAddress,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert(out.success, new TextDecoder().decode(out.stderr));
      const done = await h.waitForExport(id, seed.token, 60_000);
      assertEquals(done.status, "REVOKED");
      await assertNothingLeft(h, id);
      const temp = [...Deno.readDirSync(`${h.config.exportsDir}/.uploads`)].map((e) => e.name);
      assertEquals(temp, [], "temp files left behind");
    });
  },
});

Deno.test({
  name: "cancel an export whose workflow is still PENDING (no worker yet): REVOKED, never ran",
  ...serviceTest,
  async fn() {
    const { seed } = await bigProjectOnce();
    // exact 12,500-row batches (one 5 MiB part each), not shrunk to the 4 MB byte target
    await withProcesses(
      { batchSize: CSV_BATCH, env: { EXPORT_BATCH_MB: "64" } },
      async (h, spawn) => {
        const id = await createExport(h, seed, "occurrences_simple_csv");
        assertEquals(await exportStatus(h.sql, id), "PENDING");
        const res = await h.api("POST", `/api/v2/exports/${id}/cancel/`, { token: seed.token });
        assertEquals(res.status, 202, await res.text());
        await spawn("late");
        const done = await h.waitForExport(id, seed.token, 60_000);
        assertEquals(done.status, "REVOKED");
        const logs = (await jobLogs(h.sql, id)).map((l) => l.message);
        assert(!logs.some((m) => m.startsWith("export started")), logs.join("\n"));
        await assertNothingLeft(h, id);
      },
    );
  },
});

Deno.test({
  name: "capture set deleted mid-export: FAILURE with a clear error, no retry storm",
  ...serviceTest,
  async fn() {
    const { seed } = await bigProjectOnce();
    const sql = testDatabase(2);
    const [collection] = await sql<{ id: number }[]>`
      insert into source_image_collections (project_id, name)
      values (${seed.project_id}, 'doomed capture set') returning id`;
    await sql`
      insert into source_image_collection_images (collection_id, source_image_id)
      select ${collection.id}, id from source_images where project_id = ${seed.project_id}`;
    await sql`analyze source_image_collection_images`;
    await sql.end();
    // exact 12,500-row batches (one 5 MiB part each), not shrunk to the 4 MB byte target
    await withProcesses(
      { batchSize: CSV_BATCH, env: { EXPORT_BATCH_MB: "64" } },
      async (h, spawn) => {
        await spawn("collection");
        const id = await createExport(h, seed, "occurrences_simple_csv", {
          collection_id: collection.id,
        });
        await waitForProgress(h, id, 12_000);
        await h.sql`delete from source_image_collections where id = ${collection.id}`;
        const done = await h.waitForExport(id, seed.token, 60_000);
        assertEquals(done.status, "FAILURE");
        const [row] = await h.sql<{ error: string; error_stage: string }[]>`
        select error, error_stage from data_exports where id = ${id}`;
        assert(
          row.error.includes(
            `capture set no longer exists in project ${seed.project_id}: ${collection.id}`,
          ),
          row.error,
        );
        assertEquals(row.error_stage, "data_export");
        const attempts = await activityAttempts(h, (await workflowIdsOf(h.sql, id)).export);
        assert(Object.values(attempts).every((a) => a <= 2), JSON.stringify(attempts));
        await assertNothingLeft(h, id);
      },
    );
  },
});

Deno.test({
  name: "export row deleted mid-export: the workflow stops cleanly and leaves nothing behind",
  ...serviceTest,
  async fn() {
    const { seed } = await bigProjectOnce();
    // exact 12,500-row batches (one 5 MiB part each), not shrunk to the 4 MB byte target
    await withProcesses(
      { batchSize: CSV_BATCH, env: { EXPORT_BATCH_MB: "64" } },
      async (h, spawn) => {
        await spawn("row");
        const id = await createExport(h, seed, "occurrences_simple_csv");
        await waitForProgress(h, id, 20_000);
        const workflowId = (await workflowIdsOf(h.sql, id)).export;
        await h.sql`delete from data_exports where id = ${id}`;
        const handle = h.temporal.client.workflow.getHandle(workflowId);
        const result = await Promise.race([
          handle.result(),
          sleep(60_000).then(() => {
            throw new Error("workflow did not stop within 60 s");
          }),
        ]);
        assertEquals(result.deleted, true);
        const attempts = await activityAttempts(h, workflowId);
        assert(Object.values(attempts).every((a) => a <= 2), JSON.stringify(attempts));
        await assertNothingLeft(h, id);
      },
    );
  },
});

Deno.test({
  name: "`temporal workflow reset` mid-export: the new run ends in a consistent row and file",
  ...serviceTest,
  async fn() {
    const { findOrInstallTool } = await import("../cli/dev_services.ts");
    const { seed, ids } = await bigProjectOnce();
    // exact 12,500-row batches (one 5 MiB part each), not shrunk to the 4 MB byte target
    await withProcesses(
      { batchSize: CSV_BATCH, env: { EXPORT_BATCH_MB: "64" } },
      async (h, spawn) => {
        await spawn("reset");
        const id = await createExport(h, seed, "occurrences_simple_csv");
        await waitForProgress(h, id, 30_000);
        const temporal = await findOrInstallTool("temporal");
        const out = await new Deno.Command(temporal, {
          args: [
            "workflow",
            "reset",
            "--workflow-id",
            (await workflowIdsOf(h.sql, id)).export,
            "--type",
            "FirstWorkflowTask",
            "--reason",
            "fault test",
            "--address",
            h.config.temporalAddress,
          ],
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert(out.success, new TextDecoder().decode(out.stderr));
        const handle = h.temporal.client.workflow.getHandle(
          (await workflowIdsOf(h.sql, id)).export,
        );
        await handle.result();
        const newRun = (await handle.describe()).runId;
        const done = await h.waitForExport(id, seed.token, 120_000);
        await assertExactFile(h, done, ids);
        const [row] = await h.sql<{ run_id: string }[]>`
        select run_id from data_exports where id = ${id}`;
        assertEquals(row.run_id, newRun);
        await assertNothingLeftButTheFile(h, id);
      },
    );
  },
});
