/**
 * `captures_csv`: the sampling effort by capture, one row per capture (image) of the project,
 * with or without detections: station-local timestamp, size, URL, and its detection and valid
 * occurrence counts. Keyset on capture id, one statement per batch; shards by capture id;
 * filters: capture set, stations, sessions, dates (`registry/sampling_sql.ts`).
 */
import { occurrencePredicate } from "../filters.ts";
import { keysetCsv, keysetPage } from "../keyset_csv.ts";
import {
  captureUrl,
  type Fragment,
  isoTimestamp,
  realBox,
  settingsOf,
  stationZone,
} from "../occurrence_sql.ts";
import { captureFilterKeys, capturePredicate } from "../sampling_sql.ts";
import { sessionTime, withinSession } from "../time_sql.ts";
import type { ExportQueryContext } from "../types.ts";

/** The header, in file order. */
export const capturesCsvColumns: readonly string[] = [
  "capture_id",
  "deployment_id",
  "event_id",
  "timestamp",
  "path",
  "url",
  "width",
  "height",
  "size",
  "detections_count",
  "boxed_detections_count",
  "occurrences_count",
];

/** The ids of the exported captures (one statement): the filtered captures of the project. */
function capturesKeys(ctx: ExportQueryContext): Fragment {
  return ctx.sql`select s.id from source_images s
    where s.project_id = ${ctx.projectId} ${capturePredicate(ctx, "s")}`;
}

/** The sampling effort by capture (`captures_csv`). */
export const capturesCsv = keysetCsv({
  key: "captures_csv",
  label: "Captures / sampling effort (CSV)",
  description: "One row per capture of the project, with or without detections: station, " +
    "session, local timestamp, path, URL, size, detection and valid occurrence counts",
  acceptedFilters: captureFilterKeys,
  columns: capturesCsvColumns,
  cursor: [{ column: "capture_id" }],
  keys: capturesKeys,
  batch(ctx, after, limit, until) {
    const { sql } = ctx;
    const zone = stationZone(sql, settingsOf(ctx), "d");
    // over every valid occurrence (the occurrence filters do not apply to captures)
    const valid = occurrencePredicate({ ...ctx, filters: {} });
    return sql`
    with batch as (${keysetPage(sql, capturesKeys(ctx), after.capture_id, until, limit)})
    select
      s.id as capture_id,
      s.deployment_id,
      s.event_id,
      -- empty when more than a day outside its session (issue 23, time_sql.ts)
      ${isoTimestamp(sql, sessionTime(sql, sql`s.timestamp`, sql`s.event_id`), zone)} as timestamp,
      s.path,
      ${captureUrl(sql, sql`s.public_base_url`, sql`s.path`)} as url,
      s.width,
      s.height,
      s.size,
      dc.detections_count,
      dc.boxed_detections_count,
      (select count(distinct o.id)::int from detections od join occurrences o
        on o.id = od.occurrence_id
        where od.source_image_id = s.id and ${valid}) as occurrences_count
    from batch
    join source_images s on s.id = batch.id
    left join deployments d on d.id = s.deployment_id
    cross join lateral (
      select count(*)::int as detections_count,
        (count(*) filter (where ${realBox(sql, sql`cd.bbox`)}))::int as boxed_detections_count
      from detections cd where cd.source_image_id = s.id
    ) dc
    order by s.id`;
  },
  impossibleTimes: [{
    kind: "capture_time",
    effect: "timestamp left empty",
    universe: "captures",
    rows(ctx) {
      const { sql } = ctx;
      return sql`select not ${withinSession(sql, sql`s.timestamp`, sql`s.event_id`)} as bad
        from source_images s where s.project_id = ${ctx.projectId} ${capturePredicate(ctx, "s")}`;
    },
  }],
});
