/**
 * SQL building blocks shared by the occurrence-based formats, so that "best machine prediction",
 * "event name" or "duration" mean the same thing in every file a project exports.
 *
 * Every fragment expects the occurrence table aliased as `o`. The LATERAL forms run per
 * occurrence of the batch; {@link batchDetectionSets} computes the same results as sets over the
 * whole batch (what the occurrence formats use since issue 15). Either way a batch costs in
 * proportion to its rows, not to the table.
 */
import type postgres from "postgres";
import { occurrencePredicate } from "./filters.ts";
import type { ExportQueryContext, RecordId } from "./types.ts";
import { defaultFormatSettings, type FormatSettings } from "../config/mod.ts";
import { finiteOrNull, realBox } from "./numeric_sql.ts";
import { localTime } from "./datetime_sql.ts";

// Re-exported where the formats have always found them: the non-finite rules, times and
// durations, URLs and value text live in their own modules.
export { realBox };
export {
  csvDuration,
  csvTimestamp,
  durationLabel,
  isoDuration,
  isoTimestamp,
  jsonTimestamp,
  localTime,
  timeOfDay,
} from "./datetime_sql.ts";
export {
  captureJsonUrl,
  captureUrl,
  cropUrl,
  detailsLink,
  encodePath,
  gbifTaxonUrl,
  mediaUrl,
  userImageUrl,
} from "./url_sql.ts";
export { bboxText, csvField, csvFormulaGuardSql, jsNumberText, pyFloatText } from "./text_sql.ts";

/** A postgres.js SQL fragment. */
export type Fragment = postgres.PendingQuery<postgres.Row[]>;

/**
 * `with batch as (…)`: the ids of the next `limit` valid occurrences after `afterId` (and up to
 * `untilId` inclusive, when given: the end of a shard), in id order (keyset pagination). Join it to `occurrences o` and order by `batch.id`. `also` is a
 * format's own extra condition on `o` (the Darwin Core Archive needs an event).
 *
 * The shared predicate is checked per candidate in a scalar subquery, which the planner cannot
 * flatten. Written as a plain `where`, its `exists (… detections …)` becomes a merge semi-join
 * that reads the detections index from its start on every batch (batch N costs O(N), the whole
 * export O(N²)); here a batch reads only the candidates from `afterId` on.
 */
export function occurrenceBatch(
  ctx: ExportQueryContext,
  cursor: { afterId: RecordId | null; limit: number; untilId?: RecordId | null },
  options: { also?: Fragment } = {},
): Fragment {
  const { sql } = ctx;
  const after = cursor.afterId === null ? sql`` : sql`and c.id > ${cursor.afterId}`;
  const until = cursor.untilId == null ? sql`` : sql`and c.id <= ${cursor.untilId}`;
  const also = options.also === undefined ? sql`` : sql`and ${options.also}`;
  return sql`
    with batch as (
      select c.id from occurrences c
      where c.project_id = ${ctx.projectId} ${after} ${until}
        and (select true from occurrences o where o.id = c.id and ${
    occurrencePredicate(ctx)
  } ${also})
      order by c.id
      limit ${cursor.limit}
    )`;
}

/** The format settings of an export: the context's, else the defaults (antenna-compat §2). */
export function settingsOf(ctx: ExportQueryContext): FormatSettings {
  return ctx.settings ?? defaultFormatSettings;
}

/**
 * The zone of an event's local values (antenna-compat §2): its deployment's `time_zone`, else
 * `TIME_ZONE`. Expects the event's deployment aliased `ed` (or `alias`).
 */
export function stationZone(
  sql: postgres.Sql,
  settings: FormatSettings,
  alias = "ed",
): Fragment {
  return sql`coalesce(${sql(alias)}.time_zone, ${settings.timeZone}::text)`;
}

/**
 * The event's `date_label` (antenna-compat §4.7, deviation d) from its local start and end:
 * `Jul 4 2023`, `May 1-2 2023`, `Jun 30-Jul 1 2024`, `Dec 31 2023-Jan 1 2024`. Expects the event
 * aliased `e`; `zone` is its station zone. Null without an event.
 */
export function eventDateLabel(sql: postgres.Sql, zone: Fragment): Fragment {
  const s = localTime(sql, sql`e.start`, zone);
  const f = localTime(sql, sql`e."end"`, zone);
  return sql`(case
    when e.id is null then null
    when ${f} is null or ${s}::date = ${f}::date then to_char(${s}, 'Mon FMDD YYYY')
    when date_trunc('month', ${s}) = date_trunc('month', ${f})
      then to_char(${s}, 'Mon FMDD') || '-' || to_char(${f}, 'FMDD YYYY')
    when date_trunc('year', ${s}) = date_trunc('year', ${f})
      then to_char(${s}, 'Mon FMDD') || '-' || to_char(${f}, 'Mon FMDD YYYY')
    else to_char(${s}, 'Mon FMDD YYYY') || '-' || to_char(${f}, 'Mon FMDD YYYY')
  end)`;
}

/**
 * The event's name (antenna-compat §4.7): the local start's weekday, `, `, the date label
 * (`Monday, May 1-2 2023`). Expects the event aliased `e` and its deployment `ed`; null
 * without an event.
 */
export function eventName(sql: postgres.Sql, settings: FormatSettings): Fragment {
  const zone = stationZone(sql, settings);
  return sql`(to_char(${localTime(sql, sql`e.start`, zone)}, 'FMDay') || ', '
    || ${eventDateLabel(sql, zone)})`;
}

/**
 * `left join lateral … ds`: `detections_count`, `first_timestamp`, `last_timestamp` (instants)
 * and `duration_us` (microseconds, bigint) over all the occurrence's detections, box or not
 * (antenna-compat §4.1).
 */
export function detectionStats(sql: postgres.Sql): Fragment {
  return sql`
    left join lateral (
      select
        count(*)::int as detections_count,
        min(sd.timestamp) as first_timestamp,
        max(sd.timestamp) as last_timestamp,
        (extract(epoch from max(sd.timestamp) - min(sd.timestamp)) * 1000000)::bigint
          as duration_us
      from detections sd
      where sd.occurrence_id = o.id
    ) ds on true`;
}

/**
 * `left join lateral … bp`: the occurrence's best machine prediction by the CSV rule
 * (antenna-compat §4.3): every classification of every detection (NULL-bbox ones too, any
 * algorithm), terminal before non-terminal, then the highest score, then the highest id.
 * Columns: `classification_id`, `score`, `taxon_id`, `taxon_name`, `taxon_rank`,
 * `algorithm_id`, `algorithm_name`, `created_at`; all null without any classification.
 */
export function bestPrediction(sql: postgres.Sql): Fragment {
  return sql`
    left join lateral (
      select
        bc.id as classification_id,
        ${finiteOrNull(sql, sql`bc.score`)} as score,
        bc.created_at,
        bt.id as taxon_id,
        bt.name as taxon_name,
        bt.rank as taxon_rank,
        ba.id as algorithm_id,
        ba.name as algorithm_name
      from detections bd
      join classifications bc on bc.detection_id = bd.id
      join taxa bt on bt.id = bc.taxon_id
      join algorithms ba on ba.id = bc.algorithm_id
      where bd.occurrence_id = o.id
      -- a NaN or ±Infinity score never wins (issue 12, kind 4)
      order by bc.terminal desc, ${finiteOrNull(sql, sql`bc.score`)} desc nulls last, bc.id desc
      limit 1
    ) bp on true`;
}

/**
 * The name of the taxon's ancestor (or the taxon itself) of rank `rank` (`ORDER`, `FAMILY`, …,
 * case-insensitive), from its `parents` list; null when the lineage has none. Expects the taxon
 * aliased as `t` (or `options.alias`).
 */
export function lineageName(
  sql: postgres.Sql,
  rank: string,
  options: { alias?: string } = {},
): Fragment {
  const t = sql(options.alias ?? "t");
  return sql`(
    select lp ->> 'name'
    from jsonb_array_elements(${t}.parents || jsonb_build_array(
      jsonb_build_object('name', ${t}.name, 'rank', ${t}.rank))) lp
    where upper(lp ->> 'rank') = ${rank.toUpperCase()}
    limit 1
  )`;
}

/**
 * `left join lateral … bx`: the occurrence's best detection (antenna-compat §4.5, deviation a):
 * among its detections with a real box, those with a classification first, then the highest
 * score of any of its classifications (any algorithm, terminal or not), then the lowest id.
 * Columns: `detection_id`, `bbox`, `timestamp`, `crop_path` (null without a crop), `capture_id`,
 * `capture_path`, `capture_timestamp`, `public_base_url`, `capture_deployment_id`,
 * `capture_event_id` (the capture's session, null without one).
 */
export function bestDetection(sql: postgres.Sql): Fragment {
  return sql`
    left join lateral (
      select xd.id as detection_id, xd.bbox, xd.timestamp, xd.path as crop_path,
        xs.id as capture_id, xs.path as capture_path, xs.timestamp as capture_timestamp,
        xs.public_base_url, xs.deployment_id as capture_deployment_id,
        xs.event_id as capture_event_id
      from detections xd
      join source_images xs on xs.id = xd.source_image_id
      left join lateral (
        select max(${finiteOrNull(sql, sql`xc.score`)}) as score
        from classifications xc where xc.detection_id = xd.id
      ) xscore on true
      where xd.occurrence_id = o.id and ${realBox(sql, sql`xd.bbox`)}
      order by xscore.score desc nulls last, xd.id
      limit 1
    ) bx on true`;
}

/**
 * `batch join occurrences o` restricted to the batch's id range (`afterId` < id ≤ the batch's
 * last id), so the index range scan starts at the cursor. Without the range the planner
 * merge-joins `occurrences` read from id 1 on every batch (batch N costs O(N)); with a lateral
 * primary-key probe instead it loses the row estimate of the later joins. `cursor.afterId` is
 * the batch's own cursor (see {@link occurrenceBatch}).
 */
export function batchOccurrences(
  ctx: ExportQueryContext,
  cursor: { afterId: RecordId | null },
): Fragment {
  const { sql } = ctx;
  const after = cursor.afterId === null ? sql`` : sql`and o.id > ${cursor.afterId}`;
  return sql`batch join occurrences o on o.id = batch.id
    and o.id <= (select max(lb.id) from batch lb) ${after}`;
}

/**
 * `, bd as (…), bcl as (…), ds as (…), bp as (…), bx as (…)`: the per-occurrence results of
 * {@link detectionStats}, {@link bestPrediction} and {@link bestDetection} computed as sets over
 * the whole batch (append to {@link occurrenceBatch}; join each on `occurrence_id`). The same
 * rows and ties as the LATERAL forms, but each detection and classification of the batch is read
 * once, and `DISTINCT ON` picks the best per occurrence in one sort instead of one index walk and
 * one sort per occurrence (issue 15: the per-row LATERALs were most of a batch's time).
 *
 * - `bd`: every detection of the batch's occurrences (box or not): `id`, `occurrence_id`,
 *   `bbox`, `timestamp`, `path`, `source_image_id`.
 * - `bcl`: their classifications with `occurrence_id`: `id`, `detection_id`, `score`,
 *   `terminal`, `taxon_id`, `algorithm_id`, `created_at`, `applied_to_id`.
 * - `ds`: `detections_count`, `first_timestamp`, `last_timestamp`, `duration_us` (§4.1; an
 *   occurrence without detections has no row: coalesce the count).
 * - `bp`: the columns of {@link bestPrediction} (§4.3, CSV rule).
 * - `bx`: the columns of {@link bestDetection} (§4.5, deviation a).
 */
export function batchDetectionSets(sql: postgres.Sql): Fragment {
  return sql`,
    bd as (
      select d.id, d.occurrence_id, d.bbox, d.timestamp, d.path, d.source_image_id
      from batch cross join lateral (
        select * from detections d where d.occurrence_id = batch.id offset 0
      ) d
    ),
    bcl as (
      -- scores are finite or null from here on: NaN and ±Infinity are no scores (issue 12, kind 4)
      select c.id, c.detection_id, bd.occurrence_id,
        ${finiteOrNull(sql, sql`c.score`)} as score, c.terminal, c.taxon_id,
        c.algorithm_id, c.created_at, c.applied_to_id
      from bd cross join lateral (
        select * from classifications c where c.detection_id = bd.id offset 0
      ) c
    ),
    ds as (
      select bd.occurrence_id,
        count(*)::int as detections_count,
        min(bd.timestamp) as first_timestamp,
        max(bd.timestamp) as last_timestamp,
        (extract(epoch from max(bd.timestamp) - min(bd.timestamp)) * 1000000)::bigint
          as duration_us
      from bd group by bd.occurrence_id
    ),
    bp as (
      select distinct on (bcl.occurrence_id) bcl.occurrence_id,
        bcl.id as classification_id, bcl.score, bcl.created_at,
        bt.id as taxon_id, bt.name as taxon_name, bt.rank as taxon_rank,
        ba.id as algorithm_id, ba.name as algorithm_name
      from bcl
      join taxa bt on bt.id = bcl.taxon_id
      join algorithms ba on ba.id = bcl.algorithm_id
      order by bcl.occurrence_id, bcl.terminal desc, bcl.score desc nulls last, bcl.id desc
    ),
    bx as (
      select distinct on (bd.occurrence_id) bd.occurrence_id,
        bd.id as detection_id, bd.bbox, bd.timestamp, bd.path as crop_path,
        xs.id as capture_id, xs.path as capture_path, xs.timestamp as capture_timestamp,
        xs.public_base_url, xs.deployment_id as capture_deployment_id,
        xs.event_id as capture_event_id
      from bd
      cross join lateral (
        select * from source_images xs where xs.id = bd.source_image_id offset 0) xs
      left join (
        select bcl.detection_id, max(bcl.score) as score from bcl group by bcl.detection_id
      ) xscore on xscore.detection_id = bd.id
      where ${realBox(sql, sql`bd.bbox`)}
      order by bd.occurrence_id, xscore.score desc nulls last, bd.id
    )`;
}
