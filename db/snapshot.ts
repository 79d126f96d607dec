/**
 * Consistent reads for exports: one snapshot per streaming attempt, read batch by batch in short
 * transactions that import it, and the source change markers (`export_source_versions`, migration 00007) that tell whether two
 * snapshots hold the same data.
 */
import { connectDatabase, type Sql } from "./client.ts";
import { inTransaction } from "./transaction.ts";

/**
 * The change markers of a project's tables and of the global tables (taxa, algorithms, users)
 * as one snapshot sees them, as decimal text (bigint, exact). Equal markers mean equal data:
 * every committed write to an exported table moves its marker in the same transaction.
 */
export interface SourceVersions {
  project: string;
  global: string;
}

/**
 * One moment of the database that any number of short transactions can read
 * ({@link withSnapshot}).
 */
export interface Snapshot {
  /** The exported snapshot's identifier (`pg_export_snapshot()`). */
  readonly id: string;
  /**
   * Runs `read` in a new read-only REPEATABLE READ transaction that imports the snapshot (SET
   * TRANSACTION SNAPSHOT): it sees exactly the data every other `run` of this snapshot sees,
   * and holds its table locks only until it returns. Throws when the snapshot is gone (its
   * holding connection was lost): the caller retries with a new one.
   */
  run<T>(read: (tx: Sql) => Promise<T>): Promise<T>;
}

/** What `pg_export_snapshot()` returns, e.g. `00000003-0000001B-1` (hex groups and dashes). */
const SNAPSHOT_ID = /^[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+$/;

/**
 * Runs `use` with one moment of the database (PostgreSQL docs, "Snapshot Synchronization
 * Functions", `pg_export_snapshot`, and SET TRANSACTION SNAPSHOT): a connection reserved for the
 * whole call holds a read-only REPEATABLE READ transaction that exports its snapshot and reads
 * nothing, so it holds no table lock; each `snapshot.run` reads in its own short transaction
 * importing that snapshot. A file written batch by batch through `run` describes one moment
 * however long it streams, and DDL (a migration, TRUNCATE) waits at most for one batch, not for
 * the whole export, as one long transaction would make it (with every query queued behind it).
 * Like any open transaction, the holder keeps VACUUM from removing rows newer than the snapshot
 * while `use` runs.
 */
export async function withSnapshot<T>(
  sql: Sql,
  use: (snapshot: Snapshot) => Promise<T>,
  options: {
    /**
     * The database URL of `sql`: the holder gets a connection of its own, outside the pool, so
     * that holders never take the connections the batches and every other query of the process
     * need (four holders in a pool of eight, with batches waiting on a lock, left nothing for
     * the query that would release it).
     */
    holderUrl: string;
  },
): Promise<T> {
  const own = connectDatabase(options.holderUrl, { max: 1 });
  try {
    // nothing is ever rolled back on the holder: ending its connection ends its transaction,
    // and a connection the server closed must not be written to (db/transaction.ts)
    await own`begin isolation level repeatable read read only`;
    const [{ id }] = await own<{ id: string }[]>`select pg_export_snapshot() as id`;
    if (!SNAPSHOT_ID.test(id)) throw new Error(`unexpected snapshot identifier: ${id}`);
    const snapshot: Snapshot = {
      id,
      async run<R>(read: (tx: Sql) => Promise<R>): Promise<R> {
        return await inTransaction(sql, async (tx) => {
          // an identifier cannot be a bound parameter of SET; it was checked above
          await tx.unsafe(`set transaction snapshot '${id}'`);
          return await read(tx);
        }, { mode: "isolation level repeatable read read only" });
      },
    };
    return await use(snapshot);
  } finally {
    await own.end({ timeout: 5 }).catch(() => {});
  }
}

/**
 * Runs `read` in one read-only REPEATABLE READ transaction (PostgreSQL docs, "Transaction
 * Isolation", 13.2.2): its statements see one moment. For a few statements (a count and its
 * markers); a file streamed batch by batch uses {@link withSnapshot}.
 */
export async function readConsistently<T>(sql: Sql, read: (tx: Sql) => Promise<T>): Promise<T> {
  return await inTransaction(sql, read, { mode: "isolation level repeatable read read only" });
}

/** The markers of `projectId` and of the global tables, as the snapshot of `tx` sees them. */
export async function readSnapshot(tx: Sql, projectId: number): Promise<SourceVersions> {
  const [row] = await tx<SourceVersions[]>`
    select
      coalesce((select version::text from export_source_versions
                where project_id = ${projectId}), '') as project,
      coalesce((select version::text from export_source_versions where project_id = 0), '')
        as global`;
  return row;
}

/** True when both are known and equal (the same data); false when either is missing. */
export function sameSourceVersions(
  a: SourceVersions | null | undefined,
  b: SourceVersions | null | undefined,
): boolean {
  return !!a && !!b && a.project !== "" && a.project === b.project && a.global === b.global;
}
