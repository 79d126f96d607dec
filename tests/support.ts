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

/** Lower-case hex SHA-256 of `bytes` (exports record `sha256:<this>` as their checksum). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
