/**
 * The state transitions against a real PostgreSQL database (db/export_transitions.ts,
 * db/export_queue.ts): a cancel is final for the run it cancelled, even one admitted by a peer's
 * poll; an export that ended is never marked SUCCESS by a late `saveStats`; a late write of an
 * earlier run (progress, count, file) changes nothing on the retried export.
 */
import { assertEquals } from "../tests/assert.ts";
import { createUser } from "../tests/fixtures/access.ts";
import { requireEnv, serviceTest } from "../tests/support.ts";
import { connectDatabase, type Sql } from "./client.ts";
import { admitExport } from "./export_queue.ts";
import {
  markExportEnded,
  markExportPending,
  markExportStarted,
  markExportSucceeded,
  recordExportFile,
} from "./export_transitions.ts";
import { insertExport, jobLogs, type JobProgress, recordCount } from "./exports.ts";
import { setStage, STAGES, updateRunProgress } from "./job_progress.ts";

/** A new user and project with `count` PENDING exports of that user, oldest first. */
async function pendingExports(sql: Sql, count: number): Promise<number[]> {
  const [userId] = await createUser(sql, "transitions");
  const slug = `transitions-${crypto.randomUUID().slice(0, 8)}`;
  const [project] = await sql<{ id: number }[]>`
    insert into projects (name, slug, draft, owner_id)
    values (${slug}, ${slug}, false, ${userId}) returning id`;
  const ids: number[] = [];
  for (let i = 0; i < count; i++) {
    const { id } = await insertExport(sql, {
      userId,
      projectId: Number(project.id),
      format: "occurrences_simple_csv",
      filters: {},
      filtersDisplay: {},
    });
    ids.push(Number(id));
  }
  return ids;
}

async function statusOf(sql: Sql, id: number): Promise<{ status: string; run_id: string | null }> {
  const [row] = await sql<{ status: string; run_id: string | null }[]>`
    select status, run_id from data_exports where id = ${id}`;
  return row;
}

const caps = { perUser: 2, perProject: 0 };
const started = (runId: string) => ({
  runId,
  workflowId: null,
  settingsKey: "test",
  message: `export started: run ${runId}`,
});

Deno.test({
  name: "an export admitted by a peer's poll records its own run: its cancel is final",
  ...serviceTest,
  async fn() {
    const sql = connectDatabase(requireEnv("TEST_DATABASE_URL"), { max: 2 });
    try {
      const [a, b, c] = await pendingExports(sql, 3);
      // A's poll admits A and B (two slots for the user); C waits
      assertEquals(
        (await admitExport(sql, a, { caps, runId: "run-A", workflowId: null })).state,
        "admitted",
      );
      assertEquals((await statusOf(sql, b)).status, "STARTED");
      // B's own poll finds it admitted, and records B's run
      assertEquals(
        (await admitExport(sql, b, { caps, runId: "run-B", workflowId: null })).state,
        "admitted",
      );
      assertEquals(await statusOf(sql, b), { status: "STARTED", run_id: "run-B" });
      // B's run is cancelled while its resolveExporter runs: REVOKED first, its late
      // markExportStarted after
      assertEquals(Boolean(await markExportEnded(sql, b, { status: "REVOKED" })), true);
      assertEquals(await markExportStarted(sql, b, started("run-B")), false);
      assertEquals((await statusOf(sql, b)).status, "REVOKED");
      // B's slot is free: C is admitted
      assertEquals(
        (await admitExport(sql, c, { caps, runId: "run-C", workflowId: null })).state,
        "admitted",
      );
      assertEquals(await statusOf(sql, c), { status: "STARTED", run_id: "run-C" });
    } finally {
      await sql.end();
    }
  },
});

Deno.test({
  name: "a REVOKED export is reopened only by a retry (PENDING first), never by a late run",
  ...serviceTest,
  async fn() {
    const sql = connectDatabase(requireEnv("TEST_DATABASE_URL"), { max: 2 });
    try {
      const [id] = await pendingExports(sql, 1);
      assertEquals(await markExportStarted(sql, id, started("run-1")), true);
      // cancelled through the API's "no open run" branch while a retry started a new run (or
      // before a request's first run started): that run must not reopen it
      assertEquals(
        Boolean(await markExportEnded(sql, id, { status: "REVOKED", onlyRunning: true })),
        true,
      );
      assertEquals(await markExportStarted(sql, id, started("run-2")), false);
      assertEquals(await statusOf(sql, id), { status: "REVOKED", run_id: "run-1" });
      // a retry sets it PENDING first: then its run starts it
      assertEquals(await markExportPending(sql, id), true);
      assertEquals(await markExportStarted(sql, id, started("run-3")), true);
      assertEquals(await statusOf(sql, id), { status: "STARTED", run_id: "run-3" });
    } finally {
      await sql.end();
    }
  },
});

Deno.test({
  name: "markExportSucceeded marks only a STARTED export: a REVOKED or FAILURE one stays ended",
  ...serviceTest,
  async fn() {
    const sql = connectDatabase(requireEnv("TEST_DATABASE_URL"), { max: 2 });
    try {
      const stats = { records: 3, fileSize: 10, checksum: "sha256:ab", fileUrl: "http://x/" };
      for (const status of ["REVOKED", "FAILURE"] as const) {
        const [id] = await pendingExports(sql, 1);
        assertEquals(await markExportStarted(sql, id, started(`run-${status}`)), true);
        assertEquals(Boolean(await markExportEnded(sql, id, { status, message: "ended" })), true);
        // (a string: before this rule the outcome had no "ended")
        assertEquals(await markExportSucceeded(sql, id, stats) as string, "ended");
        const [row] = await sql<{ status: string; checksum: string | null }[]>`
          select status, checksum from data_exports where id = ${id}`;
        assertEquals([row.status, row.checksum], [status, null]);
        const [job] = await sql<{ status: string }[]>`
          select status from jobs where data_export_id = ${id}`;
        assertEquals(job.status, status);
        const logs = (await jobLogs(sql, id)).map((l) => l.message);
        assertEquals(logs.filter((m) => m.startsWith("export finished")), []);
      }
    } finally {
      await sql.end();
    }
  },
});

Deno.test({
  name: "a file or upload is recorded only on a STARTED export, never after its cancel",
  ...serviceTest,
  async fn() {
    const sql = connectDatabase(requireEnv("TEST_DATABASE_URL"), { max: 2 });
    try {
      const [id] = await pendingExports(sql, 1);
      const file = { fileKey: `exports/${id}.csv`, uploadId: "upload-1", runId: "run-1" };
      const files = async () =>
        (await sql<{ file_key: string | null; upload_id: string | null }[]>`
          select file_key, upload_id from data_exports where id = ${id}`)[0];
      // PENDING: not yet
      assertEquals(await recordExportFile(sql, id, file), false);
      assertEquals(await markExportStarted(sql, id, started("run-1")), true);
      assertEquals(await recordExportFile(sql, id, file), true);
      assertEquals(await files(), { file_key: file.fileKey, upload_id: "upload-1" });
      // the cancel's transition returns what was recorded (its cleanup removes it) …
      assertEquals(await markExportEnded(sql, id, { status: "REVOKED" }), {
        fileKey: file.fileKey,
        uploadId: "upload-1",
      });
      // … and a write still in flight (finishUpload) records nothing after it
      assertEquals(await recordExportFile(sql, id, { ...file, uploadId: null }), false);
      assertEquals((await files()).file_key, null);
    } finally {
      await sql.end();
    }
  },
});

Deno.test({
  name: "a late write of an earlier run changes nothing on the retried export",
  ...serviceTest,
  async fn() {
    const sql = connectDatabase(requireEnv("TEST_DATABASE_URL"), { max: 2 });
    try {
      const [id] = await pendingExports(sql, 1);
      const exported = (records: number) => (progress: JobProgress) =>
        setStage(progress, STAGES.export.key, { params: { records_exported: records } });
      const state = async () => {
        const [row] = await sql<
          { progress: JobProgress; file_key: string | null; source_version: number | null }[]
        >`
          select j.progress, e.file_key, e.source_version from data_exports e
          join jobs j on j.data_export_id = e.id where e.id = ${id}`;
        const stage = row.progress.stages.find((s) => s.key === STAGES.export.key)!;
        const param = (key: string) => stage.params.find((p) => p.key === key)?.value ?? null;
        return {
          records: param("records_exported"),
          total: param("total_records"),
          fileKey: row.file_key,
          version: row.source_version === null ? null : Number(row.source_version),
        };
      };
      // run 1 writes while it owns the export, then fails; a retry starts run 2
      assertEquals(await markExportStarted(sql, id, started("run-1")), true);
      assertEquals(await updateRunProgress(sql, id, { runId: "run-1" }, exported(10)), true);
      assertEquals(Boolean(await markExportEnded(sql, id, { status: "FAILURE" })), true);
      assertEquals(await markExportPending(sql, id), true);
      // PENDING: nobody's to write, run 1 least of all
      assertEquals(await updateRunProgress(sql, id, { runId: "run-1" }, exported(11)), false);
      assertEquals(await markExportStarted(sql, id, started("run-2")), true);
      const versions = { project: "7", global: "8" };
      assertEquals(await recordCount(sql, id, { total: 50, versions, runId: "run-2" }), true);
      assertEquals(await updateRunProgress(sql, id, { runId: "run-2" }, exported(5)), true);
      const before = await state();
      assertEquals(before, { records: 5, total: 50, fileKey: null, version: 7 });
      // run 1's late writes (an activity still in flight after its run closed) change nothing
      assertEquals(await updateRunProgress(sql, id, { runId: "run-1" }, exported(99)), false);
      assertEquals(
        await recordCount(sql, id, {
          total: 3,
          versions: { project: "1", global: "1" },
          runId: "run-1",
        }),
        false,
      );
      assertEquals(
        await recordExportFile(sql, id, { fileKey: "old.csv", uploadId: null, runId: "run-1" }),
        false,
      );
      assertEquals(await state(), before);
      // run 2's go on
      assertEquals(await updateRunProgress(sql, id, { runId: "run-2" }, exported(20)), true);
      assertEquals((await state()).records, 20);
    } finally {
      await sql.end();
    }
  },
});
