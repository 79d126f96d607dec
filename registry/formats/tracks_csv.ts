/**
 * `tracks_csv`: one row per boxed detection (a real box: four finite numbers, antenna-compat
 * §4.1) of each valid, filtered occurrence, in frame order: keyset on (occurrence id, timestamp,
 * detection id). A batch reads the next occurrences that pass the shared predicate (per-row
 * check, as `occurrenceBatch` does), then at most `limit` of their boxed detections after the
 * cursor. One statement per batch.
 *
 * A track is the sequence of frames in which one individual (an occurrence) was detected; the
 * frame index, frame count and next detection id let a tracker or a reviewer walk it without a
 * join.
 */
import { stringify } from "csv-stringify/sync";
import { csvFormulaGuard } from "../encoding.ts";
import { occurrenceFilterKeys, occurrencePredicate } from "../filters.ts";
import { isoTimestamp, realBox, settingsOf, stationZone } from "../occurrence_sql.ts";
import { countImpossibleTimes, sessionTime, withinSession } from "../time_sql.ts";
import {
  type ExportQueryContext,
  type ImpossibleTimeCount,
  type RecordId,
  recordId,
  type StreamChunk,
  type StreamExporter,
  type StreamState,
} from "../types.ts";
import { finiteOrNull } from "../numeric_sql.ts";

/** The header, in file order. */
export const tracksCsvColumns: readonly string[] = [
  "occurrence_id",
  "detection_id",
  "event_id",
  "deployment_id",
  "capture_id",
  "timestamp",
  "frame_index",
  "frame_count",
  "bbox_x1",
  "bbox_y1",
  "bbox_x2",
  "bbox_y2",
  "capture_width",
  "capture_height",
  "classification_label",
  "classification_score",
  "determination_id",
  "determination_name",
  "determination_score",
  "next_detection_id",
];

/** RFC 4180 with CRLF; text cells are guarded against formula injection (OWASP). */
const csvOptions = {
  record_delimiter: "\r\n",
  quoted_match: /[\r\n]/,
  cast: { string: csvFormulaGuard },
};

interface TracksState {
  [key: string]: StreamState;
  phase: "header" | "rows" | "done";
  /**
   * Keyset cursor: the last (occurrence id, detection timestamp, detection id) written. The
   * timestamp is exact UTC text with microseconds (`-infinity` before the first row).
   */
  occurrenceId: RecordId;
  timestamp: string;
  detectionId: RecordId;
  records: number;
}

/** Boxed detections of the valid filtered occurrences: one statement. */
async function countFrames(ctx: ExportQueryContext): Promise<number> {
  const { sql } = ctx;
  const [row] = await sql<{ n: number }[]>`
    select count(*)::bigint as n from occurrences o
    join detections d on d.occurrence_id = o.id
    where ${occurrencePredicate(ctx)} and ${realBox(sql, sql`d.bbox`)}`;
  return Number(row.n);
}

type Row =
  & { occurrence_id: RecordId; detection_id: RecordId; cursor_ts: string }
  & Record<
    string,
    unknown
  >;

async function fetchRows(
  ctx: ExportQueryContext,
  state: TracksState,
  limit: number,
): Promise<Row[]> {
  const { sql } = ctx;
  const zone = stationZone(sql, settingsOf(ctx), "sd");
  const boxed = (alias: string) => realBox(sql, sql`${sql(alias)}.bbox`);
  // limit + 1 occurrences: the cursor's own one may have no frame left, every other has one
  return await sql<Row[]>`
    with occ as (
      select c.id from occurrences c
      where c.project_id = ${ctx.projectId} and c.id >= ${state.occurrenceId}
        and (select true from occurrences o where o.id = c.id and ${occurrencePredicate(ctx)})
      order by c.id
      limit ${limit + 1}
    ), page as (
      select pd.id from occ join detections pd on pd.occurrence_id = occ.id
      where ${boxed("pd")}
        and (pd.occurrence_id, pd.timestamp, pd.id)
          > (${state.occurrenceId}::bigint, ${state.timestamp}::text::timestamptz,
            ${state.detectionId}::bigint)
      order by pd.occurrence_id, pd.timestamp, pd.id
      limit ${limit}
    )
    select
      d.occurrence_id,
      d.id as detection_id,
      to_char(d.timestamp at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as cursor_ts,
      o.event_id,
      o.deployment_id,
      s.id as capture_id,
      -- empty when more than a day outside the occurrence's session (issue 23, time_sql.ts)
      ${isoTimestamp(sql, sessionTime(sql, sql`d.timestamp`, sql`o.event_id`), zone)} as timestamp,
      (select count(*)::int from detections fi
        where fi.occurrence_id = d.occurrence_id and ${boxed("fi")}
          and (fi.timestamp, fi.id) < (d.timestamp, d.id)) as frame_index,
      (select count(*)::int from detections fc
        where fc.occurrence_id = d.occurrence_id and ${boxed("fc")}) as frame_count,
      d.bbox[1] as bbox_x1,
      d.bbox[2] as bbox_y1,
      d.bbox[3] as bbox_x2,
      d.bbox[4] as bbox_y2,
      s.width as capture_width,
      s.height as capture_height,
      tc.taxon_name as classification_label,
      ${finiteOrNull(sql, sql`tc.score`)} as classification_score,
      o.determination_id,
      t.name as determination_name,
      ${finiteOrNull(sql, sql`o.determination_score`)} as determination_score,
      (select nx.id from detections nx
        where nx.occurrence_id = d.occurrence_id and ${boxed("nx")}
          and (nx.timestamp, nx.id) > (d.timestamp, d.id)
        order by nx.timestamp, nx.id
        limit 1) as next_detection_id
    from page
    join detections d on d.id = page.id
    join occurrences o on o.id = d.occurrence_id
    join source_images s on s.id = d.source_image_id
    left join deployments sd on sd.id = s.deployment_id
    left join taxa t on t.id = o.determination_id
    -- the detection's best classification: highest score, terminal or not (tie: lowest id),
    -- the rule of detections_csv's top classification
    left join lateral (
      select tct.name as taxon_name, tcc.score
      from classifications tcc
      join taxa tct on tct.id = tcc.taxon_id
      where tcc.detection_id = d.id
      order by ${finiteOrNull(sql, sql`tcc.score`)} desc nulls last, tcc.id
      limit 1
    ) tc on true
    order by d.occurrence_id, d.timestamp, d.id`;
}

/** Boxed detections of the export more than a day outside their session (issue 23). */
async function impossibleTimes(ctx: ExportQueryContext): Promise<ImpossibleTimeCount[]> {
  const { sql } = ctx;
  return await countImpossibleTimes(sql, [{
    kind: "detection_time",
    effect: "timestamp left empty",
    rows: sql`select not ${withinSession(sql, sql`d.timestamp`, sql`o.event_id`)} as bad
      from occurrences o join detections d on d.occurrence_id = o.id
      where ${occurrencePredicate(ctx)} and ${realBox(sql, sql`d.bbox`)}`,
  }]);
}

async function next(
  ctx: ExportQueryContext,
  raw: StreamState,
  options: { limit: number },
): Promise<StreamChunk> {
  const state = raw as TracksState;
  if (state.phase === "header") {
    return {
      data: stringify([[...tracksCsvColumns]], csvOptions),
      records: 0,
      state: { ...state, phase: "rows" },
      done: false,
    };
  }
  if (state.phase === "done") return { data: "", records: 0, state, done: true };
  const rows = await fetchRows(ctx, state, options.limit);
  const last = rows.at(-1);
  const after: TracksState = {
    phase: rows.length < options.limit ? "done" : "rows",
    occurrenceId: last ? recordId(last.occurrence_id) : state.occurrenceId,
    timestamp: last ? last.cursor_ts : state.timestamp,
    detectionId: last ? recordId(last.detection_id) : state.detectionId,
    records: state.records + rows.length,
  };
  return {
    data: rows.length === 0
      ? ""
      : stringify(rows, { ...csvOptions, columns: [...tracksCsvColumns] }),
    records: rows.length,
    state: after,
    done: after.phase === "done",
  };
}

/** One row per boxed detection of the exported occurrences, in frame order (`tracks_csv`). */
export const tracksCsv: StreamExporter = {
  kind: "stream",
  key: "tracks_csv",
  label: "Tracks (CSV)",
  description: "One row per boxed detection of a valid occurrence, in frame order: ids, local " +
    "timestamp, frame index and count, box corners, capture size, the detection's best " +
    "classification, the occurrence's determination and the next detection of the track",
  extension: "csv",
  contentType: "text/csv",
  acceptedFilters: occurrenceFilterKeys,
  acceptedOptions: ["excel_compatible"],
  count: countFrames,
  impossibleTimes,
  initialState(): StreamState {
    return {
      phase: "header",
      occurrenceId: 0,
      timestamp: "-infinity",
      detectionId: 0,
      records: 0,
    } satisfies TracksState;
  },
  next,
};
