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
 * Opens a connection pool; bigint columns come back exactly ({@link parseBigint}) and JIT is
 * off.
 */
export function connectDatabase(url: string, options: { max?: number } = {}): Sql {
  return postgres(url, {
    max: options.max ?? 10,
    onnotice: () => {},
    // JIT compilation costs ~80 ms per export batch query and buys nothing at these sizes
    connection: { jit: "off" },
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
