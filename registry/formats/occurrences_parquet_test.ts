import { parse } from "csv-parse/sync";
import { assert, assertEquals } from "../../tests/assert.ts";
import { asCsvRows, readParquet } from "../../tests/parquet.ts";
import { assertResumable, drainStream, memorySideStore } from "../../tests/stream_drain.ts";
import { loadRowGroups, occurrencesParquet, storeRowGroups } from "./occurrences_parquet.ts";
import { occurrencesSimpleCsv } from "./occurrences_simple_csv.ts";
import type { ExportQueryContext, ShardRange, StreamState } from "../types.ts";
import { smallProjectTest } from "./test_support.ts";

type Rows = Record<string, string>[];

/** The simple CSV of the same export, parsed. */
export async function simpleCsvRows(ctx: ExportQueryContext): Promise<Rows> {
  const { bytes } = await drainStream(occurrencesSimpleCsv, ctx, { limit: 1000 });
  return parse(new TextDecoder().decode(bytes), { columns: true }) as Rows;
}

smallProjectTest(
  "occurrences_parquet: pyarrow and DuckDB read the simple CSV's values, typed; resumable",
  async ({ p, ctx }) => {
    const { bytes, records } = await assertResumable(occurrencesParquet, ctx, 2);
    assertEquals(records, p.validIds.length);
    assertEquals(Number(await occurrencesParquet.count(ctx)), p.validIds.length);
    const report = await readParquet(bytes);
    const csv = await simpleCsvRows(ctx);
    assertEquals(csv.length, p.validIds.length);
    // every value of every row, by both readers, equals the simple CSV's cell
    assertEquals(asCsvRows(report.pyarrow.rows), csv);
    assertEquals(asCsvRows(report.duckdb.rows), csv);
    // one row group per batch of 2
    const n = p.validIds.length;
    assertEquals(
      report.pyarrow.row_groups.map(Number),
      Array.from({ length: Math.ceil(n / 2) }, (_, i) => Math.min(2, n - 2 * i)),
    );
    const types = report.pyarrow.types;
    assertEquals(
      [types.id, types.determination_score, types.verification_status, types.event_name],
      ["int64", "double", "bool", "string"],
    );
    assertEquals(types.first_appearance_timestamp, "timestamp[us, tz=UTC]");
    assertEquals(types.duration, "int64");
    assert(
      types.best_detection_bbox.startsWith("list<element: double"),
      types.best_detection_bbox,
    );
    const duck = report.duckdb.types;
    assertEquals(
      [
        duck.id,
        duck.best_detection_width,
        duck.first_appearance_timestamp,
        duck.best_detection_bbox,
      ],
      ["BIGINT", "DOUBLE", "TIMESTAMP WITH TIME ZONE", "DOUBLE[]"],
    );

    // filtered, and empty: still a readable file, equal to the CSV
    const north = { ...ctx, filters: { deployment_ids: [p.deployments.north] } };
    const filtered = await readParquet(
      (await drainStream(occurrencesParquet, north, { limit: 1 }))
        .bytes,
    );
    assertEquals(asCsvRows(filtered.duckdb.rows), await simpleCsvRows(north));
    const none = { ...ctx, filters: { collection_id: p.emptyCollectionId } };
    const empty = await readParquet(
      (await drainStream(occurrencesParquet, none, { limit: 2 }))
        .bytes,
    );
    assertEquals([empty.pyarrow.rows, empty.duckdb.rows, empty.pyarrow.row_groups], [[], [], []]);
  },
);

Deno.test("occurrences_parquet: row group metadata survives a JSON checkpoint exactly (-0, NaN, bigint)", () => {
  const group = {
    columns: [{
      meta_data: { num_values: 2n ** 63n - 1n, statistics: { min_value: -0, max_value: NaN } },
      file_offset: 4n,
    }],
    total_byte_size: 10n,
    num_rows: 200n,
  };
  // deno-lint-ignore no-explicit-any
  const [back] = loadRowGroups(JSON.parse(JSON.stringify(storeRowGroups([group as any])))) as any;
  const stats = back.columns[0].meta_data.statistics;
  assertEquals(Object.is(stats.min_value, -0), true);
  assertEquals(Number.isNaN(stats.max_value), true);
  assertEquals(back.columns[0].meta_data.num_values, 2n ** 63n - 1n);
  assertEquals(back.num_rows, 200n);
});

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

smallProjectTest(
  "occurrences_parquet: row group metadata in side objects, shards + shardTail are the file's bytes; an old checkpoint (rowGroups) resumes",
  async ({ ctx }) => {
    // the file with its metadata in the state (no side store): the reference
    const B = 1;
    const reference = await drainStream(occurrencesParquet, ctx, { limit: 50, maxRecords: B });
    const groups = Math.ceil(reference.records / B);
    assert(groups >= 4, `only ${groups} row groups`);
    assertEquals(
      (await readParquet(reference.bytes)).pyarrow.row_groups.map(Number),
      Array.from({ length: groups }, (_, i) => Math.min(B, reference.records - B * i)),
    );

    // with a side store: the same bytes, a checkpoint of constant size, resumable from any state
    const side = memorySideStore();
    const full = await drainStream(occurrencesParquet, ctx, { limit: 50, maxRecords: B, side });
    assertEquals(full.bytes, reference.bytes);
    assertEquals(side.objects.size, groups);
    const sizes = full.states.map((s) => JSON.stringify(s).length);
    assert(Math.max(...sizes) < 200, `checkpoint states up to ${Math.max(...sizes)} bytes`);
    const inState = JSON.stringify(reference.states.at(-1)).length;
    console.log(
      `[parquet] checkpoint state after ${groups} row groups: ${inState} bytes with the ` +
        `metadata in it, ${sizes.at(-1)} with side objects (${
          [...side.objects.values()].reduce((n, o) => n + o.length, 0)
        } bytes in ${side.objects.size} objects)`,
    );
    for (let i = 1; i < full.states.length - 1; i++) {
      const rest = await drainStream(occurrencesParquet, ctx, {
        limit: 50,
        maxRecords: B,
        side,
        from: full.states[i],
      });
      assertEquals(concat([...full.chunks.slice(0, i), rest.bytes]), reference.bytes);
    }
    // a checkpoint of before side objects (its row groups in the state) resumes to the same
    // bytes, given a side store or not
    const old = reference.states[3] as Record<string, StreamState>;
    const legacy = { phase: old.phase, afterId: old.afterId, offset: old.offset };
    for (const given of [memorySideStore(), undefined]) {
      const rest = await drainStream(occurrencesParquet, ctx, {
        limit: 50,
        maxRecords: B,
        side: given,
        from: { ...legacy, rowGroups: old.rowGroups },
      });
      assertEquals(concat([...reference.chunks.slice(0, 3), rest.bytes]), reference.bytes);
    }

    // shard bounds fall on row-group boundaries: every 3 records at groups of 2 → every 4
    const rounded = await occurrencesParquet.shardBounds!(ctx, 3, { maxRecords: 2 });
    assertEquals(rounded.map((b) => b.records), rounded.map((_, i) => 4 * (i + 1)));
    // shards of one record (as planShards: no empty last shard): each shard's bytes, then the tail
    const bounds = (await occurrencesParquet.shardBounds!(ctx, 1, { maxRecords: B }))
      .filter((b) => b.records < reference.records);
    assert(bounds.length >= 2, `${bounds.length + 1} shards`);
    const pieces: Uint8Array[] = [];
    const shards: { bytes: number; side: ReturnType<typeof memorySideStore> }[] = [];
    for (let k = 0; k <= bounds.length; k++) {
      const range: ShardRange = {
        afterId: k === 0 ? null : bounds[k - 1].id,
        untilId: k === bounds.length ? null : bounds[k].id,
        recordsBefore: k === 0 ? 0 : bounds[k - 1].records,
        first: k === 0,
        last: k === bounds.length,
        batchRecords: B,
      };
      const store = memorySideStore();
      // a crashed attempt's extra group past the end is never read
      await store.put("g000099.json", new TextEncoder().encode("not json"));
      const { bytes } = await drainStream(occurrencesParquet.shard!(range), ctx, {
        limit: 50,
        maxRecords: 1000, // the plan's batchRecords wins over the worker's
        side: store,
      });
      pieces.push(bytes);
      shards.push({ bytes: bytes.length, side: store });
    }
    const tail = await occurrencesParquet.shardTail!(shards);
    assertEquals(concat([...pieces, tail]), reference.bytes);
    // a shard that did not end has no end.json: no footer
    shards[1].side.objects.delete("end.json");
    const missing = await occurrencesParquet.shardTail!(shards).then(() => "", (e) => String(e));
    assert(/shard 1 has no end.json/.test(missing), missing);
  },
);
