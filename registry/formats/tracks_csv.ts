/**
 * `tracks_csv`: one row per boxed detection (a real box: four finite numbers, antenna-compat
 * §4.1) of each valid, filtered occurrence, in frame order: keyset on (occurrence id, timestamp,
 * detection id). A batch walks the occurrences from the cursor's on that pass the shared
 * predicate (per-row check, as `occurrenceBatch` does), numbering each one's boxed detections
 * with window functions, and stops at `limit` detections after the cursor. One statement per
 * batch. Shards by occurrence id (a track is one occurrence): a shard holds every frame of its
 * occurrences, so each frame's index, count and next detection are the unsharded file's.
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
import { upToShardEnd } from "../batch_sql.ts";

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
  /**
   * The timestamp is exact UTC text with microseconds and its era (`AD`/`BC`), or a frame's own
   * `infinity`/`-infinity` (PostgreSQL `timestamptz` holds them; each reads back as the same
   * instant); `-infinity` before the first row, `infinity` after the last: a shard starts after
   * every frame of its `afterId` occurrence.
   */
  cursor: [
    { column: "occurrence_id" },
    { column: "cursor_ts", state: "timestamp", start: "-infinity", end: "infinity" },
    { column: "detection_id" },
  ],
  // the occurrence of each boxed detection (each frame): the count, and the shard bounds
  keys(ctx) {
    const { sql } = ctx;
    return sql`select o.id from occurrences o
      join detections d on d.occurrence_id = o.id
      where ${occurrencePredicate(ctx)} and ${realBox(sql, sql`d.bbox`)}`;
  },
  batch(ctx, after, limit, until) {
    const { sql } = ctx;
    const zone = stationZone(sql, settingsOf(ctx), "sd");
    const boxed = (alias: string) => realBox(sql, sql`${sql(alias)}.bbox`);
    // One walk in keyset order: each exported occurrence from the cursor's on (checked row by
    // row against the shared predicate), its boxed frames numbered in frame order by window
    // functions over its own detections (one read of them, not one per frame), the walk stopped
    // at `limit` frames after the cursor. The windows see every frame of the occurrence: the
    // cursor condition is outside them. The page carries the detection's and occurrence's
    // columns (no second read of either) and its session-checked time, looked up once.
    return sql`
    with page as (
      select c.id as occurrence_id, c.event_id, c.deployment_id, c.determination_id,
        c.determination_score, f.id, f.timestamp, f.session_time, f.bbox, f.source_image_id,
        f.frame_index, f.frame_count, f.next_detection_id
      from occurrences c
      cross join lateral (
        select pd.id, pd.occurrence_id, pd.timestamp, pd.bbox, pd.source_image_id,
          -- empty when more than a day outside the occurrence's session (issue 23, time_sql.ts)
          ${sessionTime(sql, sql`pd.timestamp`, sql`c.event_id`)} as session_time,
          (row_number() over frames - 1)::int as frame_index,
          count(*) over ()::int as frame_count,
          lead(pd.id) over frames as next_detection_id
        from detections pd
        where pd.occurrence_id = c.id and ${boxed("pd")}
        window frames as (order by pd.timestamp, pd.id)
      ) f
      where c.project_id = ${ctx.projectId} and c.id >= ${after.occurrence_id}
        ${upToShardEnd(sql, sql`c.id`, until)}
        and (select true from occurrences o where o.id = c.id and ${occurrencePredicate(ctx)})
        and (f.occurrence_id, f.timestamp, f.id)
          > (${after.occurrence_id}::bigint, ${after.cursor_ts}::text::timestamptz,
            ${after.detection_id}::bigint)
      order by c.id, f.timestamp, f.id
      limit ${limit}
    )
    select
      d.occurrence_id,
      d.id as detection_id,
      -- lossless: to_char gives null for ±infinity and a year without its era (44 BC as 0044)
      case when isfinite(d.timestamp)
        then to_char(d.timestamp at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z" BC')
        else d.timestamp::text end as cursor_ts,
      d.event_id,
      d.deployment_id,
      s.id as capture_id,
      ${isoTimestamp(sql, sql`d.session_time`, zone)} as timestamp,
      d.frame_index,
      d.frame_count,
      d.bbox[1] as bbox_x1,
      d.bbox[2] as bbox_y1,
      d.bbox[3] as bbox_x2,
      d.bbox[4] as bbox_y2,
      s.width as capture_width,
      s.height as capture_height,
      tc.taxon_name as classification_label,
      ${finiteOrNull(sql, sql`tc.score`)} as classification_score,
      d.determination_id,
      t.name as determination_name,
      ${finiteOrNull(sql, sql`d.determination_score`)} as determination_score,
      d.next_detection_id
    from page d
    join source_images s on s.id = d.source_image_id
    left join deployments sd on sd.id = s.deployment_id
    left join taxa t on t.id = d.determination_id
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
