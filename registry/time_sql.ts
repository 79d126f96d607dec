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
    select ${inSpan(sql, t, "se")} from events se where se.id = ${eventId}), true))`;
}

/**
 * {@link withinSession} for a session already joined as `session` (`left join events <session>
 * on <session>.id = <event id>`; its columns NULL when there is none): the same rule, for a
 * statement that hash-joins `events` once instead of probing it per value. Never null.
 */
function withinJoinedSession(sql: postgres.Sql, t: Fragment, session: string): Fragment {
  return sql`(coalesce(isfinite(${t}), false) and coalesce(${inSpan(sql, t, session)}, true))`;
}

/** `t` within a day of the two instants of the session `session` (either order); NULL bounds: NULL. */
function inSpan(sql: postgres.Sql, t: Fragment, session: string): Fragment {
  const e = sql(session);
  return sql`${t} between least(${e}.start, ${e}."end") - ${SESSION_SLACK}::interval
    and greatest(${e}.start, ${e}."end") + ${SESSION_SLACK}::interval`;
}

/** The instant `t` when it is {@link withinSession} of `eventId`, else NULL. */
export function sessionTime(sql: postgres.Sql, t: Fragment, eventId: Fragment): Fragment {
  return sql`(case when ${withinSession(sql, t, eventId)} then ${t} end)`;
}

/**
 * A set of the project's values that holds every value a scope counts, under the same rule
 * ({@link withinSession}), which {@link countImpossibleTimes} checks whole first:
 * - `captures`: the project's captures, `s.timestamp` in the capture's session `s.event_id`;
 * - `detections`: the detections of the project's occurrences, `d.timestamp` in the
 *   occurrence's session `o.event_id`;
 * - `detection_captures`: the captures of those detections, `s.timestamp` in `s.event_id`
 *   (a detection's capture may belong to another project: nothing in the schema forbids it);
 * - `occurrences`: the project's occurrences by their detections' times in the occurrence's
 *   session: an occurrence has no possible time, or an impossible first or last one, only when
 *   one of its detections is impossible (`detections`) or it has none.
 */
export type ImpossibleTimeUniverse =
  | "captures"
  | "detections"
  | "detection_captures"
  | "occurrences";

/** One kind a format counts: its rows (`select <bool> as bad from …`) and what it does. */
export interface ImpossibleTimeScope {
  kind: ImpossibleTimeKind;
  /** A query with one boolean column `bad` per session, capture, detection or occurrence. */
  rows: Fragment;
  effect: string;
  /**
   * The project-wide set every row of `rows` is drawn from, when there is one: a set with no
   * impossible value proves the count 0 without running `rows` (which probes `events` for each
   * row of the export, seconds at 100,000 occurrences).
   */
  universe?: ImpossibleTimeUniverse;
}

/**
 * Which of `universes` have an impossible value in project `projectId`: one statement of
 * `exists` over whole relations of the project, `events` hash-joined once (0.3–1.7 s at 100,000
 * occurrences against 3–6 s for a format's exact counts; docs/benchmarks.md, "A cheaper
 * impossible-times statement").
 */
async function universesWithImpossibleTimes(
  sql: postgres.Sql,
  projectId: number,
  universes: ReadonlySet<ImpossibleTimeUniverse>,
): Promise<Set<ImpossibleTimeUniverse>> {
  const captures = (join: Fragment, where: Fragment): Fragment =>
    sql`exists (select 1 ${join} left join events se on se.id = s.event_id
      where ${where} and not ${withinJoinedSession(sql, sql`s.timestamp`, "se")})`;
  const probes: Record<string, Fragment> = {};
  if (universes.has("captures")) {
    probes.captures = captures(sql`from source_images s`, sql`s.project_id = ${projectId}`);
  }
  if (universes.has("detection_captures")) {
    probes.detection_captures = captures(
      sql`from occurrences o join detections d on d.occurrence_id = o.id
        join source_images s on s.id = d.source_image_id`,
      sql`o.project_id = ${projectId}`,
    );
  }
  if (universes.has("detections") || universes.has("occurrences")) {
    probes.detections = sql`exists (select 1 from occurrences o
      join detections d on d.occurrence_id = o.id left join events se on se.id = o.event_id
      where o.project_id = ${projectId}
        and not ${withinJoinedSession(sql, sql`d.timestamp`, "se")})`;
  }
  if (universes.has("occurrences")) {
    probes.bare = sql`exists (select 1 from occurrences o where o.project_id = ${projectId}
      and not exists (select 1 from detections d where d.occurrence_id = o.id))`;
  }
  const names = Object.keys(probes);
  const [row] = await sql<Record<string, boolean>[]>`select ${
    names.flatMap((name, i) => [...(i === 0 ? [] : [sql`,`]), sql`${probes[name]} as ${sql(name)}`])
  }`;
  const found = new Set<ImpossibleTimeUniverse>();
  for (const universe of universes) {
    const present = universe === "occurrences" ? row.detections || row.bare : row[universe];
    if (present) found.add(universe);
  }
  return found;
}

/**
 * The counts of `scopes`: per scope, the rows whose `bad` is true. Zero counts are kept (the
 * log leaves them out). A scope with a {@link ImpossibleTimeScope.universe} (which needs
 * `projectId`) is counted only when that set of the project holds an impossible value, else it
 * is 0 without its statement; the other scopes are counted in one statement. Shapes: see
 * {@link ImpossibleTimeCount}. Throws `Error` for a universe without `projectId`.
 */
export async function countImpossibleTimes(
  sql: postgres.Sql,
  scopes: readonly ImpossibleTimeScope[],
  projectId?: number,
): Promise<ImpossibleTimeCount[]> {
  if (scopes.length === 0) return [];
  const universes = new Set(scopes.flatMap((scope) => scope.universe ?? []));
  let present = new Set<ImpossibleTimeUniverse>();
  if (universes.size > 0) {
    if (projectId === undefined) throw new Error("impossible-time universes need a project id");
    present = await universesWithImpossibleTimes(sql, projectId, universes);
  }
  const counted = scopes.map((scope, i) => ({ scope, i }))
    .filter(({ scope }) => scope.universe === undefined || present.has(scope.universe));
  const counts = new Map<number, number>();
  if (counted.length > 0) {
    const columns = counted.map(({ scope, i }) =>
      sql`(select count(*) from (${scope.rows}) x where x.bad)::bigint as ${sql(`c${i}`)}`
    );
    const [row] = await sql<Record<string, string | number>[]>`select ${
      columns.flatMap((c, i) => (i === 0 ? [c] : [sql`,`, c]))
    }`;
    for (const { i } of counted) counts.set(i, Number(row[`c${i}`]));
  }
  return scopes.map((scope, i) => ({
    kind: scope.kind,
    count: counts.get(i) ?? 0,
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
      universe: "captures",
      rows: ctx.sql`select not ${withinSession(ctx.sql, ctx.sql`s.timestamp`, ctx.sql`s.event_id`)}
        as bad from source_images s where s.project_id = ${ctx.projectId} and ${exported(ctx)}`,
    }], ctx.projectId);
}
