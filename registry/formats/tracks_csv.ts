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
import { occurrenceFilterKeys, occurrencePredicate } from "../filters.ts";
import { detectionTimes, keysetCsv } from "../keyset_csv.ts";
import { isoTimestamp, realBox, settingsOf, stationZone } from "../occurrence_sql.ts";
import { sessionTime } from "../time_sql.ts";
import { finiteOrNull } from "../numeric_sql.ts";
import { occurrencesFrom, pageDetections } from "../batch_sql.ts";

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

/** One row per boxed detection of the exported occurrences, in frame order (`tracks_csv`). */
export const tracksCsv = keysetCsv({
  key: "tracks_csv",
  label: "Tracks (CSV)",
  description: "One row per boxed detection of a valid occurrence, in frame order: ids, local " +
    "timestamp, frame index and count, box corners, capture size, the detection's best " +
    "classification, the occurrence's determination and the next detection of the track",
  acceptedFilters: occurrenceFilterKeys,
  columns: tracksCsvColumns,
  /** The timestamp is exact UTC text with microseconds (`-infinity` before the first row). */
  cursor: [
    { column: "occurrence_id" },
    { column: "cursor_ts", state: "timestamp", start: "-infinity" },
    { column: "detection_id" },
  ],
  count(ctx) {
    const { sql } = ctx;
    return sql`select count(*)::bigint as n from occurrences o
      join detections d on d.occurrence_id = o.id
      where ${occurrencePredicate(ctx)} and ${realBox(sql, sql`d.bbox`)}`;
  },
  batch(ctx, after, limit) {
    const { sql } = ctx;
    const zone = stationZone(sql, settingsOf(ctx), "sd");
    const boxed = (alias: string) => realBox(sql, sql`${sql(alias)}.bbox`);
    // limit + 1 occurrences: the cursor's own one may have no frame left, every other has one
    return sql`
    with ${occurrencesFrom(ctx, after.occurrence_id, limit)}, page as (
      select pd.id from occ join detections pd on pd.occurrence_id = occ.id
      where ${boxed("pd")}
        and (pd.occurrence_id, pd.timestamp, pd.id)
          > (${after.occurrence_id}::bigint, ${after.cursor_ts}::text::timestamptz,
            ${after.detection_id}::bigint)
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
    ${pageDetections(ctx)}
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
  },
  impossibleTimes: [detectionTimes("timestamp left empty", { boxed: true })],
});
