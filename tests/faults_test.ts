/**
 * Fault injection against real services: worker processes killed with SIGKILL, the S3 server
 * paused or cut off the network (a TCP proxy in front of moto, `tests/tcp_proxy.ts`: an outage
 * loses no stored object, as with real storage), Postgres connections terminated, the Temporal server restarted, cancels, deletions
 * mid-export, and 50 concurrent exports through a worker crash. Every wait is bounded; durations
 * are printed (`[faults] …`), never asserted.
 */
import { parse } from "csv-parse/sync";
import type { Sql } from "../db/client.ts";
import { jobLogs } from "../db/exports.ts";
import { seedDemo, type SeedResult } from "../db/seed_demo.ts";
import { assert, assertEquals } from "./assert.ts";
import { expectedOccurrenceIds, type Harness, startHarness, workflowIdsOf } from "./harness.ts";
import { serviceTest, testDatabase } from "./support.ts";
import { startWorkerProcess, type WorkerProcess } from "./worker_process.ts";
import { startTcpProxy } from "./tcp_proxy.ts";
import { createS3Storage } from "../storage/s3.ts";
import { readCamtrap } from "./camtrap.ts";
import { checkDwca, unzipText } from "./dwca.ts";

/** ~448 bytes per CSV row: 12,500 rows ≈ 5.6 MB ≥ one 5 MiB part, so every batch is a part. */
const CSV_BATCH = 12_500;
/** ~3.8 KB per JSON record: 1,500 records ≈ 5.7 MB ≥ one 5 MiB part. */
const JSON_BATCH = 1_500;
const HEARTBEAT_SECONDS = "5";

function note(message: string): void {
  console.log(`[faults] ${message}`);
}

interface SharedProject {
  seed: SeedResult;
  ids: number[];
}

let bigProject: Promise<SharedProject> | undefined;
/** The 100,000-occurrence project, seeded once for the whole file. */
function bigProjectOnce(): Promise<SharedProject> {
  bigProject ??= (async () => {
    const sql = testDatabase(2);
    try {
      const started = performance.now();
      const seed = await seedDemo(sql, { occurrences: 100_000, seed: 1001 });
      const ids = await expectedOccurrenceIds(sql, seed.project_id);
      note(`seeded 100,000 occurrences in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      return { seed, ids };
    } finally {
      await sql.end();
    }
  })();
  return bigProject;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Polls `probe` until it returns true; throws after `timeoutMs`. */
async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
}

async function createExport(
  h: Harness,
  seed: SeedResult,
  format: string,
  filters: Record<string, unknown> = {},
): Promise<number> {
  const res = await h.api("POST", "/api/v2/exports/", {
    token: seed.token,
    body: { project: seed.project_id, format, filters, force: true },
  });
  const body = await res.json();
  assertEquals(res.status, 201, JSON.stringify(body));
  return body.id;
}

/** `records_exported` of the export stage (written after every batch). */
async function recordsExported(sql: Sql, id: number): Promise<number> {
  const [row] = await sql<{ n: number | null }[]>`
    select (select (p->>'value')::int from jsonb_array_elements(s->'params') p
            where p->>'key' = 'records_exported') as n
    from jobs j, jsonb_array_elements(j.progress->'stages') s
    where j.data_export_id = ${id} and s->>'key' = 'data_export'`;
  return row?.n ?? 0;
}

async function waitForProgress(h: Harness, id: number, records: number, timeoutMs = 120_000) {
  await waitFor(
    `export ${id} to pass ${records} records`,
    async () => (await recordsExported(h.sql, id)) >= records,
    timeoutMs,
  );
}

async function exportStatus(sql: Sql, id: number): Promise<string | undefined> {
  const [row] = await sql<{ status: string }[]>`select status from data_exports where id = ${id}`;
  return row?.status;
}

/** Downloads a finished export and returns the ids it holds, in file order. */
async function fileIds(h: Harness, done: Record<string, unknown>): Promise<number[]> {
  const text = new TextDecoder().decode(await h.download(done.file_url as string));
  if (done.format === "occurrences_api_json") {
    return (JSON.parse(text) as { id: number }[]).map((o) => o.id);
  }
  const rows: string[][] = parse(text, { on_record: (record: string[]) => [record[0]] });
  assertEquals(rows[0], ["id"]);
  return rows.slice(1).map((r) => Number(r[0]));
}

/** The file holds exactly `expected`, in order, each once; the row agrees. */
async function assertExactFile(h: Harness, done: Record<string, unknown>, expected: number[]) {
  assertEquals(done.status, "SUCCESS", JSON.stringify(done).slice(0, 2000));
  const ids = await fileIds(h, done);
  assertEquals(ids.length, expected.length, "record count in the file");
  assertEquals(new Set(ids).size, ids.length, "a record was written twice");
  assertEquals(ids, expected);
  assertEquals(done.record_count, expected.length);
}

/** Nothing of the export is left in storage: no object, no incomplete upload. */
async function assertNothingLeft(h: Harness, id: number): Promise<void> {
  const objects = (await h.storage.listObjects("exports/")).filter((k) =>
    k.endsWith(`_export-${id}.csv`) || k.endsWith(`_export-${id}.json`)
  );
  assertEquals(objects, [], "objects left behind");
  const uploads = (await h.storage.listIncompleteUploads("exports/")).filter((u) =>
    u.key.includes(`_export-${id}.`)
  );
  assertEquals(uploads, [], "incomplete uploads left behind");
}

/** Attempts of each activity type in the (current) run of workflow `workflowId`. */
async function activityAttempts(h: Harness, workflowId: string): Promise<Record<string, number>> {
  const history = await h.temporal.client.workflow.getHandle(workflowId).fetchHistory();
  const types = new Map<number, string>();
  const attempts: Record<string, number> = {};
  for (const e of history.events ?? []) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) types.set(Number(e.eventId), scheduled.activityType?.name ?? "?");
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      const type = types.get(Number(started.scheduledEventId)) ?? "?";
      attempts[type] = Math.max(attempts[type] ?? 0, started.attempt ?? 1);
    }
  }
  return attempts;
}

/** Runs `body` with a harness whose workers are separate processes; stops them all after. */
async function withProcesses(
  options: { batchSize: number; env?: Record<string, string>; storage?: "s3" | "fs" },
  body: (h: Harness, spawn: (name: string) => Promise<WorkerProcess>) => Promise<void>,
): Promise<void> {
  const h = await startHarness({
    worker: false,
    storage: options.storage ?? "s3",
    batchSize: options.batchSize,
    env: { HEARTBEAT_TIMEOUT_SECONDS: HEARTBEAT_SECONDS, ...options.env },
  });
  const workers: WorkerProcess[] = [];
  try {
    await body(h, async (name) => {
      const w = await startWorkerProcess(h.env, { name });
      workers.push(w);
      return w;
    });
  } finally {
    await Promise.all(workers.map((w) => w.kill()));
    await h.close();
  }
}

/**
 * kill -9 at ~50%, then a new worker: the export resumes from its checkpoint. "Rows re-read" is
 * the progress the killed attempt had reported (rows fetched and handed to the upload, durable
 * or not) minus the records of the checkpoint the new attempt resumed from. A batch that was
 * being fetched at the instant of the kill (never written anywhere) is not counted.
 */
async function killAndResume(
  h: Harness,
  spawn: (name: string) => Promise<WorkerProcess>,
  options: { seed: SeedResult; ids: number[]; format: string; batch: number },
): Promise<void> {
  const first = await spawn("first");
  const id = await createExport(h, options.seed, options.format);
  await waitForProgress(h, id, Math.floor(options.ids.length / 2));
  // Kill mid-batch rather than in the same instant as a progress write: the SDK may hold the
  // batch's heartbeat for up to the worker's 250 ms throttle interval.
  await sleep(400);
  await first.kill();
  const killedAt = Date.now();
  const fetchedBeforeKill = await recordsExported(h.sql, id);
  await spawn("second");
  const done = await h.waitForExport(id, options.seed.token, 240_000);
  await assertExactFile(h, done, options.ids);

  const logs = await jobLogs(h.sql, id);
  const resumes = logs.filter((l) => l.message.startsWith("resumed at"));
  assertEquals(resumes.length, 1, logs.map((l) => l.message).join("\n"));
  const match = /^resumed at id (\d+) after (\d+) records \(attempt (\d+)\)$/.exec(
    resumes[0].message,
  );
  assert(match, resumes[0].message);
  const checkpointRecords = Number(match[2]);
  assert(checkpointRecords > 0, "resumed from the start: no checkpoint was used");
  assertEquals(Number(match[1]), options.ids[checkpointRecords - 1], "resume id");
  const reread = fetchedBeforeKill - checkpointRecords;
  assert(reread >= 0 && reread <= options.batch, `rows re-read: ${reread} > ${options.batch}`);
  const [row] = await h.sql<{ resumed_count: number }[]>`
    select resumed_count from data_exports where id = ${id}`;
  assertEquals(row.resumed_count, 1);
  await assertNothingLeftButTheFile(h, id);
  note(
    `${options.format} kill -9 at ${fetchedBeforeKill}/${options.ids.length} records: ` +
      `resumed ${
        ((resumes[0].created_at.getTime() - killedAt) / 1000).toFixed(1)
      } s after the kill (second worker start included), at record ${checkpointRecords}, ` +
      `rows re-read ${reread} (batch ${options.batch})`,
  );
}

async function assertNothingLeftButTheFile(h: Harness, id: number): Promise<void> {
  const uploads = (await h.storage.listIncompleteUploads("exports/")).filter((u) =>
    u.key.includes(`_export-${id}.`)
  );
  assertEquals(uploads, [], "incomplete uploads left behind");
}

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
  name: "kill -9 the worker at ~50% of an occurrences_api_json export: resumes, JSON parses",
  ...serviceTest,
  async fn() {
    // 12,000 records ≈ 46 MB of JSON (the 100,000-row project would be ~380 MB: too heavy for
    // an in-memory moto on a shared 2-core machine); batches of 1,500 ≈ 5.7 MB each.
    const sql = testDatabase(2);
    const seed = await seedDemo(sql, { occurrences: 12_000, seed: 1002 }).finally(() => sql.end());
    // batches of exactly JSON_BATCH records (not shrunk to the default 4 MB byte target), so
    // that every batch is one 5 MiB part and "re-read ≤ one batch" means one part
    await withProcesses(
      { batchSize: JSON_BATCH, env: { EXPORT_BATCH_MB: "64" } },
      async (h, spawn) => {
        const ids = await expectedOccurrenceIds(h.sql, seed.project_id);
        await killAndResume(h, spawn, {
          seed,
          ids,
          format: "occurrences_api_json",
          batch: JSON_BATCH,
        });
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
          // here while its client used node:http2; README, "Running Temporal's TS SDK under
          // Deno"). A death fails the test; nothing restarts it.
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

Deno.test({
  name: "50 concurrent exports (mixed formats and filters) through a worker kill: all SUCCESS",
  ...serviceTest,
  async fn() {
    const sql = testDatabase(2);
    const seed = await seedDemo(sql, { occurrences: 800, seed: 1003 }).finally(() => sql.end());
    await withProcesses({ batchSize: 300 }, async (h, spawn) => {
      const all = await expectedOccurrenceIds(h.sql, seed.project_id);
      const inSet = await expectedOccurrenceIds(h.sql, seed.project_id, seed.collection_id);
      assert(inSet.length > 0 && inSet.length < all.length);
      const victim = await spawn("concurrent-a");
      await spawn("concurrent-b");
      const requests = Array.from({ length: 50 }, (_, i) => ({
        format: i % 2 === 0 ? "occurrences_simple_csv" : "occurrences_api_json",
        filters: i % 3 === 0 ? { collection_id: seed.collection_id } : {},
      }));
      const started = Date.now();
      const exportIds = await Promise.all(
        requests.map((r) => createExport(h, seed, r.format, r.filters)),
      );
      await waitFor("10 exports to finish", async () => {
        const [{ n }] = await h.sql<{ n: number }[]>`
          select count(*)::int as n from data_exports
          where id in ${h.sql(exportIds)} and status = 'SUCCESS'`;
        return n >= 10;
      }, 120_000);
      await victim.kill();
      const finals = [];
      for (const id of exportIds) finals.push(await h.waitForExport(id, seed.token, 240_000));
      note(`50 concurrent exports with a worker kill: ${(Date.now() - started) / 1000} s`);
      for (const [i, done] of finals.entries()) {
        assertEquals(done.status, "SUCCESS", JSON.stringify(done).slice(0, 1000));
        const expected = "collection_id" in requests[i].filters ? inSet.length : all.length;
        assertEquals(done.record_count, expected, `export ${done.id}`);
        const [row] = await h.sql<{ file_key: string; file_size: number }[]>`
          select file_key, file_size from data_exports where id = ${done.id as number}`;
        assertEquals((await h.storage.headObject(row.file_key))?.size, row.file_size);
      }
      // Two files read back in full: one per format, one per filter.
      assertEquals(await fileIds(h, finals[0]), inSet);
      assertEquals(await fileIds(h, finals[1]), all);
      assertEquals((await h.storage.listIncompleteUploads("exports/")).length, 0);
    });
  },
});

Deno.test({
  name: "kill -9 mid-export of every other format (filesystem): resumes to the same bytes",
  ...serviceTest,
  async fn(t) {
    const sql = testDatabase(2);
    const seed = await seedDemo(sql, { occurrences: 12_000, seed: 1002 });
    await sql.end();
    // Small batches: the filesystem backend makes every batch durable, so each export
    // checkpoints many times and the kill lands between checkpoints. The taxa list and the
    // session × taxon counts have only a few hundred rows, the sessions a few dozen, hence their
    // own, smaller batches.
    const groups: { batch: number; formats: string[] }[] = [
      {
        batch: 200,
        formats: [
          "occurrences_ndjson",
          "detections_csv",
          "dwca",
          "tracks_csv",
          "detections_coco",
          "captures_csv",
          "occurrences_parquet",
          "camtrap_dp",
        ],
      },
      { batch: 10, formats: ["taxa_list_csv", "taxon_counts_csv"] },
      // 32 sessions in this seed: one per batch, so the kill lands mid-export
      { batch: 1, formats: ["sessions_csv"] },
    ];
    for (const { batch, formats } of groups) {
      await withProcesses({ batchSize: batch, storage: "fs" }, async (h, spawn) => {
        let worker = await spawn("reference");
        const reference = new Map<string, Record<string, unknown>>();
        for (const format of formats) {
          const id = await createExport(h, seed, format);
          reference.set(format, await h.waitForExport(id, seed.token, 120_000));
        }
        for (const format of formats) {
          await t.step(format, async () => {
            const expected = reference.get(format)!;
            assertEquals(expected.status, "SUCCESS", JSON.stringify(expected).slice(0, 500));
            const id = await createExport(h, seed, format);
            const total = expected.record_count as number;
            await waitForProgress(h, id, Math.max(1, Math.floor(total / 3)));
            await worker.kill();
            const fetchedBeforeKill = await recordsExported(h.sql, id);
            worker = await spawn(`after-${format}`);
            const done = await h.waitForExport(id, seed.token, 120_000);
            assertEquals(done.status, "SUCCESS", JSON.stringify(done).slice(0, 500));
            assertEquals(done.record_count, total);
            const logs = (await jobLogs(h.sql, id)).map((l) => l.message);
            const resume = logs.find((m) => m.startsWith("resumed at"));
            // a tiny export (sessions_csv: 32 rows) can finish before the kill lands: then there
            // is nothing to resume, and the bytes below must still be identical
            if (fetchedBeforeKill < total) {
              assert(resume, `no resume in the job log:\n${logs.join("\n")}`);
            }
            if (format === "dwca") {
              // eml.xml carries its generation time; every other entry must be identical
              const [a, b] = [
                await h.download(expected.file_url as string),
                await h.download(done.file_url as string),
              ];
              for (const entry of ["meta.xml", "event.txt", "occurrence.txt", "multimedia.txt"]) {
                assertEquals(
                  await unzipText(b, entry),
                  await unzipText(a, entry),
                  `${entry} differs`,
                );
              }
              const report = await checkDwca(b);
              assertEquals(report.testzip, null);
              for (const [name, file] of Object.entries(report.files)) {
                assertEquals(file.dangling, 0, `${name}: rows not linked to a core row`);
              }
            } else if (format === "camtrap_dp") {
              // datapackage.json carries its creation time; every table must be identical
              const [a, b] = [
                await h.download(expected.file_url as string),
                await h.download(done.file_url as string),
              ];
              for (const entry of ["deployments.csv", "media.csv", "observations.csv"]) {
                assertEquals(
                  await unzipText(b, entry),
                  await unzipText(a, entry),
                  `${entry} differs`,
                );
              }
              const descriptor = async (zip: Uint8Array) => {
                const { created: _, ...rest } = JSON.parse(
                  await unzipText(zip, "datapackage.json"),
                );
                return rest;
              };
              assertEquals(await descriptor(b), await descriptor(a));
              const report = await readCamtrap(b);
              assertEquals([report.errors, report.profile_errors], [[], []]);
            } else {
              assertEquals(
                done.checksum,
                expected.checksum,
                "file differs from the uninterrupted export",
              );
              assertEquals(done.file_size, expected.file_size);
            }
            note(
              `${format}: killed at ${fetchedBeforeKill}/${total} records (batch ${batch}); ${resume}`,
            );
          });
        }
      });
    }
  },
});
