/**
 * `captures_csv`: the sampling effort by capture, one row per capture (image) of the project,
 * with or without detections: station-local timestamp, size, URL, and its detection and valid
 * occurrence counts. Keyset on capture id, one statement per batch; filters: capture set,
 * stations, sessions, dates (`registry/sampling_sql.ts`).
 */
import { stringify } from "csv-stringify/sync";
import { csvFormulaGuard } from "../encoding.ts";
import { occurrencePredicate } from "../filters.ts";
import { captureUrl, isoTimestamp, realBox, settingsOf, stationZone } from "../occurrence_sql.ts";
import { captureFilterKeys, capturePredicate } from "../sampling_sql.ts";
import { countImpossibleTimes, sessionTime, withinSession } from "../time_sql.ts";
import {
  type EncodedBatch,
  type ExportQueryContext,
  type ImpossibleTimeCount,
  type RecordExporter,
  type RecordId,
  recordId,
} from "../types.ts";

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

/** RFC 4180 with CRLF; text cells are guarded against formula injection (OWASP). */
const csvOptions = {
  record_delimiter: "\r\n",
  quoted_match: /[\r\n]/,
  cast: { string: csvFormulaGuard },
};

/** The project's captures that pass the filters: one statement. */
async function countCaptures(ctx: ExportQueryContext): Promise<number> {
  const [row] = await ctx.sql<{ n: number }[]>`
    select count(*)::bigint as n from source_images s
    where s.project_id = ${ctx.projectId} ${capturePredicate(ctx, "s")}`;
  return Number(row.n);
}

/** Captures of the export more than a day outside their session (issue 23). */
async function impossibleTimes(ctx: ExportQueryContext): Promise<ImpossibleTimeCount[]> {
  const { sql } = ctx;
  return await countImpossibleTimes(sql, [{
    kind: "capture_time",
    effect: "timestamp left empty",
    rows: sql`select not ${withinSession(sql, sql`s.timestamp`, sql`s.event_id`)} as bad
      from source_images s where s.project_id = ${ctx.projectId} ${capturePredicate(ctx, "s")}`,
  }]);
}

async function fetchBatch(
  ctx: ExportQueryContext,
  cursor: { afterId: RecordId | null; limit: number; recordsBefore: number },
): Promise<EncodedBatch> {
  const { sql } = ctx;
  const zone = stationZone(sql, settingsOf(ctx), "d");
  // over every valid occurrence (the occurrence filters do not apply to captures)
  const valid = occurrencePredicate({ ...ctx, filters: {} });
  const rows = await sql<({ capture_id: RecordId } & Record<string, unknown>)[]>`
    with batch as (
      select bs.id from source_images bs
      where bs.project_id = ${ctx.projectId} and bs.id > ${cursor.afterId ?? 0}
        ${capturePredicate(ctx, "bs")}
      order by bs.id
      limit ${cursor.limit}
    )
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
  return {
    records: rows.length,
    lastId: rows.length === 0 ? null : recordId(rows[rows.length - 1].capture_id),
    text: rows.length === 0
      ? ""
      : stringify(rows, { ...csvOptions, columns: [...capturesCsvColumns] }),
  };
}

/** The sampling effort by capture (`captures_csv`). */
export const capturesCsv: RecordExporter = {
  key: "captures_csv",
  label: "Captures / sampling effort (CSV)",
  description: "One row per capture of the project, with or without detections: station, " +
    "session, local timestamp, path, URL, size, detection and valid occurrence counts",
  extension: "csv",
  contentType: "text/csv",
  acceptedFilters: captureFilterKeys,
  acceptedOptions: ["excel_compatible"],
  count: countCaptures,
  impossibleTimes,
  prologue(): string {
    return stringify([[...capturesCsvColumns]], csvOptions);
  },
  fetchBatch,
  epilogue(): string {
    return "";
  },
};
