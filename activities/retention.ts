/**
 * The retention activity of housekeeping: deletes the files of SUCCESS exports whose
 * `expires_at` has passed and marks them EXPIRED (db/retention.ts, docs/retention.md). Source of
 * the rule: GBIF download `eraseAfter`.
 */
import { Context } from "@temporalio/activity";
import type { Sql } from "../db/client.ts";
import { expireExport, findExpiredExports } from "../db/retention.ts";
import type { ObjectStorage } from "../storage/types.ts";
import type { Client } from "@temporalio/client";
import type { Config } from "../config/mod.ts";
import { startExportDeliveries } from "./webhook_outbox.ts";

/** What {@link createRetentionActivities}' `expireExports` did: `{expired: [{id, key}]}`. */
export interface ExpiryReport {
  /** Exports marked EXPIRED by this run, with the key of the file deleted (null: none). */
  expired: { id: number; key: string | null }[];
}

/** Exports expired per database round trip of `expireExports`. */
const EXPIRY_BATCH = 100;

/** Builds the retention activities over the database and storage. */
// deno-lint-ignore explicit-function-return-type
export function createRetentionActivities(
  deps: { sql: Sql; storage: ObjectStorage; config: Config; temporal?: Client },
) {
  const { sql, storage } = deps;
  return {
    /**
     * Expires every SUCCESS export whose `expires_at` has passed: each one's file deleted and its
     * status EXPIRED in one transaction (`expireExport`), heartbeating after each. Idempotent: a
     * retry, or a run that overlaps another, skips what is already EXPIRED; a file already gone
     * is no error. Only this database's exports are looked at, so storage shared with other
     * deployments is never touched beyond the keys it recorded.
     */
    async expireExports(): Promise<ExpiryReport> {
      const report: ExpiryReport = { expired: [] };
      const ctx = Context.current();
      const skipped = new Set<number>();
      while (true) {
        const due = (await findExpiredExports(sql, { limit: EXPIRY_BATCH + skipped.size }))
          .filter((row) => !skipped.has(row.id));
        if (due.length === 0) break;
        for (const row of due) {
          ctx.heartbeat({ expired: report.expired.length });
          if (ctx.cancellationSignal.aborted) return report;
          const marked = await expireExport(sql, row.id, (key) => storage.deleteObject(key));
          if (marked) report.expired.push({ id: row.id, key: row.file_key });
          if (marked) await startExportDeliveries(deps, row.id); // export.expired webhooks
          else skipped.add(row.id); // extended or changed meanwhile
        }
      }
      if (report.expired.length > 0) {
        console.log(JSON.stringify({ msg: "exports expired", ...report }));
      }
      return report;
    },
  };
}

/** The retention activity functions, as workflows see them. */
export type RetentionActivities = ReturnType<typeof createRetentionActivities>;
