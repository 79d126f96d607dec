/**
 * Shared by the fault-injection tests (`faults_test.ts`, `faults_formats_test.ts`): worker
 * processes killed with SIGKILL, the 100,000-occurrence project seeded once per file, waits
 * and the exact-file checks.
 */
import { parse } from "csv-parse/sync";
import type { Sql } from "../db/client.ts";
import { jobLogs } from "../db/exports.ts";
import { seedDemo, type SeedResult } from "../db/seed_demo.ts";
import { assert, assertEquals } from "./assert.ts";
import { expectedOccurrenceIds, exportRunsClosed, type Harness, startHarness } from "./harness.ts";
import { testDatabase } from "./support.ts";
import { startWorkerProcess, type WorkerProcess } from "./worker_process.ts";

/** ~448 bytes per CSV row: 12,500 rows ≈ 5.6 MB ≥ one 5 MiB part, so every batch is a part. */
export const CSV_BATCH = 12_500;
/** ~3.8 KB per JSON record: 1,500 records ≈ 5.7 MB ≥ one 5 MiB part. */
export const JSON_BATCH = 1_500;
export const HEARTBEAT_SECONDS = "5";

export function note(message: string): void {
  console.log(`[faults] ${message}`);
}

export interface SharedProject {
  seed: SeedResult;
  ids: number[];
}

export let bigProject: Promise<SharedProject> | undefined;
/** The 100,000-occurrence project, seeded once for the whole file. */
export function bigProjectOnce(): Promise<SharedProject> {
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

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Polls `probe` until it returns true; throws after `timeoutMs`. */
export async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
}

export async function createExport(
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
export async function recordsExported(sql: Sql, id: number): Promise<number> {
  const [row] = await sql<{ n: number | null }[]>`
    select (select (p->>'value')::int from jsonb_array_elements(s->'params') p
            where p->>'key' = 'records_exported') as n
    from jobs j, jsonb_array_elements(j.progress->'stages') s
    where j.data_export_id = ${id} and s->>'key' = 'data_export'`;
  return row?.n ?? 0;
}

export async function waitForProgress(
  h: Harness,
  id: number,
  records: number,
  timeoutMs = 120_000,
) {
  await waitFor(
    `export ${id} to pass ${records} records`,
    async () => (await recordsExported(h.sql, id)) >= records,
    timeoutMs,
  );
}

export async function exportStatus(sql: Sql, id: number): Promise<string | undefined> {
  const [row] = await sql<{ status: string }[]>`select status from data_exports where id = ${id}`;
  return row?.status;
}

/** Downloads a finished export and returns the ids it holds, in file order. */
export async function fileIds(h: Harness, done: Record<string, unknown>): Promise<number[]> {
  const text = new TextDecoder().decode(await h.download(done.file_url as string));
  if (done.format === "occurrences_api_json") {
    return (JSON.parse(text) as { id: number }[]).map((o) => o.id);
  }
  const rows: string[][] = parse(text, { on_record: (record: string[]) => [record[0]] });
  assertEquals(rows[0], ["id"]);
  return rows.slice(1).map((r) => Number(r[0]));
}

/** The file holds exactly `expected`, in order, each once; the row agrees. */
export async function assertExactFile(
  h: Harness,
  done: Record<string, unknown>,
  expected: number[],
) {
  assertEquals(done.status, "SUCCESS", JSON.stringify(done).slice(0, 2000));
  const ids = await fileIds(h, done);
  assertEquals(ids.length, expected.length, "record count in the file");
  assertEquals(new Set(ids).size, ids.length, "a record was written twice");
  assertEquals(ids, expected);
  assertEquals(done.record_count, expected.length);
}

/** Nothing of the export is left in storage: no object, no incomplete upload. */
export async function assertNothingLeft(h: Harness, id: number): Promise<void> {
  await exportRunsClosed(h, id); // its run cleans up after the row reads ended
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
export async function activityAttempts(
  h: Harness,
  workflowId: string,
): Promise<Record<string, number>> {
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
export async function withProcesses(
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
export async function killAndResume(
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
  // The checkpoint of the batch written last may not have reached the server when the process
  // died: the SDK sends heartbeats at most every 250 ms (maxHeartbeatThrottleInterval), later
  // on a loaded machine (seen: 2 batches of 12,500 under load ~9). Never more than that.
  assert(
    reread >= 0 && reread <= 2 * options.batch,
    `rows re-read: ${reread} > 2 × ${options.batch}`,
  );
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

export async function assertNothingLeftButTheFile(h: Harness, id: number): Promise<void> {
  await exportRunsClosed(h, id);
  const uploads = (await h.storage.listIncompleteUploads("exports/")).filter((u) =>
    u.key.includes(`_export-${id}.`)
  );
  assertEquals(uploads, [], "incomplete uploads left behind");
}
