/**
 * `occurrences_api_json`: one JSON array of nested occurrence objects, shaped like the
 * platform's occurrence API. Postgres builds each object (`json_build_object`, `json_agg` in
 * LATERAL subqueries over the batch's occurrences only): one statement per batch, one text
 * column per occurrence, and the TypeScript side joins strings.
 */
import { countOccurrences, occurrenceFilterKeys } from "../filters.ts";
import {
  bestPrediction,
  detectionStats,
  eventName,
  isoTimestamp,
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

/** How many crop URLs an occurrence lists in `detection_images`. */
const detectionImagesLimit = 5;

/** Between two array items; one occurrence per line keeps big files greppable. */
const separator = ",\n";

/**
 * The next `limit` occurrences after `afterId` as API-shaped JSON documents (one text column per
 * occurrence), in id order: one statement. Shared with `occurrences_ndjson`.
 */
export async function occurrenceDocuments(
  ctx: ExportQueryContext,
  cursor: { afterId: RecordId | null; limit: number },
): Promise<{ id: RecordId; doc: string }[]> {
  const { sql } = ctx;
  return await sql<{ id: RecordId; doc: string }[]>`
    ${occurrenceBatch(ctx, cursor)}
    select o.id, json_build_object(
      'id', o.id,
      'details', '/api/v2/occurrences/' || o.id || '/',
      'event', case when e.id is null then null else json_build_object(
        'id', e.id,
        'name', ${eventName(sql)},
        'details', '/api/v2/events/' || e.id || '/',
        -- "Jun 1, 2024", "Jun 1-2, 2024" or "Jun 30, 2024 - Jul 1, 2024" (UTC)
        'date_label', case
          when ev.s::date = ev.f::date then to_char(ev.s, 'Mon FMDD, YYYY')
          when date_trunc('month', ev.s) = date_trunc('month', ev.f)
            then to_char(ev.s, 'Mon FMDD') || '-' || to_char(ev.f, 'FMDD, YYYY')
          else to_char(ev.s, 'Mon FMDD, YYYY') || ' - ' || to_char(ev.f, 'Mon FMDD, YYYY')
        end
      ) end,
      'deployment', case when d.id is null then null else json_build_object(
        'id', d.id,
        'name', d.name,
        'details', '/api/v2/deployments/' || d.id || '/'
      ) end,
      'first_appearance_timestamp', ${isoTimestamp(sql, sql`ds.first_timestamp`)},
      'first_appearance_time', to_char(ds.first_timestamp at time zone 'UTC', 'HH24:MI:SS'),
      'duration', ds.duration,
      -- "42 sec", "5 min", "1 hour 3 min", "2 hours"
      'duration_label', case
        when ds.duration is null then null
        when ds.duration < 60 then floor(ds.duration)::int || ' sec'
        else concat_ws(' ',
          case when ds.duration >= 3600 then floor(ds.duration / 3600)::int
            || case when ds.duration >= 7200 then ' hours' else ' hour' end end,
          case when floor(ds.duration / 60)::int % 60 > 0
            then (floor(ds.duration / 60)::int % 60) || ' min' end)
      end,
      'determination', case when t.id is null then null else json_build_object(
        'id', t.id,
        'name', t.name,
        'rank', t.rank,
        'parents', t.parents
      ) end,
      'determination_score', o.determination_score,
      'detections_count', ds.detections_count,
      'detection_images', coalesce(im.urls, '[]'::json),
      'best_machine_prediction', case when bp.classification_id is null then null
        else json_build_object(
          'taxon', json_build_object('id', bp.taxon_id, 'name', bp.taxon_name, 'rank', bp.taxon_rank),
          'score', bp.score,
          'algorithm', json_build_object('id', bp.algorithm_id, 'name', bp.algorithm_name)
        ) end,
      'identifications', coalesce(idn.items, '[]'::json),
      'detections', coalesce(dt.items, '[]'::json)
    )::text as doc
    from batch
    join occurrences o on o.id = batch.id
    left join events e on e.id = o.event_id
    left join deployments ed on ed.id = e.deployment_id
    left join lateral (
      select e.start at time zone 'UTC' as s, e."end" at time zone 'UTC' as f
    ) ev on true
    left join deployments d on d.id = o.deployment_id
    left join taxa t on t.id = o.determination_id
    ${detectionStats(sql)}
    ${bestPrediction(sql)}
    left join lateral (
      select json_agg(crops.url order by crops.id) as urls
      from (
        select cd.id, ${mediaUrl(sql, sql`cs.public_base_url`, sql`cd.path`)} as url
        from detections cd
        join source_images cs on cs.id = cd.source_image_id
        where cd.occurrence_id = o.id and cd.path is not null
        order by cd.id
        limit ${detectionImagesLimit}
      ) crops
    ) im on true
    left join lateral (
      select json_agg(json_build_object(
        'id', ii.id,
        'taxon', json_build_object('id', it.id, 'name', it.name, 'rank', it.rank),
        'user', json_build_object('id', iu.id, 'name', iu.name),
        'withdrawn', ii.withdrawn,
        'agreed_with_identification_id', ii.agreed_with_identification_id,
        'agreed_with_prediction_id', ii.agreed_with_prediction_id,
        'created_at', ${isoTimestamp(sql, sql`ii.created_at`)}
      ) order by ii.created_at, ii.id) as items
      from identifications ii
      join taxa it on it.id = ii.taxon_id
      join users iu on iu.id = ii.user_id
      where ii.occurrence_id = o.id
    ) idn on true
    left join lateral (
      select json_agg(json_build_object(
        'id', dd.id,
        'timestamp', ${isoTimestamp(sql, sql`dd.timestamp`)},
        'source_image', json_build_object(
          'id', ds_i.id,
          'url', ${mediaUrl(sql, sql`ds_i.public_base_url`, sql`ds_i.path`)},
          'width', ds_i.width,
          'height', ds_i.height
        ),
        'bbox', dd.bbox,
        'url', case when dd.path is null then null
          else ${mediaUrl(sql, sql`ds_i.public_base_url`, sql`dd.path`)} end,
        'classifications', coalesce(dc.items, '[]'::json)
      ) order by dd.id) as items
      from detections dd
      join source_images ds_i on ds_i.id = dd.source_image_id
      left join lateral (
        select json_agg(json_build_object(
          'id', cc.id,
          'taxon', json_build_object('id', ct.id, 'name', ct.name, 'rank', ct.rank),
          'score', cc.score,
          'terminal', cc.terminal,
          'algorithm', json_build_object('id', ca.id, 'name', ca.name),
          'created_at', ${isoTimestamp(sql, sql`cc.created_at`)}
        ) order by cc.id) as items
        from classifications cc
        join taxa ct on ct.id = cc.taxon_id
        join algorithms ca on ca.id = cc.algorithm_id
        where cc.detection_id = dd.id
      ) dc on true
      where dd.occurrence_id = o.id
    ) dt on true
    order by batch.id`;
}

async function fetchBatch(
  ctx: ExportQueryContext,
  cursor: { afterId: RecordId | null; limit: number; recordsBefore: number },
): Promise<EncodedBatch> {
  const rows = await occurrenceDocuments(ctx, cursor);
  if (rows.length === 0) return { records: 0, lastId: null, text: "" };
  const lead = cursor.recordsBefore === 0 ? "" : separator;
  return {
    records: rows.length,
    lastId: recordId(rows[rows.length - 1].id),
    text: lead + rows.map((row) => row.doc).join(separator),
  };
}

/** The API-shaped JSON array of occurrences (`occurrences_api_json`). */
export const occurrencesApiJson: RecordExporter = {
  key: "occurrences_api_json",
  label: "Occurrences (API JSON)",
  description: "A JSON array of valid occurrences as the platform's API returns them, with " +
    "their determination, identifications, detections and classifications",
  extension: "json",
  contentType: "application/json",
  acceptedFilters: occurrenceFilterKeys,
  count: countOccurrences,
  prologue(): string {
    return "[";
  },
  fetchBatch,
  epilogue(): string {
    return "]";
  },
};
