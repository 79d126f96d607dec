import postgres from "postgres";

/** The postgres.js client type used across the service. */
export type Sql = postgres.Sql;

/**
 * A `bigint` column value, exactly: a JS number when it is a safe integer (|x| ≤ 2^53 − 1),
 * else its decimal text. Ids past 2^53 must never be rounded (two ids would become one, and a
 * keyset cursor would skip a record), and JSON (RFC 8259 §6) only guarantees integers up to
 * 2^53 − 1 to interoperate, so larger ones stay text in JS.
 */
export function parseBigint(text: string): number | string {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : text;
}

/**
 * The postgres.js custom type of `bigint` (OID 20) every connection of the service uses: sent as
 * decimal text, read back by {@link parseBigint} (a number when safe, else the text). Pass it as
 * `types: { bigint: bigintType }` in `postgres(url, options)`.
 */
export const bigintType: {
  to: number;
  from: number[];
  serialize: (x: number | bigint | string) => string;
  parse: (text: string) => number | string;
} = {
  to: 20,
  from: [20],
  serialize: (x: number | bigint | string) => x.toString(),
  parse: parseBigint,
};

/**
 * No parallel workers for the rest of transaction `tx` (`set local
 * max_parallel_workers_per_gather = 0`). For the statements that read a whole export at once
 * (the count, the shard bounds): PostgreSQL 15's parallel hash joins that spill into batches
 * make their workers wait for each other at every batch, and beside other exports on a busy
 * server `taxon_counts_csv`'s count at 1M took over 5 minutes with 2 workers, against 4.2 s
 * without them (2.5 s with them on a quiet server; docs/benchmarks.md, 2026-12-07).
 */
export async function withoutParallelWorkers(tx: Sql): Promise<void> {
  await tx`select set_config('max_parallel_workers_per_gather', '0', true)`;
}

/**
 * Opens a connection pool; bigint columns come back exactly ({@link parseBigint}), JIT is off,
 * every execution of a prepared statement is planned with its parameters, and random page reads
 * are costed as on solid-state storage (`random_page_cost` 1.1).
 */
export function connectDatabase(url: string, options: { max?: number } = {}): Sql {
  return postgres(url, {
    max: options.max ?? 10,
    onnotice: () => {},
    connection: {
      // JIT compilation costs ~80 ms per export batch query and buys nothing at these sizes
      jit: "off",
      // postgres.js prepares every statement; after 5 executions PostgreSQL may switch a
      // prepared statement to a generic plan, blind to the keyset cursor and project id. For
      // the export batch statements that plan was ~30× slower (simple CSV, 12,500-row batches
      // on a 100k project: 0.8 s → 25 s from the 7th batch on). Plan each execution with its
      // values (PostgreSQL docs, `plan_cache_mode`).
      plan_cache_mode: "force_custom_plan",
      // the cost of a random page read relative to a sequential one: PostgreSQL's default, 4,
      // models spinning disks; its docs suggest ~1.1 for solid-state storage or data that is
      // cached (runtime-config-query, `random_page_cost`). At 4 the planner scans a small
      // table (`events`, a few hundred rows) rather than probe its primary key, once per
      // detection in every session-time check (`registry/time_sql.ts`): on the 100k bench,
      // `camtrap_dp`'s statements took 65 s in one pass, 37 s at 1.1, `dwca`'s 30 → 18 s,
      // `tracks_csv`'s 16 → 11 s, the simple CSV's unchanged (docs/benchmarks.md)
      random_page_cost: "1.1",
    },
    types: { bigint: bigintType },
  });
}
