/**
 * `sessions_csv`: the sampling effort by session, one row per event (monitoring night) of the
 * project, with or without occurrences: its station-local start and end, duration, station
 * with coordinates, and what it recorded (captures, detections, valid occurrences, distinct
 * taxa). Abundance per unit of effort needs the sessions that saw nothing too. Keyset on event
 * id, one statement per batch; shards by event id; filters: stations, sessions, dates
 * (`registry/sampling_sql.ts`).
 */
import { coordinateCells } from "../encoding.ts";
import { occurrencePredicate } from "../filters.ts";
import { keysetCsv, keysetPage, sessionIntervals } from "../keyset_csv.ts";
import { type Fragment, localTime, settingsOf, stationZone, timeOfDay } from "../occurrence_sql.ts";
import { ifPossibleInterval } from "../time_sql.ts";
import { sessionFilterKeys, sessionPredicate } from "../sampling_sql.ts";
import type { ExportQueryContext } from "../types.ts";

/** The header, in file order. */
export const sessionsCsvColumns: readonly string[] = [
  "event_id",
  "deployment_id",
  "deployment_name",
  "latitude",
  "longitude",
  "time_zone",
  "start_date",
  "start_time",
  "end_date",
  "end_time",
  "duration_seconds",
  "captures_count",
  "detections_count",
  "occurrences_count",
  "taxa_count",
];

/** The ids of the exported sessions (one statement): the filtered events of the project. */
function sessionsKeys(ctx: ExportQueryContext): Fragment {
  return ctx.sql`select e.id from events e
    where e.project_id = ${ctx.projectId} ${sessionPredicate(ctx, "e")}`;
}

/** The sampling effort by session (`sessions_csv`). */
export const sessionsCsv = keysetCsv({
  key: "sessions_csv",
  label: "Sessions / sampling effort (CSV)",
  description: "One row per session (event) of the project, with or without occurrences: " +
    "station-local start and end, duration, station and coordinates, captures, detections, " +
    "valid occurrences and distinct taxa",
  acceptedFilters: sessionFilterKeys,
  columns: sessionsCsvColumns,
  cursor: [{ column: "event_id" }],
  keys: sessionsKeys,
  batch(ctx, after, limit, until) {
    const { sql } = ctx;
    const zone = stationZone(sql, settingsOf(ctx), "d");
    const start = localTime(sql, sql`e.start`, zone);
    const end = localTime(sql, sql`e."end"`, zone);
    const possible = (value: Fragment): Fragment =>
      ifPossibleInterval(sql, { start: sql`e.start`, end: sql`e."end"` }, value);
    // counts are over every valid occurrence of the session (the occurrence filters do not apply)
    const valid = occurrencePredicate({ ...ctx, filters: {} });
    return sql`
    with batch as (${keysetPage(sql, sessionsKeys(ctx), after.event_id, until, limit)})
    select
      e.id as event_id,
      d.id as deployment_id,
      d.name as deployment_name,
      d.latitude,
      d.longitude,
      ${zone} as time_zone,
      -- a session that ends before it starts has no interval: all five empty (issue 23)
      ${possible(sql`to_char(${start}, 'YYYY-MM-DD')`)} as start_date,
      ${possible(timeOfDay(sql, start))} as start_time,
      ${possible(sql`to_char(${end}, 'YYYY-MM-DD')`)} as end_date,
      ${possible(timeOfDay(sql, end))} as end_time,
      ${possible(sql`extract(epoch from e."end" - e.start)::float8`)} as duration_seconds,
      (select count(*)::int from source_images cs where cs.event_id = e.id) as captures_count,
      (select count(*)::int from source_images ds join detections dd on dd.source_image_id = ds.id
        where ds.event_id = e.id) as detections_count,
      oc.occurrences_count,
      oc.taxa_count
    from batch
    join events e on e.id = batch.id
    join deployments d on d.id = e.deployment_id
    cross join lateral (
      select count(*)::int as occurrences_count,
        count(distinct o.determination_id)::int as taxa_count
      from occurrences o where o.event_id = e.id and ${valid}
    ) oc
    order by e.id`;
  },
  encode: coordinateCells,
  impossibleTimes: [
    sessionIntervals(
      "start_date, start_time, end_date, end_time and duration_seconds left empty",
      (ctx) =>
        ctx.sql`from events e where e.project_id = ${ctx.projectId} ${sessionPredicate(ctx, "e")}`,
    ),
  ],
});
