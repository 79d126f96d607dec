/**
 * `occurrences_simple_csv`: one row per valid occurrence, the flat table of the original
 * platform's CSV export. One SQL statement per batch; the database computes every column, the
 * TypeScript side only encodes the rows.
 */
import { stringify } from "csv-stringify/sync";
import { countOccurrences, occurrenceFilterKeys } from "../filters.ts";
import type postgres from "postgres";
import {
  bestDetection,
  bestPrediction,
  csvField,
  detectionStats,
  eventName,
  type Fragment,
  isoTimestamp,
  jsNumberText,
  mediaUrl,
  occurrenceBatch,
} from "../occurrence_sql.ts";
import {
  type EncodedBatch,
  type ExportQueryContext,
  type RecordExporter,
  type RecordId,
  recordId,
} from "../types.ts";

/** The header, in file order (the original platform's column names). */
export const occurrenceCsvColumns: readonly string[] = [
  "id",
  "event_id",
  "event_name",
  "deployment_id",
  "deployment_name",
  "project_id",
  "project_name",
  "determination_id",
  "determination_name",
  "determination_score",
  "verification_status",
  "best_machine_prediction_name",
  "best_machine_prediction_algorithm",
  "best_machine_prediction_score",
  "verified_by",
  "participant_count",
  "agreed_with_algorithm",
  "agreed_with_user",
  "determination_matches_machine_prediction",
  "detections_count",
  "first_appearance_timestamp",
  "last_appearance_timestamp",
  "duration",
  "best_detection_url",
  "best_detection_bbox",
  "best_detection_width",
  "best_detection_height",
  "best_detection_capture_url",
];

/**
 * RFC 4180: CRLF between records. csv-stringify only quotes a field containing the record
 * delimiter itself, so a lone `\n` or `\r` inside a value is quoted explicitly.
 */
const csvOptions = {
  record_delimiter: "\r\n",
  quoted_match: /[\r\n]/,
  cast: { boolean: (value: boolean): string => (value ? "true" : "false") },
};

/** Columns of type float8, written as JavaScript writes numbers. */
const floatColumns: ReadonlySet<string> = new Set([
  "determination_score",
  "best_machine_prediction_score",
  "duration",
  "best_detection_width",
  "best_detection_height",
]);

/**
 * One CSV record of the row `r` (without its CRLF), serialized by Postgres into the bytes
 * `csv-stringify` wrote before: decoding 28 columns per row into JS values and encoding them
 * again cost the worker more than the query cost the database.
 */
function csvLine(sql: postgres.Sql): Fragment {
  const fields = occurrenceCsvColumns.map((name, i) => {
    const column = sql`r.${sql(name)}`;
    // a number is never quoted nor formula-guarded: only text goes through csvField
    const field = floatColumns.has(name)
      ? jsNumberText(sql, column)
      : csvField(sql, sql`${column}::text`);
    return i === 0 ? field : sql`, ',', ${field}`;
  });
  return sql`concat(${fields})`;
}

async function fetchBatch(
  ctx: ExportQueryContext,
  cursor: { afterId: RecordId | null; limit: number; recordsBefore: number },
): Promise<EncodedBatch> {
  const { sql } = ctx;
  // one row: the batch's records as CSV text, in id order
  const [batch] = await sql<{ records: number; last_id: RecordId | null; text: string | null }[]>`
    ${occurrenceBatch(ctx, cursor)}
    select count(*)::int as records, max(r.id) as last_id,
      string_agg(${csvLine(sql)} || E'\\r\\n', '' order by r.id) as text
    from (
    select
      o.id,
      o.event_id,
      ${eventName(sql)} as event_name,
      o.deployment_id,
      d.name as deployment_name,
      o.project_id,
      p.name as project_name,
      o.determination_id,
      t.name as determination_name,
      o.determination_score,
      case when li.id is null then 'Not verified' else 'Verified' end as verification_status,
      bp.taxon_name as best_machine_prediction_name,
      bp.algorithm_name as best_machine_prediction_algorithm,
      bp.score as best_machine_prediction_score,
      li.user_label as verified_by,
      pc.participant_count,
      li.agreed_with_algorithm,
      li.agreed_with_user,
      coalesce(o.determination_id = bp.taxon_id, false)
        as determination_matches_machine_prediction,
      ds.detections_count,
      ${isoTimestamp(sql, sql`ds.first_timestamp`)} as first_appearance_timestamp,
      ${isoTimestamp(sql, sql`ds.last_timestamp`)} as last_appearance_timestamp,
      ds.duration,
      ${
    mediaUrl(sql, sql`bx.public_base_url`, sql`coalesce(bx.crop_path, bx.capture_path)`)
  } as best_detection_url,
      to_json(bx.bbox)::text as best_detection_bbox,
      bx.bbox[3] - bx.bbox[1] as best_detection_width,
      bx.bbox[4] - bx.bbox[2] as best_detection_height,
      ${mediaUrl(sql, sql`bx.public_base_url`, sql`bx.capture_path`)} as best_detection_capture_url
    from batch
    join occurrences o on o.id = batch.id
    join projects p on p.id = o.project_id
    left join events e on e.id = o.event_id
    left join deployments ed on ed.id = e.deployment_id
    left join deployments d on d.id = o.deployment_id
    left join taxa t on t.id = o.determination_id
    ${detectionStats(sql)}
    ${bestPrediction(sql)}
    ${bestDetection(sql)}
    -- the latest identification that still stands
    left join lateral (
      select
        li_i.id,
        coalesce(nullif(li_u.name, ''), li_u.email) as user_label,
        li_a.name as agreed_with_algorithm,
        coalesce(nullif(li_au.name, ''), li_au.email) as agreed_with_user
      from identifications li_i
      join users li_u on li_u.id = li_i.user_id
      left join classifications li_c on li_c.id = li_i.agreed_with_prediction_id
      left join algorithms li_a on li_a.id = li_c.algorithm_id
      left join identifications li_ai on li_ai.id = li_i.agreed_with_identification_id
      left join users li_au on li_au.id = li_ai.user_id
      where li_i.occurrence_id = o.id and not li_i.withdrawn
      order by li_i.created_at desc, li_i.id desc
      limit 1
    ) li on true
    left join lateral (
      select count(distinct pu.user_id)::int as participant_count
      from identifications pu
      where pu.occurrence_id = o.id and not pu.withdrawn
    ) pc on true
    ) r`;
  return {
    records: batch.records,
    lastId: batch.last_id === null ? null : recordId(batch.last_id),
    text: batch.text ?? "",
  };
}

/** The flat CSV of occurrences (`occurrences_simple_csv`). */
export const occurrencesSimpleCsv: RecordExporter = {
  key: "occurrences_simple_csv",
  label: "Occurrences (simple CSV)",
  description: "One row per valid occurrence: determination, best machine prediction, " +
    "verification, appearance times and best detection",
  extension: "csv",
  contentType: "text/csv",
  acceptedFilters: occurrenceFilterKeys,
  acceptedOptions: ["excel_compatible"],
  count: countOccurrences,
  prologue(): string {
    return stringify([[...occurrenceCsvColumns]], csvOptions);
  },
  fetchBatch,
  epilogue(): string {
    return "";
  },
};
