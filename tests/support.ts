/** Shared set-up for tests that talk to the real services started by `tests/run.ts`. */
import { connectDatabase, type Sql } from "../db/client.ts";

/** Reads a variable that `deno task test` sets; explains how to run the suite if it is missing. */
export function requireEnv(name: string): string {
  const value = Deno.env.get(name);
  if (!value) {
    throw new Error(
      `${name} is not set: run the suite with \`deno task test\`, which starts the services`,
    );
  }
  return value;
}

/** A pool on the per-run test database. */
export function testDatabase(max = 4): Sql {
  return connectDatabase(requireEnv("TEST_DATABASE_URL"), { max });
}

/** Options that make a test leave no timers or sockets behind while sharing SDK internals. */
export const serviceTest = { sanitizeOps: false, sanitizeResources: false } as const;
