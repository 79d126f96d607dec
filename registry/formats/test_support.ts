/**
 * What the format tests share: a test against the real database with the small project
 * (`tests/fixtures/small_project.ts`) already written, and the CSV readers that check a file's
 * header and give its rows (read by Python's csv module, `tests/readers.ts`).
 */
import { parse } from "csv-parse/sync";
import postgres from "postgres";
import type { Sql } from "../../db/client.ts";
import { assertEquals } from "../../tests/assert.ts";
import { createSmallProject, type SmallProject } from "../../tests/fixtures/small_project.ts";
import { readWith } from "../../tests/readers.ts";
import { exportAllBatches } from "../../tests/record_export.ts";
import { drainStream, memorySideStore } from "../../tests/stream_drain.ts";
import { concat } from "../../storage/test_support.ts";
import { shardStream } from "../stream.ts";
import { requireEnv, serviceTest, testDatabase } from "../../tests/support.ts";
import type {
  ExportCardFacts,
  ExportFilters,
  ExportQueryContext,
  RecordExporter,
  ShardBound,
  ShardUnit,
  SideStore,
  StreamExporter,
} from "../types.ts";

/** What a {@link smallProjectTest} body gets: the database, the project, its unfiltered context. */
export interface SmallProjectCase {
  sql: Sql;
  p: SmallProject;
  /** `{ sql, projectId: p.projectId, filters: {} }`. */
  ctx: ExportQueryContext & { filters: Record<string, never> };
  /** The project's context with `filters`. */
  filtered(filters?: ExportFilters): ExportQueryContext;
}

/**
 * A `Deno.test` against the real services (`serviceTest`): a connection, the small project
 * written, `body` run, the connection closed whatever happens.
 */
export function smallProjectTest(
  name: string,
  body: (t: SmallProjectCase) => Promise<void>,
): void {
  Deno.test({
    name,
    ...serviceTest,
    async fn(): Promise<void> {
      const sql = testDatabase();
      try {
        const p = await createSmallProject(sql);
        const filtered = (filters: ExportFilters = {}): ExportQueryContext => ({
          sql,
          projectId: p.projectId,
          filters,
        });
        await body({ sql, p, ctx: { sql, projectId: p.projectId, filters: {} }, filtered });
      } finally {
        await sql.end();
      }
    },
  });
}

/** The records of a CSV file as Python's csv module reads them (header included). */
export async function csvRows(bytes: Uint8Array): Promise<string[][]> {
  const { rows } = await readWith("csv", bytes) as { rows: string[][] };
  return rows;
}

/** The rows of a CSV file whose header must be `columns`, one object per row. */
export async function csvTable(
  bytes: Uint8Array,
  columns: readonly string[],
): Promise<Record<string, string>[]> {
  const rows = await csvRows(bytes);
  assertEquals(rows[0], [...columns]);
  return rows.slice(1).map((r) => Object.fromEntries(r.map((v, i) => [columns[i], v])));
}

/**
 * A `Deno.test` of the rule "a constant number of statements per batch": the small project is
 * written through one connection, then `body` gets a one-connection client (`ctx.sql`, with
 * `filters`) whose statements `statements()` counts (postgres.js `debug`) since `reset()`.
 */
export function statementCountTest(
  name: string,
  filters: (p: SmallProject) => ExportFilters,
  body: (t: {
    p: SmallProject;
    ctx: ExportQueryContext;
    statements: () => number;
    reset: () => void;
  }) => Promise<void>,
): void {
  Deno.test({
    name,
    ...serviceTest,
    async fn(): Promise<void> {
      const setup = testDatabase(1);
      let statements = 0;
      const sql = postgres(requireEnv("TEST_DATABASE_URL"), {
        max: 1,
        onnotice: () => {},
        debug: () => statements++,
      });
      try {
        const p = await createSmallProject(setup);
        await sql`select 1`; // connecting also runs postgres.js's type lookup: not ours to count
        const ctx = { sql, projectId: p.projectId, filters: filters(p) };
        await body({ p, ctx, statements: () => statements, reset: () => (statements = 0) });
      } finally {
        await Promise.all([setup.end(), sql.end()]);
      }
    },
  });
}

/**
 * The export batch by batch at limits 1000 and 2 (as the export activity does): one batch and
 * two, `records` records, the same text. Returns the text.
 */
export async function assertBatchingAgrees(
  exporter: RecordExporter,
  ctx: ExportQueryContext,
  records: number,
): Promise<string> {
  const whole = await exportAllBatches(exporter, ctx, 1000);
  const paged = await exportAllBatches(exporter, ctx, 2);
  assertEquals([whole.batches, paged.batches], [1, 2]);
  assertEquals(paged.records, records);
  assertEquals(paged.text, whole.text);
  return paged.text;
}

/** `count` equals the records exported and the records a reader finds, for each filter set. */
export async function assertCountsAgree(
  exporter: RecordExporter,
  contexts: readonly ExportQueryContext[],
  readRecords: (text: string) => number,
): Promise<void> {
  for (const ctx of contexts) {
    const { text, records } = await exportAllBatches(exporter, ctx, 3);
    const count = await exporter.count(ctx);
    assertEquals(count, records);
    assertEquals(count, readRecords(text));
  }
}

/** The whole export of `exporter` batch by batch (batches of `limit`), as the export activity runs it. */
export function batchesOf(
  exporter: RecordExporter,
): (ctx: ExportQueryContext, limit: number) => ReturnType<typeof exportAllBatches> {
  return (ctx, limit) => exportAllBatches(exporter, ctx, limit);
}

/**
 * The shards of the export, as `planShards` cuts them at every `every`-th record
 * (`shardBounds`, then `shardStream` or the stream's `shard`, in batches of 2), concatenate to
 * the unsharded bytes; the bounds are the keys (CSV column `key`: the first cursor key) of
 * exactly every `every`-th record the unsharded export writes, each once, with the records up
 * to them. Returns the number of shards.
 */
export async function assertShardsAgree(
  format: RecordExporter | StreamExporter,
  ctx: ExportQueryContext,
  every: number,
  key: string,
): Promise<number> {
  if (format.shardBounds === undefined) throw new Error(`${format.key} does not shard`);
  const decoder = new TextDecoder();
  const whole = format.kind === "stream"
    ? decoder.decode((await drainStream(format, ctx, { limit: 1000 })).bytes)
    : (await exportAllBatches(format, ctx, 1000)).text;
  const bounds: ShardBound[] = format.kind === "stream"
    ? await format.shardBounds(ctx, every)
    : (await format.shardBounds(ctx, every)).map((id, i) => ({ id, records: (i + 1) * every }));
  const ids = (parse(whole, { columns: true }) as Record<string, string>[]).map((r) => r[key]);
  const expected = [...new Set(ids.filter((_, i) => (i + 1) % every === 0))].map((id) => ({
    id,
    records: ids.filter((other) => BigInt(other) <= BigInt(id)).length,
  }));
  assertEquals(bounds.map((b) => ({ id: String(b.id), records: b.records })), expected);
  let text = "";
  for (let k = 0; k <= bounds.length; k++) {
    const range = {
      afterId: k === 0 ? null : bounds[k - 1].id,
      untilId: k === bounds.length ? null : bounds[k].id,
      recordsBefore: k === 0 ? 0 : bounds[k - 1].records,
      first: k === 0,
      last: k === bounds.length,
    };
    const stream = format.kind === "stream" ? format.shard!(range) : shardStream(format, range);
    text += decoder.decode((await drainStream(stream, ctx, { limit: 2 })).bytes);
  }
  assertEquals(text, whole);
  return bounds.length + 1;
}

/**
 * The facts an export's row gives its archive (`ExportQueryContext.card`), for format tests
 * outside an export: export `exportId`, requested at `createdAt` (ISO 8601), which dates the
 * archive's entries.
 */
export function exportCard(exportId: number, createdAt: string): ExportCardFacts {
  return {
    exportId,
    filtersDisplay: {},
    requestedBy: "tester",
    createdAt,
    downloadUrl: `http://127.0.0.1/api/v2/exports/${exportId}/download/`,
  };
}

/**
 * An archive sharded member by member (`StreamExporter.shardUnits`), composed in process: plans
 * the units (pieces of `batchRecords` keys), drains each in batches of 75 rows with a side store
 * of its own, and composes them with `shardLayout`. `ctx` needs the export's facts (`card`: they
 * date the archive). Returns the file, the units and their side stores; rejects as the layout
 * does.
 */
export async function composeArchiveShards(
  exporter: StreamExporter,
  ctx: ExportQueryContext,
  plan: { batchRecords: number; every: number; wanted: number },
): Promise<{ file: Uint8Array; units: ShardUnit[]; sides: SideStore[] }> {
  const total = Number(await exporter.count(ctx));
  const units = await exporter.shardUnits!(ctx, {
    every: plan.every,
    wanted: plan.wanted,
    totalRecords: total,
    maxRecords: plan.batchRecords,
  });
  assertEquals(units.reduce((n, u) => n + u.records, 0), total);
  const written: { bytes: Uint8Array; side: SideStore }[] = [];
  for (const unit of units) {
    const side = memorySideStore();
    const range = {
      ...unit,
      recordsBefore: 0,
      first: false,
      last: false,
      batchRecords: plan.batchRecords,
    };
    // another batch size than an unsharded run's: the pieces do not depend on it; a unit that
    // reads earlier units is given their side stores (they ran before it)
    const earlier = (unit.reads ?? []).map((k) => written[k].side);
    const { bytes } = await drainStream(exporter.shard!(range, earlier), ctx, { limit: 75, side });
    written.push({ bytes, side });
  }
  const layout = await exporter.shardLayout!(
    ctx,
    written.map((w) => ({ bytes: w.bytes.length, side: w.side })),
  );
  const file = concat(
    ...layout.map((piece) => typeof piece === "number" ? written[piece].bytes : piece),
  );
  return { file, units, sides: written.map((w) => w.side) };
}

/**
 * {@link composeArchiveShards} against the unsharded bytes (the stream drained in batches of 130
 * rows, pieces of `batchRecords` keys): the same file, byte for byte, and the units' records
 * the export's count.
 */
export async function assertArchiveShardsCompose(
  exporter: StreamExporter,
  ctx: ExportQueryContext,
  plan: { batchRecords: number; every: number; wanted: number },
): Promise<{ file: Uint8Array; units: ShardUnit[]; sides: SideStore[] }> {
  const unsharded = await drainStream(exporter, ctx, {
    limit: 130,
    maxRecords: plan.batchRecords,
  });
  const composed = await composeArchiveShards(exporter, ctx, plan);
  assertEquals(composed.file.length, unsharded.bytes.length);
  assertEquals(composed.file, unsharded.bytes);
  return composed;
}
