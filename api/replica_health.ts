/**
 * The replica part of `/healthz` (docs/replica.md): reported when exports read from another
 * database than the API writes to, and never a reason for 503. The API itself reads and writes
 * only the primary; a replica that is down or behind makes exports wait (bounded by
 * `EXPORT_REPLICA_MAX_LAG_SECONDS`) and then fail with a readable error, which is the workers'
 * concern, not a reason to take the API out of a load balancer.
 */
import type { Sql } from "../db/client.ts";
import { currentLsn, describeDatabaseUrl, replicaPosition } from "../db/replica.ts";

/**
 * What `/healthz` says about the export read database, e.g. `{ status: "ok", database:
 * "db2:5432/ami_exports", standby: true, lag_bytes: 0, lag_seconds: 0, replay_paused: false }`;
 * `status` is the error's message when it does not answer.
 */
export interface ReplicaHealth {
  status: string;
  /** `host:port/database` of `EXPORT_DATABASE_URL` (no credentials). */
  database: string;
  /** In recovery (`pg_is_in_recovery()`); false: another primary, nothing to wait for. */
  standby: boolean | null;
  /** WAL bytes the replica has still to replay to reach the primary's current position. */
  lag_bytes: number | null;
  /** 0 when caught up, else the age of its last replayed commit in seconds (one decimal). */
  lag_seconds: number | null;
  replay_paused: boolean | null;
}

const TIMEOUT_MS = 5000;

/** Asks both databases where they stand, bounded by 5 s; never throws. */
export async function replicaHealth(
  primary: Sql,
  reads: Sql,
  options: { exportDatabaseUrl: string },
): Promise<ReplicaHealth> {
  const report: ReplicaHealth = {
    status: "ok",
    database: describeDatabaseUrl(options.exportDatabaseUrl),
    standby: null,
    lag_bytes: null,
    lag_seconds: null,
    replay_paused: null,
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      (async () => {
        // the primary's position is only for the lag: a primary that does not answer is
        // reported as `database` by the main checks, and the replica is still asked
        const target = await currentLsn(primary).catch(() => null);
        const position = await replicaPosition(reads, target);
        report.standby = position.standby;
        report.replay_paused = position.standby ? position.paused : false;
        if (target !== null) {
          report.lag_bytes = position.bytesBehind;
          report.lag_seconds = position.caughtUp
            ? 0
            : Math.round((position.replayAgeSeconds ?? 0) * 10) / 10;
        }
      })(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("timed out after 5 s")), TIMEOUT_MS);
      }),
    ]);
  } catch (error) {
    report.status = error instanceof Error ? error.message : String(error);
  } finally {
    clearTimeout(timer);
  }
  return report;
}
