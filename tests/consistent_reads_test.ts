/**
 * Every read tells the truth (docs/operations.md, "Rules every read keeps"): a state change is one
 * transaction, a file is one snapshot, and reuse returns only what would be produced again.
 * Against the real services: a poller reading exports hundreds of times across SUCCESS, FAILURE
 * and REVOKED; a worker killed with SIGKILL between the statements of every state transition; a
 * writer inserting, moving and deleting rows while every format streams (files checked by
 * independent readers); settings changes, lost files and concurrent identical requests.
 */
import { parse } from "csv-parse/sync";
import type { Sql } from "../db/client.ts";
import { jobLogs } from "../db/exports.ts";
import { seedDemo, type SeedResult } from "../db/seed_demo.ts";
import { getExporter, supportedFormats } from "../registry/mod.ts";
import { assert, assertEquals } from "./assert.ts";
import { readCamtrap } from "./camtrap.ts";
import { checkDwca } from "./dwca.ts";
import { type Harness, startHarness, workflowIdsOf } from "./harness.ts";
import { holdLockUntilBlocked } from "./lock_holder.ts";
import { readParquet } from "./parquet.ts";
import { runPythonReader } from "./readers.ts";
import { serviceTest } from "./support.ts";
import { startWorkerProcess } from "./worker_process.ts";

type ExportJson = Record<string, unknown> & {
  id: number;
  status: string;
  record_count: number;
  error: string | null;
  file_url: string | null;
  job: {
    status: string;
    progress: {
      summary: { status: string; progress: number };
      stages: {
        key: string;
        status: string;
        progress: number;
        params: { key: string; value: unknown }[];
      }[];
      errors: string[];
    };
  };
};

const ENDED = ["SUCCESS", "FAILURE", "REVOKED"];

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

/** What one read of an export says that contradicts itself (empty: consistent). */
function contradictions(e: ExportJson): string[] {
  const found: string[] = [];
  const say = (what: string) => found.push(`export ${e.id} (${e.status}): ${what}`);
  const { job } = e;
  if (job.status !== e.status) say(`job.status ${job.status}`);
  if (job.progress.summary.status !== e.status) {
    say(`summary.status ${job.progress.summary.status}`);
  }
  const open = job.progress.stages.filter((s) => ["PENDING", "STARTED"].includes(s.status));
  if (ENDED.includes(e.status) && open.length > 0) {
    say(`stages still ${open.map((s) => `${s.key}=${s.status}`).join(", ")}`);
  }
  if (e.status === "PENDING" && job.progress.stages.some((s) => s.status !== "PENDING")) {
    say("a stage moved before the export started");
  }
  if (e.status === "SUCCESS") {
    const param = (key: string) =>
      job.progress.stages.flatMap((s) => s.params).find((p) => p.key === key)?.value;
    if (job.progress.summary.progress !== 1) say(`progress ${job.progress.summary.progress}`);
    if (job.progress.stages.some((s) => s.status !== "SUCCESS" || s.progress !== 1)) {
      say("a stage is not SUCCESS at 1");
    }
    if (param("records_exported") !== e.record_count) {
      say(`records_exported ${param("records_exported")} ≠ record_count ${e.record_count}`);
    }
    if (param("total_records") !== e.record_count) {
      say(`total_records ${param("total_records")} ≠ record_count ${e.record_count}`);
    }
    if (!e.file_url) say("no file_url");
  }
  if (e.status === "FAILURE") {
    if (!e.error) say("no error");
    // a failed export has no file: nothing may describe one
    if (e.checksum !== null) say(`checksum ${e.checksum} without a file`);
    const urls = job.progress.stages.flatMap((s) => s.params)
      .filter((p) => p.key === "file_url" && p.value !== null);
    if (urls.length > 0) say("a job file_url without a file");
    if (job.progress.stages.every((s) => s.status === "SUCCESS")) say("every stage SUCCESS");
  }
  if (e.status !== "SUCCESS" && e.file_url) say("a file_url without a file");
  return found;
}

async function readExport(h: Harness, id: number, token: string): Promise<ExportJson> {
  const res = await h.api("GET", `/api/v2/exports/${id}/`, { token });
  assertEquals(res.status, 200);
  return await res.json();
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

/** A capture set of the project holding every capture (an export filter that can be deleted). */
async function createCaptureSet(sql: Sql, projectId: number): Promise<number> {
  const [set] = await sql<{ id: number }[]>`
    insert into source_image_collections (project_id, name) values (${projectId}, 'doomed')
    returning id`;
  await sql`
    insert into source_image_collection_images (collection_id, source_image_id)
    select ${set.id}, id from source_images where project_id = ${projectId}`;
  return set.id;
}

/**
 * Cancels export `id` while it streams, however fast it streams and however slow the machine:
 * once a first batch's progress is written (its `data_export` stage between 0 and 1), the test
 * holds the export's job row (`for update`), so its next job write (the next batch's progress)
 * waits; the cancel is sent, and the row is let go once the workflow has taken the cancel (its
 * history shows a workflow task completed after the cancel request; the export cannot have
 * reached `saveStats`, which only a later task schedules). The activity in flight is then
 * cancelled and the export ends REVOKED. Throws if the export ends unseen, is past its last
 * batch once held, or the cancel is not taken, within 120 s.
 */
async function cancelWhileStreaming(h: Harness, id: number, token: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  const streamed = async (q: Sql) => {
    const [row] = await q<{ status: string; streamed: number | null }[]>`
      select e.status, (
        select (s ->> 'progress')::float8 from jsonb_array_elements(j.progress -> 'stages') s
        where s ->> 'key' = 'data_export') as streamed
      from data_exports e join jobs j on j.data_export_id = e.id where e.id = ${id}`;
    return row;
  };
  for (;;) {
    const row = await streamed(h.sql);
    if (row.status === "STARTED" && (row.streamed ?? 0) > 0) break;
    if (ENDED.includes(row.status)) throw new Error(`export ${id} ended ${row.status} unseen`);
    if (Date.now() > deadline) throw new Error(`export ${id} did not stream within 120 s`);
    await sleep(5);
  }
  const holder = await h.sql.reserve();
  try {
    await holder`begin`;
    await holder`select 1 from jobs where data_export_id = ${id} for update`;
    const held = await streamed(holder);
    assert(held.status === "STARTED" && held.streamed! < 1, `export ${id} streamed too fast`);
    const res = await h.api("POST", `/api/v2/exports/${id}/cancel/`, { token });
    assertEquals(res.status, 202);
    const handle = h.temporal.client.workflow.getHandle((await workflowIdsOf(h.sql, id)).export);
    for (;;) {
      const events = (await handle.fetchHistory()).events ?? [];
      const requested = events.findIndex((e) => e.workflowExecutionCancelRequestedEventAttributes);
      if (
        requested >= 0 &&
        events.slice(requested).some((e) => e.workflowTaskCompletedEventAttributes)
      ) break;
      if (Date.now() > deadline) throw new Error(`the cancel of export ${id} was not taken`);
      await sleep(50);
    }
  } finally {
    await holder`rollback`.catch(() => {});
    holder.release();
  }
}

Deno.test({
  name: "a poller reading exports across SUCCESS, FAILURE and REVOKED never sees a contradiction",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "s3", batchSize: 40, worker: false });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 400, seed: 2301 });
      const doomed = await createCaptureSet(h.sql, seed.project_id);
      const expected = new Map<number, string>();
      for (
        const format of [
          "occurrences_simple_csv",
          "occurrences_api_json",
          "dwca",
          "detections_coco",
          "sessions_csv",
        ]
      ) {
        expected.set(await createExport(h, seed, format), "SUCCESS");
      }
      // empty: no occurrence is first seen in 2100
      expected.set(
        await createExport(h, seed, "occurrences_simple_csv", { date_start: "2100-01-01" }),
        "SUCCESS",
      );
      // FAILURE: the capture set the filters name is deleted before any worker runs
      for (const format of ["occurrences_simple_csv", "dwca"]) {
        expected.set(await createExport(h, seed, format, { collection_id: doomed }), "FAILURE");
      }
      await h.sql`delete from source_image_collections where id = ${doomed}`;
      // REVOKED before it starts
      const early = await createExport(h, seed, "occurrences_api_json");
      expected.set(early, "REVOKED");
      const cancel = await h.api("POST", `/api/v2/exports/${early}/cancel/`, { token: seed.token });
      assertEquals(cancel.status, 202);
      // REVOKED while it streams (cancelled between two batches: cancelWhileStreaming)
      const late = await createExport(h, seed, "occurrences_api_json");
      expected.set(late, "REVOKED");

      const seen: string[] = [];
      let reads = 0;
      const finals = new Map<number, ExportJson>();
      await h.startWorker();
      // a failure is thrown after the poll (an unawaited rejection would end the file)
      const lateCancel = cancelWhileStreaming(h, late, seed.token).then(() => null, (e) => e);
      const deadline = Date.now() + 180_000;
      // until every export has ended, then on (an ended export must stay consistent)
      while ((finals.size < expected.size || reads < 300) && Date.now() < deadline) {
        for (const id of expected.keys()) {
          const e = await readExport(h, id, seed.token);
          reads++;
          seen.push(...contradictions(e));
          if (ENDED.includes(e.status)) finals.set(id, e);
        }
        const list = await h.api(
          "GET",
          `/api/v2/exports/?project_id=${seed.project_id}&limit=100`,
          {
            token: seed.token,
          },
        );
        reads++;
        for (const e of (await list.json()).results as ExportJson[]) {
          seen.push(...contradictions(e));
        }
      }
      const cancelError = await lateCancel;
      if (cancelError) throw cancelError;
      console.log(`[reads] ${reads} reads of ${expected.size} exports`);
      assertEquals(seen, []);
      assert(reads >= 200, `only ${reads} reads`);
      for (const [id, status] of expected) {
        assertEquals(finals.get(id)?.status, status, `export ${id}`);
      }
      // ended exports stay consistent
      for (const id of expected.keys()) {
        assertEquals(contradictions(await readExport(h, id, seed.token)), []);
      }
    } finally {
      await h.close();
    }
  },
});

/**
 * Holds the job row of export `exportId` locked until a worker's transaction named
 * `ami-exports transition <name>` (db/export_transitions.ts) waits on it: that transaction has written the
 * export row but not its job. Then kills the worker with SIGKILL and lets the lock go: the
 * transaction never commits. Other writers blocked meanwhile (progress reports) are let through.
 */
async function killBetweenStatements(
  h: Harness,
  exportId: number,
  transition: string,
  kill: () => Promise<void>,
  onLocked?: () => Promise<void>,
): Promise<void> {
  await holdLockUntilBlocked(h.sql, {
    lock: (locker) => locker`select 1 from jobs where data_export_id = ${exportId} for update`,
    label: `the job row of export ${exportId}`,
    waiter: { applicationName: `ami-exports transition ${transition}` },
    letOthersPass: true,
    onLocked, // e.g. start the worker only once the row is held
    action: kill,
    timeoutMs: 120_000,
  });
}

Deno.test({
  name: "kill -9 between the statements of every state transition leaves a consistent state",
  ...serviceTest,
  async fn() {
    const h = await startHarness({
      storage: "s3",
      worker: false,
      env: { HEARTBEAT_TIMEOUT_SECONDS: "5" },
    });
    let worker = await startWorkerProcess(h.env, { name: "transitions-0" });
    let n = 0;
    try {
      const seed = await seedDemo(h.sql, { occurrences: 60, seed: 2302 });
      const cases: {
        transition: string;
        before: string;
        after: string;
        start(): Promise<number>;
        onLocked?(): Promise<void>;
      }[] = [
        {
          transition: "STARTED",
          before: "PENDING",
          after: "SUCCESS",
          // admission is quick: no worker runs until the job's row is held (else the export
          // can be admitted before the test holds it)
          async start() {
            await worker.stop(5_000);
            return await createExport(h, seed, "occurrences_simple_csv");
          },
          async onLocked() {
            worker = await startWorkerProcess(h.env, { name: `transitions-${++n}` });
          },
        },
        {
          transition: "SUCCESS",
          before: "STARTED",
          after: "SUCCESS",
          start: () => createExport(h, seed, "dwca"),
        },
        {
          transition: "FAILURE",
          // the worker may resolve the export before the capture set is deleted: then it fails
          // from STARTED (in exportRecords), else from PENDING (in resolveExporter)
          before: "PENDING or STARTED",
          after: "FAILURE",
          async start() {
            const doomed = await createCaptureSet(h.sql, seed.project_id);
            const id = await createExport(h, seed, "occurrences_simple_csv", {
              collection_id: doomed,
            });
            await h.sql`delete from source_image_collections where id = ${doomed}`;
            return id;
          },
        },
        {
          transition: "REVOKED",
          before: "PENDING or STARTED",
          after: "REVOKED",
          // as for STARTED, no worker runs until the job's row is held: on a quiet machine the
          // worker took the cancel and ended the export REVOKED 0.36 s after it was requested,
          // before the row was held, and the transition never came again
          async start() {
            await worker.stop(5_000);
            const id = await createExport(h, seed, "occurrences_api_json");
            const res = await h.api("POST", `/api/v2/exports/${id}/cancel/`, {
              token: seed.token,
            });
            assertEquals(res.status, 202);
            return id;
          },
          async onLocked() {
            worker = await startWorkerProcess(h.env, { name: `transitions-${++n}` });
          },
        },
      ];
      for (const c of cases) {
        const id = await c.start();
        await killBetweenStatements(h, id, c.transition, () => worker.kill(), c.onLocked);
        // the killed transaction never committed: the export and its job agree
        const between = await readExport(h, id, seed.token);
        assertEquals(contradictions(between), [], `after kill in ${c.transition}`);
        assert(c.before.split(" or ").includes(between.status), `after kill in ${c.transition}`);
        worker = await startWorkerProcess(h.env, { name: `transitions-${++n}` });
        await waitFor(`export ${id} to end`, async () => {
          const e = await readExport(h, id, seed.token);
          return ENDED.includes(e.status);
        }, 120_000);
        const done = await readExport(h, id, seed.token);
        assertEquals(done.status, c.after, `${c.transition}: ${done.error}`);
        assertEquals(contradictions(done), []);
      }
    } finally {
      await worker.stop(5_000).catch(() => {});
      await h.close();
    }
  },
});

/** Inserts, moves and deletes rows of project `projectId` until `stop()` says so. */
async function writeWhile(
  sql: Sql,
  projectId: number,
  stop: () => boolean,
): Promise<{ inserted: number; moved: number; deleted: number }> {
  const done = { inserted: 0, moved: 0, deleted: 0 };
  const [ref] = await sql<{ taxon_id: number; algorithm_id: number }[]>`
    select c.taxon_id, c.algorithm_id from classifications c
    join detections d on d.id = c.detection_id join occurrences o on o.id = d.occurrence_id
    where o.project_id = ${projectId} limit 1`;
  let round = 0;
  while (!stop()) {
    round++;
    await sql.begin(async (tx) => {
      // a new station, session, capture, occurrence, detection and classification
      const [dep] = await tx<{ id: number }[]>`
        insert into deployments (project_id, name, latitude, longitude)
        values (${projectId}, ${`writer station ${round}`}, 45.5, -73.5) returning id`;
      const [ev] = await tx<{ id: number }[]>`
        insert into events (project_id, deployment_id, start, "end")
        values (${projectId}, ${dep.id}, '2023-06-01T01:00:00Z', '2023-06-01T05:00:00Z')
        returning id`;
      const [img] = await tx<{ id: number }[]>`
        insert into source_images (project_id, deployment_id, event_id, path, public_base_url,
          timestamp, width, height)
        values (${projectId}, ${dep.id}, ${ev.id}, ${`writer/${round}.jpg`},
          'https://images.example.org/', '2023-06-01T02:00:00Z', 4096, 2160)
        returning id`;
      const [occ] = await tx<{ id: number }[]>`
        insert into occurrences (project_id, deployment_id, event_id, determination_id,
          determination_score)
        values (${projectId}, ${dep.id}, ${ev.id}, ${ref.taxon_id}, 0.9) returning id`;
      const [det] = await tx<{ id: number }[]>`
        insert into detections (occurrence_id, source_image_id, bbox, timestamp)
        values (${occ.id}, ${img.id}, '{10,10,200,200}', '2023-06-01T02:00:00Z') returning id`;
      await tx`
        insert into classifications (detection_id, taxon_id, algorithm_id, score)
        values (${det.id}, ${ref.taxon_id}, ${ref.algorithm_id}, 0.9)`;
    });
    done.inserted++;
    // an occurrence moved to another session and station
    const moved = await sql`
      update occurrences o set event_id = e.id, deployment_id = e.deployment_id
      from (select id, deployment_id from events where project_id = ${projectId}
            order by random() limit 1) e
      where o.id = (select id from occurrences where project_id = ${projectId}
                    order by random() limit 1)`;
    done.moved += moved.count;
    // an occurrence deleted, and every few rounds a session and a station with what they hold
    const deleted = await sql`
      delete from occurrences where id = (
        select id from occurrences where project_id = ${projectId} order by random() limit 1)`;
    done.deleted += deleted.count;
    if (round % 5 === 0) {
      await sql`
        delete from events where id = (
          select id from events where project_id = ${projectId} order by random() limit 1)`;
    }
    if (round % 9 === 0) {
      await sql`
        delete from deployments where id = (
          select id from deployments where project_id = ${projectId} order by random() limit 1)`;
    }
    await sleep(15);
  }
  return done;
}

/** Rows of the file that `record_count` counts, and references that do not resolve. */
async function readBack(
  format: string,
  bytes: Uint8Array,
): Promise<{ records: number; dangling: string[] }> {
  const text = () => new TextDecoder().decode(bytes);
  const csvRows = () => (parse(text(), { columns: true, bom: true }) as unknown[]).length;
  switch (format) {
    case "occurrences_api_json":
      return { records: (JSON.parse(text()) as unknown[]).length, dangling: [] };
    case "occurrences_ndjson":
      return { records: text().split("\n").filter((l) => l.length > 0).length, dangling: [] };
    case "occurrences_parquet":
      return { records: (await readParquet(bytes)).pyarrow.rows.length, dangling: [] };
    case "dwca": {
      const report = await checkDwca(bytes);
      const dangling = Object.entries(report.files).filter(([, f]) => f.dangling > 0)
        .map(([name, f]) => `${name}: ${f.dangling}`);
      if (report.duplicate_core_ids > 0) {
        dangling.push(`${report.duplicate_core_ids} duplicate ids`);
      }
      return { records: report.files["occurrence.txt"].rows, dangling };
    }
    case "camtrap_dp": {
      const report = await readCamtrap(bytes);
      const dangling = [
        ...report.errors,
        ...Object.entries(report.dangling).filter(([, n]) => n > 0).map(([k, n]) => `${k}: ${n}`),
      ];
      return { records: report.levels.event ?? 0, dangling };
    }
    case "detections_coco": {
      const coco = await runPythonReader("coco_check.py", [bytes], {
        modules: ["pycocotools"],
        packages: ["pycocotools"],
        suffix: ".json",
      }) as {
        annotations: number;
        anns: Record<string, { image_id: string; category_id: string }>;
        imgs: Record<string, unknown>;
        cats: Record<string, unknown>;
      };
      const dangling = Object.entries(coco.anns).flatMap(([id, a]) => [
        ...(a.image_id in coco.imgs ? [] : [`annotation ${id}: image ${a.image_id}`]),
        ...(a.category_id in coco.cats ? [] : [`annotation ${id}: category ${a.category_id}`]),
      ]);
      return { records: Number(coco.annotations), dangling };
    }
    default:
      return { records: csvRows(), dangling: [] };
  }
}

Deno.test({
  name: "every format is one snapshot while a writer inserts, moves and deletes rows",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "s3", batchSize: 25 });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 600, seed: 2303 });
      // the image formats read the same snapshot through the same driver, but fetch their images
      // over HTTP from allowed hosts, which the demo captures are not on (every image would be
      // skipped and the export refused): registry/formats/crops_by_taxon_test.ts and
      // registry/formats/yolo_dataset_test.ts cover them
      const formats = supportedFormats().filter((f) => !getExporter(f)?.fetchesImages);
      const ids = new Map<string, number>();
      for (const format of formats) ids.set(format, await createExport(h, seed, format));
      let ended = false;
      const writer = writeWhile(h.sql, seed.project_id, () => ended);
      const finals = new Map<string, ExportJson>();
      try {
        await waitFor("every export to end", async () => {
          for (const [format, id] of ids) {
            if (finals.has(format)) continue;
            const e = await readExport(h, id, seed.token);
            if (ENDED.includes(e.status)) finals.set(format, e);
          }
          return finals.size === ids.size;
        }, 300_000);
      } finally {
        ended = true;
      }
      const wrote = await writer;
      console.log(`[snapshot] writer: ${JSON.stringify(wrote)}`);
      assert(wrote.inserted >= 5 && wrote.moved >= 5 && wrote.deleted >= 5, JSON.stringify(wrote));
      for (const [format, e] of finals) {
        assertEquals(e.status, "SUCCESS", `${format}: ${e.error}`);
        assertEquals(contradictions(e), [], format);
        const bytes = await h.download(e.file_url!);
        const read = await readBack(format, bytes);
        assertEquals(read.dangling, [], `${format}: references that do not resolve`);
        assertEquals(read.records, e.record_count, `${format}: record_count vs rows`);
      }
      // the data did change under the exports: a fresh export now differs from the first
      const again = await createExport(h, seed, "occurrences_simple_csv");
      const fresh = await h.waitForExport(again, seed.token, 120_000);
      assert(
        fresh.checksum !== finals.get("occurrences_simple_csv")!.checksum,
        "the writer changed nothing an export sees",
      );
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "reuse returns only what would be produced again, and identical requests share one export",
  ...serviceTest,
  async fn(t) {
    const h = await startHarness({ storage: "s3" });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 120, seed: 2304 });
      const body = { project: seed.project_id, format: "occurrences_api_json" };
      const post = async (app: { request: Harness["app"]["request"] }, extra = {}) => {
        const res = await app.request("/api/v2/exports/", {
          method: "POST",
          headers: { Authorization: `Token ${seed.token}`, "Content-Type": "application/json" },
          body: JSON.stringify({ ...body, ...extra }),
        });
        const json = await res.json();
        return { status: res.status, id: json.id as number, json };
      };

      await t.step("identical requests arriving together share one export", async () => {
        // together: all eight before the first one's run fixes its reads (awaitReplica), after
        // which, until it has counted, reuse hands it out no more (read-your-writes,
        // docs/replica.md); with the worker polling, a busy machine let the run get there
        // between two of the eight, and the next got an export of its own (201)
        await h.stopWorker();
        const all = await Promise.all(Array.from({ length: 8 }, () => post(h.app)));
        await h.startWorker();
        assertEquals(new Set(all.map((r) => r.id)).size, 1, JSON.stringify(all.map((r) => r.id)));
        assertEquals(all.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 200, 200, 201]);
        const [{ n }] = await h.sql<{ n: number }[]>`
          select count(*)::int as n from data_exports where project_id = ${seed.project_id}`;
        assertEquals(n, 1);
        const done = await h.waitForExport(all[0].id, seed.token);
        assertEquals(done.status, "SUCCESS");
        // after it ended, another identical request reuses its file
        const again = await post(h.app);
        assertEquals([again.status, again.id], [200, all[0].id]);
      });

      await t.step(
        "a settings change (TIME_ZONE, PLATFORM_URL) is never answered with an old file",
        async () => {
          const first = await post(h.app);
          assertEquals(first.status, 200);
          for (
            const env of <Record<string, string>[]> [{ TIME_ZONE: "America/New_York" }, {
              PLATFORM_URL: "https://other.example.org",
            }]
          ) {
            const other = await startHarness({ storage: "s3", env });
            try {
              // the other deployment shares the database, not the bucket: its own worker exports
              const theirs = await post(other.app);
              assertEquals(
                theirs.status,
                201,
                `${JSON.stringify(env)}: ${JSON.stringify(theirs.json)}`,
              );
              const done = await other.waitForExport(theirs.id, seed.token);
              assertEquals(done.status, "SUCCESS");
              const original = await readExport(h, first.id, seed.token);
              assert(done.checksum !== original.checksum, `${JSON.stringify(env)} changed no byte`);
              // and under those settings, that export is the one reused
              const again = await post(other.app);
              assertEquals([again.status, again.id], [200, theirs.id]);
              // the first deployment still gets its own
              assertEquals((await post(h.app)).id, first.id);
            } finally {
              await other.close();
            }
          }
        },
      );

      await t.step(
        "a file gone from storage is never reused; its export reads FAILURE",
        async () => {
          const first = await post(h.app);
          assertEquals(first.status, 200);
          const row = await readExport(h, first.id, seed.token);
          assertEquals(row.status, "SUCCESS");
          const [{ file_key }] = await h.sql<{ file_key: string }[]>`
          select file_key from data_exports where id = ${first.id}`;
          await h.storage.deleteObject(file_key);
          const next = await post(h.app);
          assertEquals(next.status, 201, JSON.stringify(next.json));
          assert(next.id !== first.id);
          const stale = await readExport(h, first.id, seed.token);
          assertEquals(stale.status, "FAILURE");
          assert(String(stale.error).includes("no longer in storage"), String(stale.error));
          assertEquals(contradictions(stale), []);
          const download = await h.api("GET", `/api/v2/exports/${first.id}/download/`, {
            token: seed.token,
          });
          assertEquals(download.status, 409);
          assert((await jobLogs(h.sql, first.id)).some((l) => l.message.includes("no longer")));
          assertEquals((await h.waitForExport(next.id, seed.token)).status, "SUCCESS");
        },
      );

      await t.step(
        "a file another one replaced in storage is neither reused nor downloaded",
        async () => {
          const keyAndSize = async (id: number) =>
            (await h.sql<{ file_key: string; file_size: string }[]>`
              select file_key, file_size::text from data_exports where id = ${id}`)[0];
          /** Another file at the export's key: 10 bytes. */
          const replace = async (key: string) => {
            const upload = await h.storage.beginUpload(key, "text/csv");
            const written = await h.storage.appendPart(
              upload,
              new TextEncoder().encode("truncated\n"),
            );
            await h.storage.completeUpload(written);
          };
          // an identical request: the reused export's file is not the one it wrote
          const reused = await post(h.app);
          assertEquals(reused.status, 200);
          const first = await keyAndSize(reused.id);
          await replace(first.file_key);
          const next = await post(h.app);
          assertEquals(next.status, 201, JSON.stringify(next.json));
          const stale = await readExport(h, reused.id, seed.token);
          assertEquals(stale.status, "FAILURE");
          assert(
            String(stale.error).includes(`holds 10 bytes, the export wrote ${first.file_size}`),
            String(stale.error),
          );
          assertEquals(contradictions(stale), []);
          assertEquals(stale.file_size, 0);
          assertEquals((await h.waitForExport(next.id, seed.token)).status, "SUCCESS");
          // a download: the new export's file removed, then replaced
          const download = () =>
            h.api("GET", `/api/v2/exports/${next.id}/download/`, { token: seed.token });
          assertEquals((await download()).status, 302);
          await replace((await keyAndSize(next.id)).file_key);
          const refused = await download();
          assertEquals(refused.status, 409);
          assert(String((await refused.json()).error).includes("holds 10 bytes"));
          const ended = await readExport(h, next.id, seed.token);
          assertEquals(ended.status, "FAILURE");
          assertEquals(contradictions(ended), []);
          assertEquals((await download()).status, 409);
          // the data card: the same check
          const card = () =>
            h.api("GET", `/api/v2/exports/${next.id}/datacard/`, { token: seed.token });
          assertEquals((await card()).status, 409);
          const last = await post(h.app);
          assertEquals(last.status, 201);
          assertEquals((await h.waitForExport(last.id, seed.token)).status, "SUCCESS");
          const lastCard = () =>
            h.api("GET", `/api/v2/exports/${last.id}/datacard/`, { token: seed.token });
          assertEquals((await lastCard()).status, 200);
          await h.storage.deleteObject((await keyAndSize(last.id)).file_key);
          const gone = await lastCard();
          assertEquals(gone.status, 409);
          assert(String((await gone.json()).error).includes("no longer in storage"));
          assertEquals((await readExport(h, last.id, seed.token)).status, "FAILURE");
        },
      );
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "a resumed export continues its file only over the same data, else starts it over",
  ...serviceTest,
  async fn() {
    // the filesystem backend makes every batch durable: a kill leaves a checkpoint to resume
    const h = await startHarness({
      storage: "fs",
      batchSize: 10,
      worker: false,
      env: { HEARTBEAT_TIMEOUT_SECONDS: "5" },
    });
    let worker = await startWorkerProcess(h.env, { name: "resume-0" });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 2000, seed: 2305 });
      const killMidway = async (id: number) => {
        await waitFor(`export ${id} to stream`, async () => {
          const e = await readExport(h, id, seed.token);
          const records = e.job.progress.stages[0].params.find((p) => p.key === "records_exported");
          return Number(records?.value ?? 0) >= 100;
        }, 120_000);
        await worker.kill();
      };
      const restart = async (name: string) => {
        worker = await startWorkerProcess(h.env, { name });
      };
      const rowsOf = async (e: ExportJson) =>
        parse(new TextDecoder().decode(await h.download(e.file_url!)), {
          columns: true,
        }) as { id: string }[];

      // 1. nothing changed while no worker ran: the file continues from the checkpoint
      const same = await createExport(h, seed, "occurrences_simple_csv");
      await killMidway(same);
      await restart("resume-1");
      const sameDone = await h.waitForExport(same, seed.token, 180_000) as ExportJson;
      assertEquals(sameDone.status, "SUCCESS");
      const sameLogs = (await jobLogs(h.sql, same)).map((l) => l.message);
      assert(sameLogs.some((m) => m.startsWith("resumed at")), sameLogs.join("\n"));
      assertEquals((await rowsOf(sameDone)).length, sameDone.record_count);

      // 2. an occurrence added while no worker ran: the file starts over in a new snapshot
      const changed = await createExport(h, seed, "occurrences_simple_csv");
      await killMidway(changed);
      let added = 0;
      await writeWhile(h.sql, seed.project_id, () => added++ > 0);
      const [{ id: newest }] = await h.sql<{ id: number }[]>`
        select max(id)::bigint as id from occurrences where project_id = ${seed.project_id}`;
      await restart("resume-2");
      const changedDone = await h.waitForExport(changed, seed.token, 180_000) as ExportJson;
      assertEquals(changedDone.status, "SUCCESS");
      const changedLogs = (await jobLogs(h.sql, changed)).map((l) => l.message);
      assert(
        changedLogs.some((m) => m.includes("the data changed since the interrupted attempt")),
        changedLogs.join("\n"),
      );
      assert(!changedLogs.some((m) => m.startsWith("resumed at")), changedLogs.join("\n"));
      const rows = await rowsOf(changedDone);
      assertEquals(rows.length, changedDone.record_count);
      assertEquals(new Set(rows.map((r) => r.id)).size, rows.length, "a record written twice");
      assert(rows.some((r) => r.id === String(newest)), "the new snapshot's occurrence is missing");
      assertEquals(contradictions(changedDone), []);
    } finally {
      await worker.stop(5_000).catch(() => {});
      await h.close();
    }
  },
});
