/**
 * `detections_csv`: one row per detection of a valid, filtered occurrence, in (occurrence id,
 * detection id) order. A stream exporter because its keyset is that pair: a batch reads the
 * next occurrences that pass the shared predicate (per-row check, as `occurrenceBatch` does),
 * then at most `limit` of their detections after the cursor. One statement per batch. Shards by
 * occurrence id: a shard holds every detection of its occurrences.
 */
import { occurrenceFilterKeys, occurrencePredicate } from "../filters.ts";
import { detectionTimes, keysetCsv } from "../keyset_csv.ts";
import {
  captureUrl,
  cropUrl,
  isoTimestamp,
  realBox,
  settingsOf,
  stationZone,
} from "../occurrence_sql.ts";
import { sessionTime } from "../time_sql.ts";
import { finiteOrNull } from "../numeric_sql.ts";
import { occurrencesFrom, pageDetections } from "../batch_sql.ts";

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

/** One row per detection of the exported occurrences (`detections_csv`). */
export const detectionsCsv = keysetCsv({
  key: "detections_csv",
  label: "Detections (CSV)",
  description: "One row per detection of a valid occurrence: capture, timestamp, bounding box, " +
    "crop, the detection's top classification and the occurrence's determination",
  acceptedFilters: occurrenceFilterKeys,
  columns: detectionCsvColumns,
  cursor: [{ column: "occurrence_id" }, { column: "detection_id" }],
  // the occurrence of each exported detection: the count, and the shard bounds by occurrence
  keys: (ctx) =>
    ctx.sql`select o.id from occurrences o
      join detections d on d.occurrence_id = o.id
      where ${occurrencePredicate(ctx)}`,
  batch(ctx, after, limit, until) {
    const { sql } = ctx;
    const settings = settingsOf(ctx);
    // the capture's station zone (antenna-compat §2), else TIME_ZONE
    const zone = stationZone(sql, settings, "sd");
    // limit + 1 occurrences: the cursor's own one may have no detection left, every other has one
    return sql`
    with ${occurrencesFrom(ctx, after.occurrence_id, limit, until)}, page as (
      select pd.id from occ join detections pd on pd.occurrence_id = occ.id
      where (pd.occurrence_id, pd.id) > (${after.occurrence_id}::bigint, ${after.detection_id}::bigint)
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
    ${pageDetections(ctx)}
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
  },
  impossibleTimes: [detectionTimes("timestamp left empty")],
});
