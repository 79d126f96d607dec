/**
 * Exports read from a replica (docs/replica.md): the connection the counting and streaming
 * statements use, the request position recorded on each export row (migration
 * `export_request_lsn`) and how far the replica has replayed it. Every write stays on the
 * primary.
 */
import { connectDatabase, type Sql } from "./client.ts";

/**
 * Where the export read database stands against a WAL position of the primary (PostgreSQL docs,
 * "Recovery Information Functions": `pg_is_in_recovery`, `pg_last_wal_replay_lsn`,
 * `pg_last_xact_replay_timestamp`, `pg_get_wal_replay_pause_state`), e.g.
 * `{ standby: true, replayed: "0/3000000", caughtUp: false, bytesBehind: 96,
 * replayAgeSeconds: 12.5, paused: true }`.
 */
export interface ReplicaPosition {
  /** False: the server is not in recovery (a primary), so it has every write; nothing to wait for. */
  standby: boolean;
  /** `pg_last_wal_replay_lsn()` as text (`0/3000000`); null on a primary. */
  replayed: string | null;
  /** True when there is nothing to wait for: not a standby, no target, or replayed ≥ target. */
  caughtUp: boolean;
  /** Bytes of WAL from the replayed position to the target (0 when caught up). */
  bytesBehind: number;
  /**
   * Seconds since the last transaction the standby replayed was committed on the primary (null
   * on a primary or before the first replayed commit). While the standby is behind, this is how
   * far its data is behind in time; once caught up it only says how long the primary was idle.
   */
  replayAgeSeconds: number | null;
  /** Replay was paused (`pg_wal_replay_pause()`, or a pause requested and not yet reached). */
  paused: boolean;
}

/**
 * The pool the exports' counting and streaming statements use: `primary` itself when
 * `exportDatabaseUrl` equals `databaseUrl` (one database, no second connection), else a pool
 * of its own on `exportDatabaseUrl`, which the caller ends.
 */
export function connectExportReads(
  config: { databaseUrl: string; exportDatabaseUrl: string },
  primary: Sql,
  options: { max?: number } = {},
): Sql {
  return readsFromReplica(config) ? connectDatabase(config.exportDatabaseUrl, options) : primary;
}

/** True when exports read from another database than the one they write to. */
export function readsFromReplica(
  config: { databaseUrl: string; exportDatabaseUrl: string },
): boolean {
  return config.exportDatabaseUrl !== config.databaseUrl;
}

/**
 * `host:port/database` of a postgres:// URL, without user or password (for messages and
 * `/healthz`); the URL itself when it cannot be parsed.
 */
export function describeDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url.replace(/^postgres(ql)?:/, "http:"));
    const host = parsed.hostname || "localhost";
    return `${host}:${parsed.port || "5432"}${parsed.pathname}`;
  } catch {
    return url.replace(/\/\/[^@/]*@/, "//");
  }
}

/**
 * The primary's WAL position the export was requested at (`data_exports.request_lsn`, text such
 * as `0/3000060`); null when the row has none (requested before migration `export_request_lsn`)
 * or is gone.
 */
export async function requestLsn(sql: Sql, exportId: number): Promise<string | null> {
  const [row] = await sql<{ lsn: string | null }[]>`
    select request_lsn::text as lsn from data_exports where id = ${exportId}`;
  return row?.lsn ?? null;
}

/**
 * Fixes the export's reads to its request position: `read_lsn = request_lsn` (migration
 * `export_read_lsn`), before the export waits for the export read database to replay `target`
 * (so the wait's target never moves) and counts. Only while `request_lsn` still is `target`
 * (null: any position, with one database, whose reads see every commit before them): an
 * identical request that reused the export meanwhile moved it up (`createOrReuseExport`), and
 * the caller must fix the new one, read again with {@link requestLsn}. The UPDATE waits for a
 * reuse in flight (it holds the row `FOR SHARE`); after it, reuse no longer hands the export
 * out, nor moves its position, until it has counted. Returns false when `request_lsn` had
 * moved, or the row is gone.
 */
export async function fixReadPosition(
  sql: Sql,
  exportId: number,
  target: string | null,
): Promise<boolean> {
  const fixed = await sql`
    update data_exports set read_lsn = request_lsn
    where id = ${exportId}
      and (${target}::pg_lsn is null or request_lsn = ${target}::pg_lsn)
    returning 1`;
  return fixed.length > 0;
}

/** The primary's current WAL write position (`pg_current_wal_lsn()`), e.g. `0/3000060`. */
export async function currentLsn(primary: Sql): Promise<string> {
  const [row] = await primary<{ lsn: string }[]>`select pg_current_wal_lsn()::text as lsn`;
  return row.lsn;
}

/**
 * Where `reads` stands against `target` (a primary's WAL position; null: nothing to wait for),
 * in one statement. On a primary (`pg_is_in_recovery()` false) it is always caught up.
 */
export async function replicaPosition(reads: Sql, target: string | null): Promise<ReplicaPosition> {
  const [row] = await reads<
    {
      standby: boolean;
      replayed: string | null;
      caught_up: boolean;
      behind: number | null;
      age: number | null;
      pause: string | null;
    }[]
  >`
    select
      pg_is_in_recovery() as standby,
      pg_last_wal_replay_lsn()::text as replayed,
      (${target}::pg_lsn is null or not pg_is_in_recovery()
        or pg_last_wal_replay_lsn() >= ${target}::pg_lsn) as caught_up,
      greatest(0, pg_wal_lsn_diff(${target}::pg_lsn, pg_last_wal_replay_lsn()))::float8 as behind,
      extract(epoch from now() - pg_last_xact_replay_timestamp())::float8 as age,
      case when pg_is_in_recovery() then pg_get_wal_replay_pause_state() end as pause`;
  return {
    standby: row.standby,
    replayed: row.standby ? row.replayed : null,
    caughtUp: row.caught_up,
    bytesBehind: row.caught_up ? 0 : Math.round(row.behind ?? 0),
    replayAgeSeconds: row.standby && row.age !== null ? Math.max(0, row.age) : null,
    paused: row.pause === "paused" || row.pause === "pause requested",
  };
}

/**
 * The sentence an export fails with when the replica did not replay its request position in
 * time, e.g. "the replica at db2:5432/ami has not replayed the export's request position
 * 0/3000060 after 300 s (96 bytes behind, replayed up to 0/3000000, last replayed commit 312 s
 * old, replay paused)".
 */
export function replicaLagMessage(
  where: string,
  target: string,
  options: { waitedSeconds: number; position: ReplicaPosition },
): string {
  const { position } = options;
  const detail = [`${position.bytesBehind} bytes behind`];
  if (position.replayed) detail.push(`replayed up to ${position.replayed}`);
  if (position.replayAgeSeconds !== null) {
    detail.push(`last replayed commit ${Math.round(position.replayAgeSeconds)} s old`);
  }
  if (position.paused) detail.push("replay paused");
  return `the replica at ${where} has not replayed the export's request position ${target} ` +
    `after ${Math.round(options.waitedSeconds)} s (${detail.join(", ")})`;
}
