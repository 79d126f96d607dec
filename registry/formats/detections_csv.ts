/**
 * `detections_csv`: one row per detection of a valid, filtered occurrence, in (occurrence id,
 * detection id) order. A stream exporter because its keyset is that pair: a batch reads the
 * next occurrences that pass the shared predicate (per-row check, as `occurrenceBatch` does),
 * then at most `limit` of their detections after the cursor. One statement per batch.
 */
import { stringify } from "csv-stringify/sync";
import { csvFormulaGuard } from "../encoding.ts";
import { occurrenceFilterKeys, occurrencePredicate } from "../filters.ts";
import {
  captureUrl,
  cropUrl,
  isoTimestamp,
  realBox,
  settingsOf,
  stationZone,
} from "../occurrence_sql.ts";
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
export const detectionCsvColumns: readonly string[] = [
  "detection_id",
  "occurrence_id",
  "capture_id",
  "capture_url",
  "timestamp",
  "bbox",
  "bbox_width",
  "bbox_height",
  "crop_url",
  "top_classification_taxon_id",
  "top_classification_taxon_name",
  "top_classification_score",
  "top_classification_algorithm",
  "top_classification_terminal",
  "determination_id",
  "determination_name",
  "determination_score",
  "deployment_id",
  "event_id",
];

/** RFC 4180 with CRLF; text cells are guarded against formula injection (OWASP). */
const csvOptions = {
  record_delimiter: "\r\n",
  quoted_match: /[\r\n]/,
  cast: {
    boolean: (value: boolean): string => (value ? "true" : "false"),
    string: csvFormulaGuard,
  },
};

interface DetectionState {
  [key: string]: StreamState;
  phase: "header" | "rows" | "done";
  /** Keyset cursor: the last (occurrence id, detection id) written; 0, 0 before the first. */
  occurrenceId: RecordId;
  detectionId: RecordId;
  records: number;
}

/** Every detection of the valid filtered occurrences: one statement. */
async function countDetections(ctx: ExportQueryContext): Promise<number> {
  const [row] = await ctx.sql<{ n: number }[]>`
    select count(*)::bigint as n from occurrences o
    join detections d on d.occurrence_id = o.id
    where ${occurrencePredicate(ctx)}`;
  return Number(row.n);
}

async function fetchRows(
  ctx: ExportQueryContext,
  state: DetectionState,
  limit: number,
): Promise<({ detection_id: RecordId; occurrence_id: RecordId } & Record<string, unknown>)[]> {
  const { sql } = ctx;
  const settings = settingsOf(ctx);
  // the capture's station zone (antenna-compat §2), else TIME_ZONE
  const zone = stationZone(sql, settings, "sd");
  // limit + 1 occurrences: the cursor's own one may have no detection left, every other has one
  return await sql<
    ({ detection_id: RecordId; occurrence_id: RecordId } & Record<string, unknown>)[]
  >`
    with occ as (
      select c.id from occurrences c
      where c.project_id = ${ctx.projectId} and c.id >= ${state.occurrenceId}
        and (select true from occurrences o where o.id = c.id and ${occurrencePredicate(ctx)})
      order by c.id
      limit ${limit + 1}
    ), page as (
      select pd.id from occ join detections pd on pd.occurrence_id = occ.id
      where (pd.occurrence_id, pd.id) > (${state.occurrenceId}::bigint, ${state.detectionId}::bigint)
      order by pd.occurrence_id, pd.id
      limit ${limit}
    )
    select
      d.id as detection_id,
      d.occurrence_id,
      s.id as capture_id,
      ${captureUrl(sql, sql`s.public_base_url`, sql`s.path`)} as capture_url,
      -- empty when more than a day outside the occurrence's session (issue 23, time_sql.ts)
      ${isoTimestamp(sql, sessionTime(sql, sql`d.timestamp`, sql`o.event_id`), zone)} as timestamp,
      -- a bbox that is not four finite numbers is no box: empty like NULL (issue 12, kind 1)
      case when ${realBox(sql, sql`d.bbox`)} then to_json(d.bbox)::text end as bbox,
      case when ${realBox(sql, sql`d.bbox`)} then d.bbox[3] - d.bbox[1] end as bbox_width,
      case when ${realBox(sql, sql`d.bbox`)} then d.bbox[4] - d.bbox[2] end as bbox_height,
      ${cropUrl(sql, settings.mediaUrl, sql`d.path`)} as crop_url,
      tc.taxon_id as top_classification_taxon_id,
      tc.taxon_name as top_classification_taxon_name,
      ${finiteOrNull(sql, sql`tc.score`)} as top_classification_score,
      tc.algorithm_name as top_classification_algorithm,
      tc.terminal as top_classification_terminal,
      o.determination_id,
      t.name as determination_name,
      ${finiteOrNull(sql, sql`o.determination_score`)} as determination_score,
      o.deployment_id,
      o.event_id
    from page
    join detections d on d.id = page.id
    join occurrences o on o.id = d.occurrence_id
    join source_images s on s.id = d.source_image_id
    left join deployments sd on sd.id = s.deployment_id
    left join taxa t on t.id = o.determination_id
    -- the detection's top classification: highest score, terminal or not (tie: lowest id)
    left join lateral (
      select tcc.taxon_id, tct.name as taxon_name, tcc.score, tca.name as algorithm_name,
        tcc.terminal
      from classifications tcc
      join taxa tct on tct.id = tcc.taxon_id
      join algorithms tca on tca.id = tcc.algorithm_id
      where tcc.detection_id = d.id
      order by ${finiteOrNull(sql, sql`tcc.score`)} desc nulls last, tcc.id
      limit 1
    ) tc on true
    order by d.occurrence_id, d.id`;
}

/** Detections of the export more than a day outside their session (issue 23). */
async function impossibleTimes(ctx: ExportQueryContext): Promise<ImpossibleTimeCount[]> {
  const { sql } = ctx;
  return await countImpossibleTimes(sql, [{
    kind: "detection_time",
    effect: "timestamp left empty",
    rows: sql`select not ${withinSession(sql, sql`d.timestamp`, sql`o.event_id`)} as bad
      from occurrences o join detections d on d.occurrence_id = o.id
      where ${occurrencePredicate(ctx)}`,
  }]);
}

async function next(
  ctx: ExportQueryContext,
  raw: StreamState,
  options: { limit: number },
): Promise<StreamChunk> {
  const state = raw as DetectionState;
  if (state.phase === "header") {
    return {
      data: stringify([[...detectionCsvColumns]], csvOptions),
      records: 0,
      state: { ...state, phase: "rows" },
      done: false,
    };
  }
  if (state.phase === "done") return { data: "", records: 0, state, done: true };
  const rows = await fetchRows(ctx, state, options.limit);
  const last = rows.at(-1);
  const after: DetectionState = {
    phase: rows.length < options.limit ? "done" : "rows",
    occurrenceId: last ? recordId(last.occurrence_id) : state.occurrenceId,
    detectionId: last ? recordId(last.detection_id) : state.detectionId,
    records: state.records + rows.length,
  };
  return {
    data: rows.length === 0
      ? ""
      : stringify(rows, { ...csvOptions, columns: [...detectionCsvColumns] }),
    records: rows.length,
    state: after,
    done: after.phase === "done",
  };
}

/** One row per detection of the exported occurrences (`detections_csv`). */
export const detectionsCsv: StreamExporter = {
  kind: "stream",
  key: "detections_csv",
  label: "Detections (CSV)",
  description: "One row per detection of a valid occurrence: capture, timestamp, bounding box, " +
    "crop, the detection's top classification and the occurrence's determination",
  extension: "csv",
  contentType: "text/csv",
  acceptedFilters: occurrenceFilterKeys,
  acceptedOptions: ["excel_compatible"],
  count: countDetections,
  impossibleTimes,
  initialState(): StreamState {
    return {
      phase: "header",
      occurrenceId: 0,
      detectionId: 0,
      records: 0,
    } satisfies DetectionState;
  },
  next,
};
