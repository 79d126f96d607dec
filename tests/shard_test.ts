/**
 * Sharded exports (issue 15, point 4; issue 22: every record format) against the real services:
 * above EXPORT_SHARD_RECORDS the workflow exports shards in parallel and composes them (S3
 * UploadPartCopy / fs concatenation);
 * the file must be byte-identical to the unsharded export, with sha256(file) == checksum, and
 * nothing may be left under the export's `<file_uuid>/shards/` after success, cancel, delete or
 * a kill -9 of the worker. Durations are printed, never asserted.
 */
import { exportCardFacts } from "../activities/export_access.ts";
import { findExport, jobLogs } from "../db/exports.ts";
import { seedDemo, type SeedResult } from "../db/seed_demo.ts";
import { UTF8_BOM } from "../registry/encoding.ts";
import { exporterFor, getExporter } from "../registry/mod.ts";
import { assert, assertEquals } from "./assert.ts";
import { exportRunsClosed, type Harness, startHarness, workflowIdsOf } from "./harness.ts";
import { readCamtrap } from "./camtrap.ts";
import { checkDwca } from "./dwca.ts";
import { readParquet } from "./parquet.ts";
import { exportAllBatches } from "./record_export.ts";
import { drainStream } from "./stream_drain.ts";
import { serviceTest, sha256Hex, testDatabase } from "./support.ts";
import { startWorkerProcess, type WorkerProcess } from "./worker_process.ts";

const SHARDED_FORMATS = ["occurrences_simple_csv", "occurrences_api_json", "occurrences_ndjson"];

/** A format to export, with its options. */
type FormatCase = [format: string, options: Record<string, unknown>];

/**
 * The occurrence formats, one with the byte order mark, `captures_csv` (216 captures in the
 * small project), `detections_csv` and `tracks_csv` (streams, cut by occurrence id), and
 * `occurrences_parquet` (row groups of the batch size, 17: shards of 51 rows, 3 groups each, the
 * footer composed after them): each ≥ 3 shards at EXPORT_SHARD_RECORDS=40.
 */
const OCCURRENCE_AND_CAPTURE_CASES: FormatCase[] = [
  ...SHARDED_FORMATS.map((f): FormatCase => [f, {}]),
  ["occurrences_parquet", {}],
  ["occurrences_simple_csv", { excel_compatible: true }],
  ["captures_csv", {}],
  // the chosen columns hold in every shard (each shard used to write every column)
  ["captures_csv", { columns: ["capture_id", "url", "occurrences_count"] }],
  ["detections_csv", {}],
  ["tracks_csv", {}],
  // cut in its annotations by occurrence id; shard 0 also writes info, categories and images
  ["detections_coco", {}],
  // a zip cut member by member: event.txt whole, occurrence.txt and multimedia.txt by
  // occurrence id in pieces of the batch size; the headers, meta.xml, eml.xml, README.md and
  // the central directory composed around them
  ["dwca", {}],
  // the same for a Camtrap DP package: deployments.csv whole, media.csv by capture id,
  // observations.csv by occurrence id
  ["camtrap_dp", {}],
];

/** Formats compared byte for byte only (their bytes are not text). */
const BINARY_FORMATS = new Set(["occurrences_parquet", "dwca", "camtrap_dp"]);

/**
 * The formats keyed by session and taxon: the small project has 9 sessions and a few dozen
 * taxa, so these shard (≥ 3 shards) at EXPORT_SHARD_RECORDS=3; `taxon_counts_csv` (a stream,
 * cut by session) too.
 */
const SESSION_AND_TAXON_CASES: FormatCase[] = [
  ["sessions_csv", {}],
  ["sessions_csv", { excel_compatible: true }],
  ["taxa_list_csv", {}],
  ["taxon_counts_csv", {}],
];

function note(message: string): void {
  console.log(`[shards] ${message}`);
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/**
 * The unsharded export of `format` (prologue, keyset batches, epilogue; Parquet: row groups of
 * the harness's EXPORT_BATCH_SIZE, as the export writes them; an archive: pieces of it, dated
 * and carded by the export `exportId` as its shards are) and its records.
 */
async function unshardedExport(
  h: Harness,
  projectId: number,
  format: string,
  options: Record<string, unknown> = {},
  exportId?: number,
): Promise<{ text: string; bytes: Uint8Array; records: number }> {
  const exporter = exporterFor(getExporter(format)!, options);
  const row = exportId === undefined ? null : await findExport(h.sql, exportId);
  const ctx = {
    sql: h.sql,
    projectId,
    filters: {},
    settings: h.config.formats,
    ...(row ? { card: exportCardFacts(row, h.config.publicBaseUrl) } : {}),
  };
  if (exporter.kind !== "stream") {
    const { text, records } = await exportAllBatches(exporter, ctx, 5000);
    return { text, bytes: new TextEncoder().encode(text), records };
  }
  const { bytes, records } = await drainStream(exporter, ctx, {
    limit: 5000,
    maxRecords: h.config.exportBatchSize,
  });
  return { text: new TextDecoder().decode(bytes), bytes, records };
}

/**
 * Binary files (Parquet) byte for byte, and read by pyarrow: the same rows and row groups as
 * the unsharded file.
 */
async function assertSameBinary(
  format: string,
  actual: Uint8Array,
  expected: Uint8Array,
): Promise<void> {
  if (!BINARY_FORMATS.has(format)) return;
  assertEquals(await sha256Hex(actual), await sha256Hex(expected), `${format}: bytes differ`);
  assertEquals(actual, expected);
  if (format === "camtrap_dp") {
    // frictionless against the Camtrap DP 1.0.2 profile and table schemas
    const report = await readCamtrap(actual);
    assertEquals([report.errors, report.profile_errors], [[], []]);
    assert(report.rows.observations > 0 && report.rows.media > 0, JSON.stringify(report.rows));
    return;
  }
  if (format === "dwca") {
    // unzip -t and python-dwca-reader: every CRC (combined from the units') holds, and every
    // extension row links to its event
    const report = await checkDwca(actual);
    assertEquals(report.testzip, null);
    assertEquals(report.reader.core_rows, report.files["event.txt"].rows);
    for (const name of ["occurrence.txt", "multimedia.txt"]) {
      assert(report.files[name].rows > 0, `${name} is empty`);
    }
    for (const [name, file] of Object.entries(report.files)) assertEquals(file.dangling, 0, name);
    assertEquals(
      report.reader.extensions["http://rs.tdwg.org/dwc/terms/Occurrence"].linked,
      report.files["occurrence.txt"].rows,
    );
    return;
  }
  const [got, want] = [await readParquet(actual), await readParquet(expected)];
  assertEquals(got.pyarrow.rows, want.pyarrow.rows);
  assertEquals(got.pyarrow.row_groups, want.pyarrow.row_groups);
  assert(got.pyarrow.row_groups.length >= 6, `${got.pyarrow.row_groups.length} row groups`);
}

async function createExport(
  h: Harness,
  seed: SeedResult,
  format: string,
  extra: Record<string, unknown> = {},
): Promise<number> {
  const res = await h.api("POST", "/api/v2/exports/", {
    token: seed.token,
    body: { project: seed.project_id, format, filters: {}, force: true, ...extra },
  });
  const body = await res.json();
  assertEquals(res.status, 201, JSON.stringify(body));
  return body.id;
}

async function fileUuid(h: Harness, id: number): Promise<string> {
  const [row] = await h.sql<{ u: string }[]>`
    select file_uuid::text as u from data_exports where id = ${id}`;
  return row.u;
}

/**
 * Nothing of export `id`'s shards is left once its run has closed (it cleans up after its row
 * reads ended): no shard object, no incomplete upload at all.
 */
async function assertNoShardsLeft(h: Harness, id: number): Promise<void> {
  await exportRunsClosed(h, id);
  const prefix = `exports/${await fileUuid(h, id)}/`;
  const shards = (await h.storage.listObjects(prefix)).filter((k) => k.includes("/shards/"));
  assertEquals(shards, [], "shard objects left behind");
  assertEquals(await h.storage.listIncompleteUploads(prefix), [], "incomplete uploads left");
}

/** The number of shards the job log says the export was split into (0: unsharded). */
async function shardCount(h: Harness, id: number): Promise<number> {
  const line = (await jobLogs(h.sql, id)).find((l) => l.message.startsWith("export split into"));
  return line ? Number(/split into (\d+) shards/.exec(line.message)![1]) : 0;
}

/** Fails with the first differing position and its surroundings when `actual` ≠ `expected`. */
function assertSameText(actual: string, expected: string, what: string): void {
  if (actual === expected) return;
  let i = 0;
  while (i < actual.length && actual[i] === expected[i]) i++;
  throw new Error(
    `${what}: first difference at character ${i} of ${expected.length} (got ${actual.length}):\n` +
      `expected …${JSON.stringify(expected.slice(Math.max(0, i - 120), i + 120))}\n` +
      `got      …${JSON.stringify(actual.slice(Math.max(0, i - 120), i + 120))}`,
  );
}

/**
 * Exports each of `formats` (≥ 3 shards each) and compares the file with the unsharded bytes:
 * the same bytes, SHA-256, size and record count.
 */
async function exportsMatchUnsharded(
  h: Harness,
  seed: SeedResult,
  formats: readonly FormatCase[],
): Promise<void> {
  for (const [format, extra] of formats) {
    const id = await createExport(h, seed, format, extra);
    const done = await h.waitForExport(id, seed.token, 120_000);
    assertEquals(done.status, "SUCCESS", JSON.stringify(done).slice(0, 2000));
    const shards = await shardCount(h, id);
    assert(shards >= 3, `${format} was not sharded in 3 or more (${shards} shards)`);
    const bytes = await h.download(done.file_url as string);
    const unsharded = await unshardedExport(h, seed.project_id, format, extra, id);
    assertEquals(done.record_count, unsharded.records);
    let expected = unsharded.text;
    if (extra.excel_compatible) expected = UTF8_BOM + expected;
    const text = new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes);
    if (!BINARY_FORMATS.has(format)) {
      assertSameText(text, expected, `${format}: the sharded file differs from the unsharded one`);
    }
    await assertSameBinary(format, bytes, unsharded.bytes);
    assertEquals(done.checksum, `sha256:${await sha256Hex(bytes)}`);
    assertEquals(done.file_size, bytes.length);
    assertEquals(
      done.file_size,
      BINARY_FORMATS.has(format)
        ? unsharded.bytes.length
        : new TextEncoder().encode(expected).length,
    );
    const job = done.job as {
      progress: { stages: { key: string; params: { key: string; value: unknown }[] }[] };
    };
    const stage = job.progress.stages.find((s) => s.key === "data_export")!;
    assertEquals(
      stage.params.find((p) => p.key === "records_exported")!.value,
      done.record_count,
    );
    const progress = await h.temporal.client.workflow
      .getHandle((await workflowIdsOf(h.sql, id)).export)
      .query<{ shards?: { total: number; done: number } }>("progress");
    assertEquals(progress.shards, { total: shards, done: shards });
    await assertNoShardsLeft(h, id);
    note(
      `${format}${extra.excel_compatible ? " (excel)" : ""}${
        extra.columns ? ` (columns ${extra.columns})` : ""
      }: ${shards} shards, ${unsharded.records} records, ${bytes.length} bytes identical`,
    );
  }
}

let smallSeed: Promise<SeedResult> | undefined;
function smallProject(): Promise<SeedResult> {
  smallSeed ??= (async () => {
    const sql = testDatabase(2);
    try {
      return await seedDemo(sql, { occurrences: 300, seed: 415 });
    } finally {
      await sql.end();
    }
  })();
  return smallSeed;
}

Deno.test({
  name:
    "sharded exports (S3) are byte-identical to unsharded ones: CSV, CSV with BOM, JSON, NDJSON, captures, detections and tracks CSV, COCO, Darwin Core Archive, Camtrap DP",
  ...serviceTest,
  async fn() {
    const seed = await smallProject();
    const h = await startHarness({
      storage: "s3",
      batchSize: 17,
      env: { EXPORT_SHARD_RECORDS: "40" },
    });
    try {
      await exportsMatchUnsharded(h, seed, OCCURRENCE_AND_CAPTURE_CASES);
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name:
    "sharded exports (filesystem) are byte-identical to unsharded ones, captures, detections and tracks CSV, COCO, Darwin Core Archive and Camtrap DP too",
  ...serviceTest,
  async fn() {
    const seed = await smallProject();
    const h = await startHarness({
      storage: "fs",
      batchSize: 17,
      env: { EXPORT_SHARD_RECORDS: "40" },
    });
    try {
      await exportsMatchUnsharded(h, seed, OCCURRENCE_AND_CAPTURE_CASES);
      const temp = [...Deno.readDirSync(`${h.config.exportsDir}/.uploads`)].map((e) => e.name);
      assertEquals(temp, [], "temp files left behind");
    } finally {
      await h.close();
    }
  },
});

for (const storage of ["s3", "fs"] as const) {
  Deno.test({
    name: `sessions_csv (with BOM too), taxa_list_csv, taxon_counts_csv and deployments_csv ` +
      `shard (${storage}): byte-identical to their unsharded files`,
    ...serviceTest,
    async fn() {
      const seed = await smallProject();
      const h = await startHarness({
        storage,
        batchSize: 2,
        env: { EXPORT_SHARD_RECORDS: "3" },
      });
      try {
        await exportsMatchUnsharded(h, seed, SESSION_AND_TAXON_CASES);
        if (storage === "fs") {
          const temp = [...Deno.readDirSync(`${h.config.exportsDir}/.uploads`)].map((e) => e.name);
          assertEquals(temp, [], "temp files left behind");
        }
      } finally {
        await h.close();
      }
      // one row per station: deployments_csv shards too, a station a shard
      const s = await startHarness({ storage, env: { EXPORT_SHARD_RECORDS: "1" } });
      try {
        await exportsMatchUnsharded(s, seed, [["deployments_csv", {}]]);
      } finally {
        await s.close();
      }
    },
  });
}

Deno.test({
  name: "EXPORT_SHARD_RECORDS=0 never shards",
  ...serviceTest,
  async fn() {
    const seed = await smallProject();
    const h = await startHarness({ storage: "fs", env: { EXPORT_SHARD_RECORDS: "0" } });
    try {
      const id = await createExport(h, seed, "occurrences_simple_csv");
      const done = await h.waitForExport(id, seed.token);
      assertEquals(done.status, "SUCCESS");
      assertEquals(await shardCount(h, id), 0);
      // unsharded Parquet keeps its row group metadata in side objects, removed once published
      const parquet = await createExport(h, seed, "occurrences_parquet");
      const file = await h.waitForExport(parquet, seed.token);
      assertEquals(file.status, "SUCCESS");
      assertEquals(await shardCount(h, parquet), 0);
      const bytes = await h.download(file.file_url as string);
      assertEquals(bytes, (await unshardedExport(h, seed.project_id, "occurrences_parquet")).bytes);
      const uuid = await fileUuid(h, parquet);
      assertEquals(
        (await h.storage.listObjects(`exports/${uuid}/`)).filter((k) => k.includes("/shards/")),
        [],
        "side objects left behind",
      );
    } finally {
      await h.close();
    }
  },
});

// ---- faults: worker processes, a project big enough to stop mid-way ----

let bigSeed: Promise<SeedResult> | undefined;
function bigProject(): Promise<SeedResult> {
  bigSeed ??= (async () => {
    const sql = testDatabase(2);
    try {
      const started = performance.now();
      const seed = await seedDemo(sql, { occurrences: 12_000, seed: 1515 });
      note(`seeded 12,000 occurrences in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      return seed;
    } finally {
      await sql.end();
    }
  })();
  return bigSeed;
}

/** `records_exported` of the export stage (the sum over the shards). */
async function recordsExported(h: Harness, id: number): Promise<number> {
  const [row] = await h.sql<{ n: number | null }[]>`
    select (select (p->>'value')::int from jsonb_array_elements(s->'params') p
            where p->>'key' = 'records_exported') as n
    from jobs j, jsonb_array_elements(j.progress->'stages') s
    where j.data_export_id = ${id} and s->>'key' = 'data_export'`;
  return row?.n ?? 0;
}

async function waitForRecords(h: Harness, id: number, records: number): Promise<void> {
  const deadline = Date.now() + 180_000;
  while (Date.now() < deadline) {
    if ((await recordsExported(h, id)) >= records) return;
    const [row] = await h.sql<{ status: string }[]>`
      select status from data_exports where id = ${id}`;
    if (!["PENDING", "STARTED"].includes(row?.status ?? "")) {
      throw new Error(`export ${id} ended ${row?.status} before ${records} records`);
    }
    await sleep(100);
  }
  throw new Error(`export ${id} did not pass ${records} records`);
}

async function withWorkers(
  storage: "s3" | "fs",
  body: (h: Harness, spawn: (name: string) => Promise<WorkerProcess>) => Promise<void>,
  batchSize = 500,
): Promise<void> {
  const h = await startHarness({
    worker: false,
    storage,
    batchSize,
    env: { EXPORT_SHARD_RECORDS: "3500", HEARTBEAT_TIMEOUT_SECONDS: "5" },
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
 * Kills (-9) the only worker once the sharded export of `format` has passed `killAfter`
 * records, starts a second one (this test's own restart of the worker it killed), and checks
 * that at least one shard resumed from its checkpoint and the file is the unsharded bytes.
 */
async function killMidShardedExport(
  storage: "s3" | "fs",
  format: string,
  options: { killAfter: number; batchSize: number },
): Promise<void> {
  const seed = await bigProject();
  await withWorkers(storage, async (h, spawn) => {
    const first = await spawn("first");
    const id = await createExport(h, seed, format);
    await waitForRecords(h, id, options.killAfter);
    // kill mid-batch, not in the instant of a progress write (250 ms heartbeat throttle)
    await sleep(300);
    await first.kill();
    const killedAt = Date.now();
    await spawn("second");
    const done = await h.waitForExport(id, seed.token, 300_000);
    assertEquals(done.status, "SUCCESS", JSON.stringify(done).slice(0, 2000));
    const shards = await shardCount(h, id);
    assert(shards > 1, `not sharded: ${shards}`);
    const bytes = await h.download(done.file_url as string);
    const expected = await unshardedExport(h, seed.project_id, format, {}, id);
    const text = new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes);
    if (!BINARY_FORMATS.has(format)) {
      assertSameText(
        text,
        expected.text,
        "the resumed sharded file differs from the unsharded one",
      );
    }
    await assertSameBinary(format, bytes, expected.bytes);
    assertEquals(done.checksum, `sha256:${await sha256Hex(bytes)}`);
    assertEquals(done.file_size, bytes.length);
    assertEquals(done.record_count, expected.records);
    const logs = (await jobLogs(h.sql, id)).map((l) => l.message);
    const resumed = logs.filter((m) => /^shard \d+ resumed at id \d+ after \d+ records/.test(m));
    assert(resumed.length >= 1, `no shard resumed from a checkpoint:\n${logs.join("\n")}`);
    await assertNoShardsLeft(h, id);
    note(
      `${format} (${storage}): ${shards} shards, killed at ~${options.killAfter} records, ` +
        `${resumed.length} shards resumed from checkpoints, done ${
          ((Date.now() - killedAt) / 1000).toFixed(1)
        } s after the kill`,
    );
  }, options.batchSize);
}

// S3 only: the filesystem backend's resume is the same checkpoint code (and kill -9 tested for
// every format in tests/faults_test.ts); this keeps the suite inside its time budget
for (const storage of ["s3"] as const) {
  Deno.test({
    name:
      `kill -9 the worker mid sharded JSON export (${storage}): a new worker resumes every shard to the same bytes`,
    ...serviceTest,
    async fn() {
      await killMidShardedExport(storage, "occurrences_api_json", {
        killAfter: 3000,
        batchSize: 500,
      });
    },
  });
}

// The 9,024 captures of the big project make a CSV of ~2 MB: under one 5 MiB S3 part per shard,
// so on S3 no shard would have a durable checkpoint before it ends. The filesystem backend makes
// every batch durable; small batches keep each shard running well past the kill.
Deno.test({
  name:
    "kill -9 the worker mid sharded captures_csv export (filesystem): a new worker resumes the shards to the same bytes",
  ...serviceTest,
  async fn() {
    await killMidShardedExport("fs", "captures_csv", { killAfter: 1500, batchSize: 25 });
  },
});

// Parquet of the big project is ~1.5 MB: on S3 no shard would have a durable checkpoint before
// it ends; the filesystem backend makes every row group durable (row groups of 100 rows).
Deno.test({
  name:
    "kill -9 the worker mid sharded occurrences_parquet export (filesystem): a new worker resumes the shards to the same bytes",
  ...serviceTest,
  async fn() {
    await killMidShardedExport("fs", "occurrences_parquet", { killAfter: 1500, batchSize: 100 });
  },
});

Deno.test({
  name: "cancel and delete mid sharded export (S3): no shard object, no upload, no file left",
  ...serviceTest,
  async fn() {
    const seed = await bigProject();
    await withWorkers("s3", async (h, spawn) => {
      await spawn("cancel");
      const id = await createExport(h, seed, "occurrences_api_json");
      await waitForRecords(h, id, 1500);
      const uuid = await fileUuid(h, id);
      const res = await h.api("POST", `/api/v2/exports/${id}/cancel/`, { token: seed.token });
      assertEquals(res.status, 202, await res.text());
      const done = await h.waitForExport(id, seed.token, 120_000);
      assertEquals(done.status, "REVOKED");
      await assertNoShardsLeft(h, id);
      assertEquals(await h.storage.listObjects(`exports/${uuid}/`), [], "objects left");

      const second = await createExport(h, seed, "occurrences_simple_csv");
      await waitForRecords(h, second, 1500);
      const secondUuid = await fileUuid(h, second);
      assert((await shardCount(h, second)) > 1, "not sharded");
      const del = await h.api("DELETE", `/api/v2/exports/${second}/`, { token: seed.token });
      assertEquals(del.status, 204, await del.text());
      assertEquals(await h.storage.listObjects(`exports/${secondUuid}/`), [], "objects left");
      assertEquals(await h.storage.listIncompleteUploads(`exports/${secondUuid}/`), []);
    });
  },
});

// COCO of the big project: shard 0 writes the categories and images before its annotations, the
// others only annotations; the filesystem backend makes every batch durable (batches of 50).
Deno.test({
  name:
    "kill -9 the worker mid sharded detections_coco export (filesystem): a new worker resumes the shards to the same bytes",
  ...serviceTest,
  async fn() {
    await killMidShardedExport("fs", "detections_coco", { killAfter: 3000, batchSize: 50 });
  },
});

// The Darwin Core Archive of the big project: units of event.txt, occurrence.txt and
// multimedia.txt pieces; the filesystem backend makes every batch durable (pieces of 50 keys).
Deno.test({
  name:
    "kill -9 the worker mid sharded dwca export (filesystem): a new worker resumes the units to the same bytes",
  ...serviceTest,
  async fn() {
    await killMidShardedExport("fs", "dwca", { killAfter: 3000, batchSize: 50 });
  },
});

Deno.test({
  name:
    "a sharded archive whose data changed after the count is exported unsharded, from one snapshot",
  ...serviceTest,
  async fn() {
    const seed = await smallProject();
    // the workflows worker plans the shards; the shards wait for a streaming worker
    const h = await startHarness({
      storage: "fs",
      batchSize: 17,
      worker: false,
      env: { EXPORT_SHARD_RECORDS: "40" },
    });
    const workers: WorkerProcess[] = [];
    try {
      workers.push(
        await startWorkerProcess({ ...h.env, WORKER_ROLE: "workflows" }, { name: "moment-wf" }),
      );
      const id = await createExport(h, seed, "dwca");
      const deadline = Date.now() + 60_000;
      while (!(await jobLogs(h.sql, id)).some((l) => l.message.startsWith("export split into"))) {
        assert(Date.now() < deadline, "the shards were not planned");
        await sleep(100);
      }
      // a write to an exported table after the count: its change marker moves
      await h.sql`
        update occurrences set determination_score = determination_score
        where id = (select min(id) from occurrences where project_id = ${seed.project_id})`;
      workers.push(
        await startWorkerProcess({ ...h.env, WORKER_ROLE: "streaming" }, { name: "moment-st" }),
      );
      const done = await h.waitForExport(id, seed.token, 120_000);
      assertEquals(done.status, "SUCCESS", JSON.stringify(done).slice(0, 2000));
      const logs = (await jobLogs(h.sql, id)).map((l) => l.message);
      assert(
        logs.some((m) => m.includes("so it is exported unsharded, from one snapshot")),
        logs.join("\n"),
      );
      const bytes = await h.download(done.file_url as string);
      const unsharded = await unshardedExport(h, seed.project_id, "dwca", {}, id);
      assertEquals(bytes, unsharded.bytes);
      await assertSameBinary("dwca", bytes, unsharded.bytes);
      assertEquals(done.record_count, unsharded.records);
      await assertNoShardsLeft(h, id);
    } finally {
      await Promise.all(workers.map((w) => w.kill()));
      await h.close();
    }
  },
});
