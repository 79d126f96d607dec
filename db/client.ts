import postgres from "postgres";

/** The postgres.js client type used across the service. */
export type Sql = postgres.Sql;

/**
 * Opens a connection pool; bigint columns come back as JS numbers (ids stay below 2^53) and
 * JIT is off.
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
        serialize: (x: number) => x.toString(),
        parse: (x: string) => Number(x),
      },
    },
  });
}
