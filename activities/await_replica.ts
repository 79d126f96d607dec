/**
 * `awaitReplica`: read-your-writes for exports that read from a replica (docs/replica.md). The
 * export waits until the replica has replayed the primary's WAL position recorded when it was
 * requested, so that it sees every write committed before the request.
 */
import { Context } from "@temporalio/activity";
import { ApplicationFailure } from "@temporalio/common";
import { appendJobLog } from "../db/exports.ts";
import {
  describeDatabaseUrl,
  fixReadPosition,
  replicaLagMessage,
  type ReplicaPosition,
  replicaPosition,
  requestLsn,
} from "../db/replica.ts";
import type { ExportAccess } from "./export_access.ts";
import { exportNotFound } from "./failures.ts";
import { keepAlive } from "./keep_alive.ts";

/** How often a waiting export asks the replica where it stands. */
const POLL_MS = 500;

/**
 * Heartbeat details of `awaitReplica`, e.g. `{ waitingSince: 1764921600000, target:
 * "0/3000060", bytesBehind: 96 }`: a retried attempt keeps the first attempt's start, so
 * `EXPORT_REPLICA_MAX_LAG_SECONDS` bounds the whole wait, not each attempt.
 */
export interface ReplicaWaitHeartbeat {
  /** Epoch milliseconds the wait began. */
  waitingSince: number;
  target: string;
  bytesBehind: number;
}

/** What `awaitReplica` returns: how long it waited (0 when nothing was to wait for). */
export interface ReplicaWait {
  waitedSeconds: number;
}

/** `awaitReplica`. */
// deno-lint-ignore explicit-function-return-type
export function createAwaitReplicaActivities(access: ExportAccess) {
  const { sql, readSql, config } = access;
  return {
    /**
     * Waits until the export read database (`EXPORT_DATABASE_URL`) has replayed the export's
     * request position (`data_exports.request_lsn`, the primary's `pg_current_wal_lsn()` when the
     * export row was written): `pg_last_wal_replay_lsn() >= request_lsn` (PostgreSQL docs,
     * "Recovery Information Functions"). Returns at once with one database, on a server that is
     * not in recovery, or for a row without a position. Before it waits it fixes the export's
     * reads to that position (`fixReadPosition`, also with one database; if an identical request
     * reused the export a moment before and moved `request_lsn` up, to the new position): from
     * then on reuse no longer hands the export out, nor moves its position, until it has
     * counted, so the wait has one target from its start to its end (before, each reuse moved
     * it, and an export reused again and again behind a replica a few seconds behind failed
     * `ReplicaLag` after the whole bound, naming a lag the replica did not have). Polls every
     * 0.5 s with heartbeats and logs once "waiting for the replica …"; past
     * `EXPORT_REPLICA_MAX_LAG_SECONDS` from its first attempt's start it fails (non-retryable,
     * `ReplicaLag`) naming the lag in bytes and seconds behind that one target.
     */
    async awaitReplica(input: { exportId: number }): Promise<ReplicaWait> {
      if (readSql === sql) {
        // one database: nothing to wait for; the count reads after this, so it sees every
        // reuse committed before it, and none is given the export after it
        if (!(await fixReadPosition(sql, input.exportId, null))) {
          throw exportNotFound(input.exportId);
        }
        return { waitedSeconds: 0 };
      }
      const [found] = await sql`select 1 from data_exports where id = ${input.exportId}`;
      if (!found) throw exportNotFound(input.exportId);
      const requested = await requestLsn(sql, input.exportId);
      if (!requested) {
        await fixReadPosition(sql, input.exportId, null);
        return { waitedSeconds: 0 };
      }
      // the target, fixed before the wait begins (a reuse committing first moved it up: fix the
      // new one); the UPDATE waits for a reuse in flight, which holds the row FOR SHARE
      let target = requested;
      while (!(await fixReadPosition(sql, input.exportId, target))) {
        const moved = await requestLsn(sql, input.exportId);
        if (!moved) throw exportNotFound(input.exportId);
        target = moved;
      }
      const ctx = Context.current();
      const previous = ctx.info.heartbeatDetails as ReplicaWaitHeartbeat | undefined;
      const since = previous?.waitingSince ?? Date.now();
      const where = describeDatabaseUrl(config.exportDatabaseUrl);
      let position: ReplicaPosition | undefined;
      const details = (): ReplicaWaitHeartbeat => ({
        waitingSince: since,
        target,
        bytesBehind: position?.bytesBehind ?? 0,
      });
      return await keepAlive(async () => {
        let logged = previous !== undefined;
        for (;;) {
          position = await replicaPosition(readSql, target);
          const waitedSeconds = (Date.now() - since) / 1000;
          if (position.caughtUp) {
            if (logged) {
              await appendJobLog(
                sql,
                input.exportId,
                `the replica replayed the export's request position ${target} after ` +
                  `${waitedSeconds.toFixed(1)} s`,
              );
            }
            return { waitedSeconds };
          }
          if (waitedSeconds >= config.exportReplicaMaxLagSeconds) {
            throw ApplicationFailure.nonRetryable(
              replicaLagMessage(where, target, { waitedSeconds, position }),
              "ReplicaLag",
            );
          }
          if (!logged) {
            await appendJobLog(
              sql,
              input.exportId,
              `waiting for the replica at ${where} to replay the export's request position ` +
                `${target} (${position.bytesBehind} bytes behind${
                  position.paused ? ", replay paused" : ""
                }; at most ${config.exportReplicaMaxLagSeconds} s)`,
              "warning",
            );
            logged = true;
          }
          ctx.heartbeat(details());
          const left = config.exportReplicaMaxLagSeconds * 1000 - (Date.now() - since);
          await ctx.sleep(Math.max(1, Math.min(POLL_MS, left)));
        }
      }, details);
    },
  };
}
