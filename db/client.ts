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
 * Opens a connection pool; bigint columns come back exactly ({@link parseBigint}), JIT is off and
 * every execution of a prepared statement is planned with its parameters.
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
    },
    types: {
      bigint: {
        to: 20,
        from: [20],
        serialize: (x: number | bigint | string) => x.toString(),
        parse: parseBigint,
      },
    },
  });
}
