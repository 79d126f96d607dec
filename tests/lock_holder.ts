/**
 * Holding a row lock until one particular transaction waits on it, to act (kill a worker, cancel,
 * commit) while that transaction is stuck between its statements. The waiter is the backend that
 * `pg_blocking_pids` says is blocked by the holder's own connection, not "any backend waiting on
 * a lock": a transaction of the same name may wait on another row or another transaction (the
 * third export's admission on the second's, say), and a test acting then acts at the wrong
 * moment (it kills a worker after the transition committed, or before it began).
 */
import type { Sql } from "../db/client.ts";

/** A backend blocked by the holder's lock, as `pg_stat_activity` shows it. */
export interface BlockedBackend {
  pid: number;
  /** The worker names its transitions `ami-exports transition <STATUS>` (db/export_transitions.ts). */
  applicationName: string;
  /** The statement it runs (postgres.js sends `$1`, `$2` for the values). */
  query: string;
}

/** What the waiter is: its `application_name`, or a piece of its statement's text. */
export type WaiterMatch = { applicationName: string } | { queryContains: string };

/** How {@link holdLockUntilBlocked} holds, waits and acts. */
export interface LockHolderOptions<T> {
  /** Locks the rows on the holder's connection, inside its transaction (`select … for update`,
   * or writes); taken again after each rollback when `letOthersPass`. */
  lock(locker: Sql): Promise<unknown>;
  /** What is locked, for the error messages ("the job row of export 12"). */
  label: string;
  /** The backend to wait for, among those the lock blocks. */
  waiter: WaiterMatch;
  /** Runs while the lock is still held, once the waiter is blocked by it; its result is returned. */
  action(waiter: BlockedBackend): Promise<T>;
  /** Another backend blocked by the lock (a progress report) is let through: roll back, wait
   * 10 ms, lock again. Default false: the lock is held from the first lock to the action. */
  letOthersPass?: boolean;
  /** Polled while the lock blocks nobody: true when the waiter will not come any more (the
   * export ended), and {@link holdLockUntilBlocked} returns null. */
  ended?(): Promise<boolean>;
  /** Called once, after the rows are first locked (start a worker only once they are held). */
  onLocked?(): Promise<void>;
  /** "commit": after the action, the holder's transaction commits (its writes become what the
   * waiter reads). Default "rollback". On any error it rolls back. */
  finish?: "rollback" | "commit";
  /** Default 30,000 ms, for the whole wait including the lock statements (`lock_timeout`). */
  timeoutMs?: number;
  /** Between two looks at `pg_stat_activity`; default 25 ms. */
  pollMs?: number;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

function matches(backend: BlockedBackend, waiter: WaiterMatch): boolean {
  return "applicationName" in waiter
    ? backend.applicationName === waiter.applicationName
    : backend.query.includes(waiter.queryContains);
}

/**
 * Reserves a connection of `sql`, begins, locks with `options.lock`, then polls until a backend
 * matching `options.waiter` is blocked by that connection (`pg_blocking_pids`), and runs
 * `options.action` while the lock is held. The transaction ends once, in a `finally`: rolled back
 * (or committed, `finish: "commit"`, when the action succeeded), so the connection never goes
 * back to the pool inside it. Returns the action's result, or null when `options.ended` said the
 * waiter will not come. Throws after `timeoutMs` naming the waiter and the lock.
 */
export async function holdLockUntilBlocked<T>(
  sql: Sql,
  options: LockHolderOptions<T>,
): Promise<T | null> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const who = "applicationName" in options.waiter
    ? `'${options.waiter.applicationName}'`
    : `a statement with '${options.waiter.queryContains}'`;
  const locker = await sql.reserve();
  let open = false;
  let passed = 0;
  try {
    const [{ pid: lockerPid }] = await locker<{ pid: number }[]>`select pg_backend_pid() as pid`;
    let first = true;
    while (Date.now() < deadline) {
      open = true;
      await locker`begin`;
      const left = String(Math.max(1, deadline - Date.now()));
      await locker`select set_config('lock_timeout', ${left}, true)`;
      await options.lock(locker).catch((error) => {
        if ((error as { code?: string }).code !== "55P03") throw error; // not lock_timeout
        const s = timeoutMs / 1000;
        throw new Error(`could not lock ${options.label} within ${s} s`, { cause: error });
      });
      if (first) await options.onLocked?.();
      first = false;
      let others = false;
      while (!others && Date.now() < deadline) {
        const blocked = await sql<BlockedBackend[]>`
          select pid, application_name as "applicationName", coalesce(query, '') as query
          from pg_stat_activity where ${lockerPid}::int = any(pg_blocking_pids(pid))`;
        const waiter = blocked.find((b) => matches(b, options.waiter));
        if (waiter) {
          const result = await options.action(waiter);
          if (options.finish === "commit") {
            await locker`commit`;
            open = false;
          }
          return result;
        }
        others = blocked.length > 0 && options.letOthersPass === true;
        if (blocked.length === 0 && await options.ended?.()) return null;
        if (!others) await sleep(options.pollMs ?? 25);
      }
      // let the other writers pass (or the time is up)
      await locker`rollback`;
      open = false;
      if (others) passed++;
      await sleep(10);
    }
    throw new Error(
      `no ${who} blocked by the lock on ${options.label} within ${timeoutMs / 1000} s` +
        (options.letOthersPass ? ` (others let through ${passed} times)` : ""),
    );
  } finally {
    if (open) await locker`rollback`.catch(() => {});
    locker.release();
  }
}
