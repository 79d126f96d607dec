/**
 * `occurrences_simple_csv`: one row per valid occurrence, the flat table of the original
 * platform's CSV export, cell for cell (shared/antenna-compat/README.md §5; deviations §8). One SQL statement per batch; the database computes every column, the
 * TypeScript side only encodes the rows.
 */
import { occurrencePlaces } from "../batch_sql.ts";
import { occurrenceRecords } from "../occurrence_records.ts";
import { columnContents, csvHeader } from "../keyset_csv.ts";
import type { ColumnMeaning } from "../types.ts";
import type postgres from "postgres";
import {
  batchDetectionSets,
  batchOccurrences,
  bboxText,
  captureUrl,
  cropUrl,
  csvDuration,
  csvField,
  csvTimestamp,
  eventName,
  type Fragment,
  localTime,
  occurrenceBatch,
  pyFloatText,
  settingsOf,
  stationZone,
} from "../occurrence_sql.ts";
import {
  type BatchCursor,
  type EncodedBatch,
  type ExportQueryContext,
  type RecordId,
  recordId,
} from "../types.ts";
import { finiteOrNull } from "../numeric_sql.ts";
import { columnMeanings } from "../column_meanings.ts";

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

/** What each column means (the data card, `occurrences_parquet` and docs/formats.md list it). */
export const occurrenceCsvMeanings: Readonly<Record<string, ColumnMeaning>> = columnMeanings(
  "occurrences_simple_csv",
);

/**
 * One CSV record of the row `r` (without its CRLF), serialized by Postgres in the dialect of
 * `csvDialect` (antenna-compat §5.1: CRLF, a field quoted only when it holds `,`, `"`, CR or
 * LF): every column of `r` is already the cell's text (null → empty field).
 */
function csvLine(sql: postgres.Sql): Fragment {
  const fields = occurrenceCsvColumns.map((name, i) => {
    const column = sql`r.${sql(name)}::text`;
    // an integer's text (`-?[0-9]+`) needs no quotes and is a number to the formula guard
    const text = integerColumns.has(name) ? column : csvField(sql, column);
    return i === 0 ? text : sql`, ',', ${text}`;
  });
  return sql`concat(${fields})`;
}

/** Columns whose cells are integers or empty. */
const integerColumns: ReadonlySet<string> = new Set([
  "id",
  "event_id",
  "deployment_id",
  "project_id",
  "determination_id",
  "participant_count",
  "detections_count",
]);

/** `True` / `False` (antenna-compat §3.4); null stays null. */
function pyBool(sql: postgres.Sql, value: Fragment): Fragment {
  return sql`(case when ${value} then 'True' when not ${value} then 'False' end)`;
}

async function fetchBatch(
  ctx: ExportQueryContext,
  cursor: BatchCursor,
): Promise<EncodedBatch> {
  const { sql } = ctx;
  const settings = settingsOf(ctx);
  const zone = stationZone(sql, settings, "d");
  const width = sql`abs(bx.bbox[3] - bx.bbox[1])`;
  const height = sql`abs(bx.bbox[4] - bx.bbox[2])`;
  // one row: the batch's records as CSV text, in id order (antenna-compat §5.2, column by column)
  const [batch] = await sql<{ records: number; last_id: RecordId | null; text: string | null }[]>`
    ${occurrenceBatch(ctx, cursor)}${batchDetectionSets(sql)},
    -- the best identification (§4.2): the latest non-withdrawn one, tie: highest id
    li as (
      select distinct on (li_i.occurrence_id) li_i.occurrence_id,
        li_u.name as user_name,
        li_a.name as agreed_with_algorithm,
        li_au.email as agreed_with_user
      from batch
      join identifications li_i on li_i.occurrence_id = batch.id
      join users li_u on li_u.id = li_i.user_id
      left join classifications li_c on li_c.id = li_i.agreed_with_prediction_id
      left join algorithms li_a on li_a.id = li_c.algorithm_id
      left join identifications li_ai on li_ai.id = li_i.agreed_with_identification_id
      left join users li_au on li_au.id = li_ai.user_id
      where not li_i.withdrawn
      order by li_i.occurrence_id, li_i.created_at desc, li_i.id desc
    ),
    pcs as (
      select pu.occurrence_id, count(distinct pu.user_id)::int as participant_count
      from batch join identifications pu on pu.occurrence_id = batch.id
      where not pu.withdrawn
      group by pu.occurrence_id
    )
    select count(*)::int as records, max(r.id) as last_id,
      string_agg(${csvLine(sql)} || E'\\r\\n', '' order by r.id) as text
    from (
    select
      o.id,
      o.event_id::text,
      ${eventName(sql, settings)} as event_name,
      o.deployment_id::text,
      d.name as deployment_name,
      o.project_id::text,
      p.name as project_name,
      o.determination_id::text,
      t.name as determination_name,
      ${pyFloatText(sql, finiteOrNull(sql, sql`o.determination_score`))} as determination_score,
      ${pyBool(sql, sql`coalesce(pcs.participant_count, 0) > 0`)} as verification_status,
      bp.taxon_name as best_machine_prediction_name,
      bp.algorithm_name as best_machine_prediction_algorithm,
      ${pyFloatText(sql, sql`bp.score`)} as best_machine_prediction_score,
      li.user_name as verified_by,
      coalesce(pcs.participant_count, 0)::text as participant_count,
      li.agreed_with_algorithm,
      li.agreed_with_user,
      case when bp.classification_id is not null
        then ${pyBool(sql, sql`coalesce(o.determination_id = bp.taxon_id, false)`)} end
        as determination_matches_machine_prediction,
      coalesce(ds.detections_count, 0)::text as detections_count,
      ${
    csvTimestamp(sql, localTime(sql, sql`ds.first_timestamp`, zone))
  } as first_appearance_timestamp,
      ${
    csvTimestamp(sql, localTime(sql, sql`ds.last_timestamp`, zone))
  } as last_appearance_timestamp,
      ${csvDuration(sql, sql`ds.duration_us`)} as duration,
      ${cropUrl(sql, settings.mediaUrl, sql`bx.crop_path`)} as best_detection_url,
      ${bboxText(sql, sql`bx.bbox`)} as best_detection_bbox,
      ${pyFloatText(sql, width)} as best_detection_width,
      ${pyFloatText(sql, height)} as best_detection_height,
      ${captureUrl(sql, sql`bx.public_base_url`, sql`bx.capture_path`)}
        as best_detection_capture_url
    from ${batchOccurrences(ctx, cursor)}
    join projects p on p.id = o.project_id
    ${occurrencePlaces(ctx)}
    left join taxa t on t.id = o.determination_id
    left join ds on ds.occurrence_id = o.id
    left join bp on bp.occurrence_id = o.id
    left join bx on bx.occurrence_id = o.id
    left join li on li.occurrence_id = o.id
    left join pcs on pcs.occurrence_id = o.id
    -- computed once per row before the cells are encoded (a flattened subquery would repeat
    -- each column's expression in every reference the encoding makes)
    offset 0
    ) r`;
  return {
    records: batch.records,
    lastId: batch.last_id === null ? null : recordId(batch.last_id),
    text: batch.text ?? "",
  };
}

/** The flat CSV of occurrences (`occurrences_simple_csv`). */
export const occurrencesSimpleCsv = occurrenceRecords({
  key: "occurrences_simple_csv",
  label: "Occurrences (simple CSV)",
  description: "One row per valid occurrence: determination, best machine prediction, " +
    "verification, appearance times and best detection",
  extension: "csv",
  contentType: "text/csv",
  acceptedOptions: ["excel_compatible"],
  contents: columnContents("occurrences_simple_csv", occurrenceCsvColumns, occurrenceCsvMeanings),
  prologue: csvHeader(occurrenceCsvColumns),
  fetchBatch,
  epilogue: "",
});
