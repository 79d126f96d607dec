/**
 * `sessions_csv`: the sampling effort by session, one row per event (monitoring night) of the
 * project, with or without occurrences: its station-local start and end, duration, station
 * with coordinates, and what it recorded (captures, detections, valid occurrences, distinct
 * taxa). Abundance per unit of effort needs the sessions that saw nothing too. Keyset on event
 * id, one statement per batch; filters: stations, sessions, dates (`registry/sampling_sql.ts`).
 */
import { stringify } from "csv-stringify/sync";
import { csvFormulaGuard, decimalText, wgs84 } from "../encoding.ts";
import { occurrencePredicate } from "../filters.ts";
import { type Fragment, localTime, settingsOf, stationZone, timeOfDay } from "../occurrence_sql.ts";
import { countImpossibleTimes, ifPossibleInterval, possibleInterval } from "../time_sql.ts";
import { sessionFilterKeys, sessionPredicate } from "../sampling_sql.ts";
import {
  type EncodedBatch,
  type ExportQueryContext,
  type ImpossibleTimeCount,
  type RecordExporter,
  type RecordId,
  recordId,
} from "../types.ts";

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

/** RFC 4180 with CRLF; text cells are guarded against formula injection (OWASP). */
const csvOptions = {
  record_delimiter: "\r\n",
  quoted_match: /[\r\n]/,
  cast: { string: csvFormulaGuard },
};

/** The project's events that pass the filters: one statement. */
async function countSessions(ctx: ExportQueryContext): Promise<number> {
  const [row] = await ctx.sql<{ n: number }[]>`
    select count(*)::bigint as n from events e
    where e.project_id = ${ctx.projectId} ${sessionPredicate(ctx, "e")}`;
  return Number(row.n);
}

/** Sessions of the export whose end precedes their start (issue 23). */
async function impossibleTimes(ctx: ExportQueryContext): Promise<ImpossibleTimeCount[]> {
  const { sql } = ctx;
  return await countImpossibleTimes(sql, [{
    kind: "session_interval",
    effect: "start_date, start_time, end_date, end_time and duration_seconds left empty",
    rows: sql`select not ${possibleInterval(sql, sql`e.start`, sql`e."end"`)} as bad
      from events e where e.project_id = ${ctx.projectId} ${sessionPredicate(ctx, "e")}`,
  }]);
}

async function fetchBatch(
  ctx: ExportQueryContext,
  cursor: { afterId: RecordId | null; limit: number; recordsBefore: number },
): Promise<EncodedBatch> {
  const { sql } = ctx;
  const zone = stationZone(sql, settingsOf(ctx), "d");
  const start = localTime(sql, sql`e.start`, zone);
  const end = localTime(sql, sql`e."end"`, zone);
  const possible = (value: Fragment): Fragment =>
    ifPossibleInterval(sql, { start: sql`e.start`, end: sql`e."end"` }, value);
  // counts are over every valid occurrence of the session (the occurrence filters do not apply)
  const valid = occurrencePredicate({ ...ctx, filters: {} });
  const rows = await sql<({ event_id: RecordId } & Record<string, unknown>)[]>`
    with batch as (
      select be.id from events be
      where be.project_id = ${ctx.projectId} and be.id > ${cursor.afterId ?? 0}
        ${sessionPredicate(ctx, "be")}
      order by be.id
      limit ${cursor.limit}
    )
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
  const encoded = rows.map((row) => {
    const pair = wgs84(row.latitude, row.longitude);
    return {
      ...row,
      latitude: pair ? decimalText(pair.latitude) : null,
      longitude: pair ? decimalText(pair.longitude) : null,
    };
  });
  return {
    records: rows.length,
    lastId: rows.length === 0 ? null : recordId(rows[rows.length - 1].event_id),
    text: rows.length === 0
      ? ""
      : stringify(encoded, { ...csvOptions, columns: [...sessionsCsvColumns] }),
  };
}

/** The sampling effort by session (`sessions_csv`). */
export const sessionsCsv: RecordExporter = {
  key: "sessions_csv",
  label: "Sessions / sampling effort (CSV)",
  description: "One row per session (event) of the project, with or without occurrences: " +
    "station-local start and end, duration, station and coordinates, captures, detections, " +
    "valid occurrences and distinct taxa",
  extension: "csv",
  contentType: "text/csv",
  acceptedFilters: sessionFilterKeys,
  acceptedOptions: ["excel_compatible"],
  count: countSessions,
  impossibleTimes,
  prologue(): string {
    return stringify([[...sessionsCsvColumns]], csvOptions);
  },
  fetchBatch,
  epilogue(): string {
    return "";
  },
};
