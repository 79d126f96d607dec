/** Start-up checks of PostgreSQL and storage that log, retry and never stop the process. */
import type { Config } from "../config/mod.ts";
import type { Sql } from "../db/client.ts";
import type { ObjectStorage } from "../storage/types.ts";
import { retryForever } from "./backoff.ts";

/**
 * Checks in the background that PostgreSQL answers and that the storage bucket/directory is
 * ready (creating it: `ensureReady`), retrying each with backoff and logging what is missing
 * until it answers or `signal` aborts. Activities and routes retry on their own; this is what
 * tells an operator at start-up which dependency is missing.
 */
export function watchDependencies(
  deps: { sql: Sql; storage: ObjectStorage; config: Config },
  signal: AbortSignal,
): void {
  retryForever("PostgreSQL", redactUrl(deps.config.databaseUrl), () => deps.sql`select 1`, signal);
  retryForever(
    "storage",
    storageLocation(deps.config),
    () => deps.storage.ensureReady(),
    signal,
  );
}

/** Where the configured storage is, for log lines. */
export function storageLocation(config: Config): string {
  return config.storageBackend === "s3"
    ? `S3 bucket ${config.s3.bucket} at ${config.s3.endpoint ?? `AWS ${config.s3.region}`}`
    : `directory ${config.exportsDir}`;
}

/** `url` without its password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparsable URL)";
  }
}
