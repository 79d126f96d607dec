/**
 * Predicates of the sampling-effort formats (`sessions_csv`, `captures_csv`): they list sessions
 * and captures, with or without occurrences, so only the filters that describe a place or a
 * time apply to them (stations, sessions, dates, and for captures the capture set). Dates are
 * UTC calendar dates, as in the occurrence filters (`registry/filters.ts`): of the session's
 * start, of the capture's timestamp.
 */
import type postgres from "postgres";
import type { Fragment } from "./occurrence_sql.ts";
import type { ExportQueryContext, FilterKey } from "./types.ts";

/** Filters `sessions_csv` accepts. */
export const sessionFilterKeys: readonly FilterKey[] = [
  "deployment_ids",
  "event_ids",
  "date_start",
  "date_end",
];

/** Filters `deployments_csv` accepts: stations only (a station has no date nor session). */
export const deploymentFilterKeys: readonly FilterKey[] = ["deployment_ids"];

/** Filters `captures_csv` accepts: the session filters and the capture set. */
export const captureFilterKeys: readonly FilterKey[] = ["collection_id", ...sessionFilterKeys];

function ids(sql: postgres.Sql, list: readonly number[]): Fragment {
  return sql`${list.map(String)}::bigint[]`;
}

/** The UTC midnight starting `date` (`YYYY-MM-DD`) plus `days`. */
function utcMidnight(sql: postgres.Sql, date: string, days = 0): Fragment {
  return sql`((${date}::date + ${days}::int)::timestamp at time zone 'UTC')`;
}

/** `and …` conditions of the date filters on the instant `at`. */
function dateRange(ctx: ExportQueryContext, at: Fragment): Fragment[] {
  const { sql, filters: f } = ctx;
  const parts: Fragment[] = [];
  if (f.date_start !== undefined) parts.push(sql`${at} >= ${utcMidnight(sql, f.date_start)}`);
  if (f.date_end !== undefined) parts.push(sql`${at} < ${utcMidnight(sql, f.date_end, 1)}`);
  return parts;
}

function and(sql: postgres.Sql, parts: Fragment[]): Fragment {
  // an empty list would be sent as a parameter, not as an empty fragment
  return parts.length === 0 ? sql`` : sql`${parts.map((part) => sql`and ${part}`)}`;
}

/** `and …` conditions on the event aliased `alias` (its project is checked by the caller). */
export function sessionPredicate(ctx: ExportQueryContext, alias: string): Fragment {
  const { sql, filters: f } = ctx;
  const e = sql(alias);
  const parts: Fragment[] = [];
  if (f.deployment_ids !== undefined) {
    parts.push(sql`${e}.deployment_id = any(${ids(sql, f.deployment_ids)})`);
  }
  if (f.event_ids !== undefined) parts.push(sql`${e}.id = any(${ids(sql, f.event_ids)})`);
  parts.push(...dateRange(ctx, sql`${e}.start`));
  return and(sql, parts);
}

/** `and …` conditions on the station (`deployments`) aliased `alias`. */
export function deploymentPredicate(ctx: ExportQueryContext, alias: string): Fragment {
  const { sql, filters: f } = ctx;
  const list = f.deployment_ids;
  return and(sql, list === undefined ? [] : [sql`${sql(alias)}.id = any(${ids(sql, list)})`]);
}

/** `and …` conditions on the capture (`source_images`) aliased `alias`. */
export function capturePredicate(ctx: ExportQueryContext, alias: string): Fragment {
  const { sql, filters: f } = ctx;
  const s = sql(alias);
  const parts: Fragment[] = [];
  if (f.collection_id !== undefined) {
    parts.push(sql`exists (select 1 from source_image_collection_images sci
      where sci.source_image_id = ${s}.id and sci.collection_id = ${f.collection_id})`);
  }
  if (f.deployment_ids !== undefined) {
    parts.push(sql`${s}.deployment_id = any(${ids(sql, f.deployment_ids)})`);
  }
  if (f.event_ids !== undefined) parts.push(sql`${s}.event_id = any(${ids(sql, f.event_ids)})`);
  parts.push(...dateRange(ctx, sql`${s}.timestamp`));
  return and(sql, parts);
}
