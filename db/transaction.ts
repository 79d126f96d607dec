/**
 * Transactions that survive a lost connection. postgres.js 3.4.9's `sql.begin` answers an error
 * inside the transaction with `rollback` on the same connection, and `reserve().release()`
 * returns a connection to the pool, even when the server has closed it meanwhile (an operator's
 * `pg_terminate_backend`, a restart, a failover): the next write on it then throws
 * `Cannot read properties of null (reading 'write')` from a `setImmediate` callback
 * (postgres/src/connection.js `nextWrite`), which no caller can catch, and the process dies.
 * {@link inTransaction} sends nothing more on a connection that is gone and leaves it to the
 * pool, which reconnects it.
 */
import postgres from "postgres";
import type { Sql } from "./client.ts";

/** Transaction modes this project uses (`BEGIN <mode>`, PostgreSQL docs, "BEGIN"). */
export type TransactionMode = "" | "isolation level repeatable read read only";

/**
 * True when `error` means the connection is gone: postgres.js's own connection errors
 * (`CONNECTION_CLOSED`, `CONNECTION_DESTROYED`, `CONNECTION_ENDED`, `CONNECT_TIMEOUT`), a socket
 * error, or a server error that ends the session (severity FATAL or PANIC, SQLSTATE class 08
 * "connection exception" or 57P "operator intervention", e.g. 57P01 `admin_shutdown`).
 */
export function isConnectionLost(error: unknown): boolean {
  if (!error || typeof error !== "object") return false;
  const { code, severity } = error as { code?: unknown; severity?: unknown };
  if (error instanceof postgres.PostgresError) {
    return severity === "FATAL" || severity === "PANIC" || /^(08|57P)/.test(String(code));
  }
  return typeof code === "string" &&
    /^(CONNECTION_|CONNECT_TIMEOUT|ECONNRESET|EPIPE|ECONNREFUSED)/.test(code);
}

/**
 * Runs `work` in one transaction on a connection reserved from `sql`'s pool: BEGIN, `work`,
 * COMMIT; ROLLBACK when `work` throws on a live connection. When the connection is lost
 * ({@link isConnectionLost}) nothing more is sent on it and it is not released (the pool has
 * already taken it back as closed); the error is rethrown. `work` must run its statements one
 * after another on the `tx` it is given.
 */
export async function inTransaction<T>(
  sql: Sql,
  work: (tx: Sql) => Promise<T>,
  options: { mode?: TransactionMode } = {},
): Promise<T> {
  const tx = await sql.reserve();
  let alive = true;
  try {
    await tx.unsafe(`begin ${options.mode ?? ""}`);
    const result = await work(tx as unknown as Sql);
    await tx`commit`;
    return result;
  } catch (error) {
    if (isConnectionLost(error)) {
      alive = false;
    } else {
      await tx`rollback`.catch((e) => {
        if (isConnectionLost(e)) alive = false;
      });
    }
    throw error;
  } finally {
    if (alive) tx.release();
  }
}
