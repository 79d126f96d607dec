/**
 * Impossible times in SQL (issue 23, kind 6). A session (event) whose end precedes its start, a
 * duration below zero, or a capture's, detection's or occurrence's time that lies outside its
 * session by more than a day are impossible source values: they are not published as valid
 * standard values (a Darwin Core `eventDate` ISO 8601 interval, a Camtrap DP datetime, a
 * `duration_seconds`). Like an impossible coordinate pair (`registry/encoding.ts`, `wgs84`),
 * they are left empty, and the export's job log counts them ({@link impossibleTimeCounts}).
 *
 * Rules:
 * - **Session interval**: possible when `start` and `end` are finite instants and
 *   `end ≥ start` (ISO 8601-1:2019 §5.5.1: a time interval runs from its start to its end, so
 *   an end before the start is no interval). An impossible session's start, end, interval and
 *   duration are all left empty: which of the two is wrong is unknown.
 * - **Time within its session**: a finite instant `t` with
 *   `start − 1 day ≤ t ≤ end + 1 day` (the session's two instants taken in either order, so a
 *   reversed session still bounds its captures). A capture's session is
 *   `source_images.event_id`; an occurrence's and its detections' session is
 *   `occurrences.event_id` (the session every per-occurrence row names). A time without a
 *   session has nothing to be outside of and is kept (when finite).
 */
import type postgres from "postgres";
import type { Fragment } from "./occurrence_sql.ts";
import type { ExportQueryContext, ImpossibleTimeCount, ImpossibleTimeKind } from "./types.ts";

/** How far outside its session a capture, detection or occurrence time may lie. */
export const SESSION_SLACK = "1 day";

/**
 * True when `start`..`end` (timestamptz fragments) is a possible interval: both finite and
 * `end ≥ start`. Never null (a NULL bound is not possible).
 */
export function possibleInterval(sql: postgres.Sql, start: Fragment, end: Fragment): Fragment {
  return sql`coalesce(isfinite(${start}) and isfinite(${end}) and ${end} >= ${start}, false)`;
}

/** `value` when `start`..`end` is a possible interval ({@link possibleInterval}), else NULL. */
export function ifPossibleInterval(
  sql: postgres.Sql,
  interval: { start: Fragment; end: Fragment },
  value: Fragment,
): Fragment {
  return sql`(case when ${possibleInterval(sql, interval.start, interval.end)} then ${value} end)`;
}

/**
 * True when the instant `t` is finite and within a day of its session `eventId` (a bigint
 * fragment, NULL: no session): `least(start, end) − 1 day ≤ t ≤ greatest(start, end) + 1 day`.
 * One primary-key probe of `events` per value. Never null.
 */
export function withinSession(sql: postgres.Sql, t: Fragment, eventId: Fragment): Fragment {
  return sql`(coalesce(isfinite(${t}), false) and coalesce((
    select ${t} between least(se.start, se."end") - ${SESSION_SLACK}::interval
      and greatest(se.start, se."end") + ${SESSION_SLACK}::interval
    from events se where se.id = ${eventId}), true))`;
}

/** The instant `t` when it is {@link withinSession} of `eventId`, else NULL. */
export function sessionTime(sql: postgres.Sql, t: Fragment, eventId: Fragment): Fragment {
  return sql`(case when ${withinSession(sql, t, eventId)} then ${t} end)`;
}

/** One kind a format counts: its rows (`select <bool> as bad from …`) and what it does. */
export interface ImpossibleTimeScope {
  kind: ImpossibleTimeKind;
  /** A query with one boolean column `bad` per session, capture, detection or occurrence. */
  rows: Fragment;
  effect: string;
}

/**
 * The counts of `scopes` in one statement: per scope, the rows whose `bad` is true. Zero
 * counts are kept (the log leaves them out). Shapes: see {@link ImpossibleTimeCount}.
 */
export async function countImpossibleTimes(
  sql: postgres.Sql,
  scopes: readonly ImpossibleTimeScope[],
): Promise<ImpossibleTimeCount[]> {
  if (scopes.length === 0) return [];
  const columns = scopes.map((scope, i) =>
    sql`(select count(*) from (${scope.rows}) x where x.bad)::bigint as ${sql(`c${i}`)}`
  );
  const [row] = await sql<Record<string, string | number>[]>`select ${
    columns.flatMap((c, i) => (i === 0 ? [c] : [sql`,`, c]))
  }`;
  return scopes.map((scope, i) => ({
    kind: scope.kind,
    count: Number(row[`c${i}`]),
    effect: scope.effect,
  }));
}

/**
 * A format's `impossibleTimes` for the capture rule: counts the captures `s` of the export's
 * project that `exported` keeps (a condition on `s`, e.g. `exists (select 1 from detections d
 * where d.source_image_id = s.id …)`) whose time is more than a day outside their session
 * ({@link withinSession}); `effect` says what the file writes for them.
 */
export function captureTimes(
  effect: string,
  exported: (ctx: ExportQueryContext) => Fragment,
): (ctx: ExportQueryContext) => Promise<ImpossibleTimeCount[]> {
  return async (ctx) =>
    await countImpossibleTimes(ctx.sql, [{
      kind: "capture_time",
      effect,
      rows: ctx.sql`select not ${withinSession(ctx.sql, ctx.sql`s.timestamp`, ctx.sql`s.event_id`)}
        as bad from source_images s where s.project_id = ${ctx.projectId} and ${exported(ctx)}`,
    }]);
}
