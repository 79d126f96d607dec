import { parse } from "csv-parse/sync";
import { assert, assertEquals } from "../../tests/assert.ts";
import { asCsvRows, readParquet } from "../../tests/parquet.ts";
import { assertResumable, drainStream } from "../../tests/stream_drain.ts";
import { loadRowGroups, occurrencesParquet, storeRowGroups } from "./occurrences_parquet.ts";
import { occurrencesSimpleCsv } from "./occurrences_simple_csv.ts";
import type { ExportQueryContext } from "../types.ts";
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
