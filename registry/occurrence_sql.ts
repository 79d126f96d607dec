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

/** Re-exported where the formats have always found it; it lives with the other non-finite rules. */
export { realBox };

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

/** The wall-clock `timestamp` of the instant `value` in the IANA zone `zone` (a fragment). */
export function localTime(sql: postgres.Sql, value: Fragment, zone: Fragment): Fragment {
  return sql`(${value} at time zone ${zone})`;
}

/**
 * `to_char(local, format)` followed by `.` + 6 digits when the local timestamp `local` has
 * microseconds, else nothing (antenna-compat §3.1). One `to_char` with `.US`, whose `.000000`
 * suffix is then cut: a quarter of the cost of testing `date_trunc` and formatting twice, for
 * the same text (`#` marks the end; no format here writes one). Null stays null.
 */
function withFraction(sql: postgres.Sql, local: Fragment, format: string): Fragment {
  return sql`rtrim(replace(to_char(${local}, ${format + ".US"}) || '#', '.000000#', ''), '#')`;
}

/**
 * CSV timestamp of a local `timestamp` (antenna-compat §3.1): `2023-05-01 22:00:00`, with
 * `.123456` only when the microseconds are not 0. Null stays null.
 */
export function csvTimestamp(sql: postgres.Sql, local: Fragment): Fragment {
  return withFraction(sql, local, "YYYY-MM-DD HH24:MI:SS");
}

/** JSON timestamp of a local `timestamp` (§3.1): `2023-05-01T22:00:00[.123456]`, no offset. */
export function jsonTimestamp(sql: postgres.Sql, local: Fragment): Fragment {
  return withFraction(sql, local, 'YYYY-MM-DD"T"HH24:MI:SS');
}

/** JSON time of day of a local `timestamp` (§3.1): `22:00:00[.123456]`. */
export function timeOfDay(sql: postgres.Sql, local: Fragment): Fragment {
  return withFraction(sql, local, "HH24:MI:SS");
}

/**
 * ISO 8601 text of the instant `value` in the IANA zone `zone`, with that zone's offset at that
 * instant and every microsecond: `2023-05-01T20:03:00-04:00`, `2024-06-01T22:15:03.000125Z`
 * (UTC offset written `Z`). What GBIF asks for in Darwin Core dates (issue 11: no precision
 * lost, local offset). Null stays null.
 */
export function isoTimestamp(sql: postgres.Sql, value: Fragment, zone: Fragment): Fragment {
  const local = localTime(sql, value, zone);
  return sql`(${withFraction(sql, local, 'YYYY-MM-DD"T"HH24:MI:SS')} || (
    select case when z.off = 0 then 'Z'
      else case when z.off < 0 then '-' else '+' end
        || lpad((abs(z.off) / 3600)::text, 2, '0') || ':'
        || lpad((abs(z.off) / 60 % 60)::text, 2, '0') end
    from (select extract(epoch from ${local} - (${value} at time zone 'UTC'))::int as off) z
  ))`;
}

/** Microseconds in a day, an hour, a minute, a second. */
const US_DAY = 86_400_000_000;
const US_HOUR = 3_600_000_000;
const US_MINUTE = 60_000_000;
const US_SECOND = 1_000_000;

/**
 * CSV duration of `us` microseconds (antenna-compat §3.1, Python's `timedelta` text):
 * `0:10:00`, `5:03:07.000005`, `1 day, 2:00:00`, `2 days, 0:00:00`. Null stays null.
 */
export function csvDuration(sql: postgres.Sql, us: Fragment): Fragment {
  return sql`(case when ${us} is null then null else
    case when ${us} >= ${US_DAY}::bigint then (${us} / ${US_DAY}::bigint)::text
      || case when ${us} / ${US_DAY}::bigint = 1 then ' day, ' else ' days, ' end else '' end
    || (${us} % ${US_DAY}::bigint / ${US_HOUR}::bigint)::text
    || ':' || lpad((${us} % ${US_HOUR}::bigint / ${US_MINUTE}::bigint)::text, 2, '0')
    || ':' || lpad((${us} % ${US_MINUTE}::bigint / ${US_SECOND}::bigint)::text, 2, '0')
    || case when ${us} % ${US_SECOND}::bigint = 0 then ''
      else '.' || lpad((${us} % ${US_SECOND}::bigint)::text, 6, '0') end
  end)`;
}

/**
 * JSON duration of `us` microseconds (antenna-compat §3.1): `P0DT00H10M00S`,
 * `P1DT01H59M59.876544S`. Null stays null.
 */
export function isoDuration(sql: postgres.Sql, us: Fragment): Fragment {
  return sql`('P' || (${us} / ${US_DAY}::bigint)::text || 'DT'
    || lpad((${us} % ${US_DAY}::bigint / ${US_HOUR}::bigint)::text, 2, '0') || 'H'
    || lpad((${us} % ${US_HOUR}::bigint / ${US_MINUTE}::bigint)::text, 2, '0') || 'M'
    || lpad((${us} % ${US_MINUTE}::bigint / ${US_SECOND}::bigint)::text, 2, '0')
    || case when ${us} % ${US_SECOND}::bigint = 0 then ''
      else '.' || lpad((${us} % ${US_SECOND}::bigint)::text, 6, '0') end
    || 'S')`;
}

/**
 * JSON `duration_label` of `us` microseconds (antenna-compat §4.8): `""` for 0, `10 minutes`,
 * `2 hours 30 min`, `1 days 1 hours`; smaller units dropped, never rounded, always plural.
 */
export function durationLabel(sql: postgres.Sql, us: Fragment): Fragment {
  return sql`(case
    when ${us} is null then null
    when ${us} = 0 then ''
    when ${us} < ${US_HOUR}::bigint then (${us} / ${US_MINUTE}::bigint)::text || ' minutes'
    when ${us} < ${US_DAY}::bigint then (${us} / ${US_HOUR}::bigint)::text || ' hours '
      || (${us} % ${US_HOUR}::bigint / ${US_MINUTE}::bigint)::text || ' min'
    else (${us} / ${US_DAY}::bigint)::text || ' days '
      || (${us} % ${US_DAY}::bigint / ${US_HOUR}::bigint)::text || ' hours'
  end)`;
}

/**
 * Percent-encoding of a storage path (antenna-compat §4.6): UTF-8 bytes other than
 * `A–Z a–z 0–9 _ . - ~ ! * ( ) '` and `/` become `%XX` (JavaScript's `encodeURIComponent` with
 * `%2F` turned back into `/`). Plain paths skip the byte loop.
 */
export function encodePath(sql: postgres.Sql, path: Fragment): Fragment {
  return sql`(case when ${path} ~ '^[A-Za-z0-9_.~!*()''/-]*$' then ${path} else (
    select string_agg(case
      when x.b between 65 and 90 or x.b between 97 and 122 or x.b between 48 and 57
        or x.b in (95, 46, 45, 126, 33, 42, 40, 41, 39, 47) then chr(x.b)
      else '%' || upper(lpad(to_hex(x.b), 2, '0')) end, '' order by x.i)
    from (
      select i, get_byte(u.bytes, i) as b
      from (select convert_to(${path}, 'UTF8') as bytes) u,
        generate_series(0, length(u.bytes) - 1) i
    ) x
  ) end)`;
}

/**
 * A storage path joined to `MEDIA_URL` (antenna-compat §4.6): `\` → `/`, leading `/` dropped,
 * percent-encoded, exactly one `/` between base and path.
 */
function mediaPath(sql: postgres.Sql, media: string, path: Fragment): Fragment {
  return sql`(rtrim(${media}::text, '/') || '/'
    || ${encodePath(sql, sql`ltrim(replace(${path}, '\\', '/'), '/')`)})`;
}

/**
 * Crop URL of the crop path `path` (antenna-compat §4.6): null for NULL and `''` (the callers
 * that list `''` as `MEDIA_URL` itself say so), unchanged when it starts with `http`, else
 * joined to `MEDIA_URL`.
 */
export function cropUrl(sql: postgres.Sql, media: string, path: Fragment): Fragment {
  return sql`(case when ${path} is null or ${path} = '' then null
    when ${path} like 'http%' then ${path}
    else ${mediaPath(sql, media, path)} end)`;
}

/**
 * User image URL (antenna-compat §4.6): null for NULL and `''`; else joined to `MEDIA_URL`
 * like a crop path (no `http` exception), prefixed with `PLATFORM_URL` when it has no scheme.
 */
export function userImageUrl(
  sql: postgres.Sql,
  settings: FormatSettings,
  path: Fragment,
): Fragment {
  const joined = mediaPath(sql, settings.mediaUrl, path);
  return sql`(case when ${path} is null or ${path} = '' then null
    when ${settings.mediaUrl}::text ~ '^[A-Za-z][A-Za-z0-9+.-]*:' then ${joined}
    else rtrim(${settings.platformUrl}::text, '/') || ${joined} end)`;
}

/**
 * Capture URL (antenna-compat §4.6, deviation b): the base without trailing `/`, one `/`, the
 * path without leading `/`; no encoding. Null when the base or the path is empty (CSV rule).
 */
export function captureUrl(sql: postgres.Sql, base: Fragment, path: Fragment): Fragment {
  return sql`(case when coalesce(${base}, '') = '' or coalesce(${path}, '') = '' then null
    else rtrim(${base}, '/') || '/' || ltrim(${path}, '/') end)`;
}

/**
 * JSON `capture.url` (antenna-compat §4.6): the joined text, or null when the base is empty or
 * the text has no host (`<scheme>://<host>…` or `//<host>…`).
 */
export function captureJsonUrl(sql: postgres.Sql, base: Fragment, path: Fragment): Fragment {
  return sql`(select case when coalesce(${base}, '') = '' then null
      when j.url ~ '^([A-Za-z][A-Za-z0-9+.-]*:)?//[^/?#]' then j.url end
    from (select rtrim(${base}, '/') || '/' || ltrim(coalesce(${path}, ''), '/') as url) j)`;
}

/** A public URL: the base URL and the path joined by exactly one slash. */
export function mediaUrl(sql: postgres.Sql, base: Fragment, path: Fragment): Fragment {
  return sql`(rtrim(${base}, '/') || '/' || ltrim(${path}, '/'))`;
}

/**
 * A `details` link (antenna-compat §4.6): `PLATFORM_URL` + `/api/v2/<resource>/<id>/`.
 */
export function detailsLink(
  sql: postgres.Sql,
  settings: FormatSettings,
  resource: string,
  id: Fragment,
): Fragment {
  return sql`(${settings.platformUrl + "/api/v2/" + resource + "/"}::text || ${id} || '/')`;
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
        xs.public_base_url, xs.deployment_id as capture_deployment_id
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

/**
 * A float8 as Python's `repr` writes it (antenna-compat §3.2): shortest round-trip digits,
 * plain notation from 1e-4 up to (not including) 1e16 with at least one decimal (`1.0`), else
 * `d.ddde±XX` (`1e-05`, `1e+16`). Postgres writes the same digits and exponent form except that
 * it switches to the exponent at 1e15 and omits `.0`. Null stays null.
 */
export function pyFloatText(sql: postgres.Sql, value: Fragment): Fragment {
  // Numeric tests first, so the common cases (scores, widths) cast to text once; the regex runs
  // only for magnitudes in [1e15, 1e16). `NaN = NaN` is true in Postgres and NaN sorts above
  // every number, so NaN and ±Infinity fail the first two tests and reach their own.
  return sql`(case
    when ${value} is null then null
    when abs(${value}) < 1e15::float8 and ${value} = trunc(${value}) then (${value})::text || '.0'
    when abs(${value}) >= 1e15::float8 and abs(${value}) < 1e16::float8 then (
      select m[1] || rpad(m[2] || coalesce(m[3], ''), 16, '0') || '.0'
      from regexp_match((${value})::text, '^(-?)([0-9])(?:[.]([0-9]+))?e') m)
    when ${value} = 'NaN'::float8 then 'nan'
    when ${value} = 'Infinity'::float8 then 'inf'
    when ${value} = '-Infinity'::float8 then '-inf'
    else (${value})::text
  end)`;
}

/**
 * Bbox text (antenna-compat §3.3): `[` + elements joined by `, ` + `]`; integral elements as
 * plain integers, others as float text (§3.2), NULL elements as `None`. Null stays null.
 */
export function bboxText(sql: postgres.Sql, bbox: Fragment): Fragment {
  // a real box (four finite numbers, the best detection's always) skips the unnest
  const element = (v: Fragment): Fragment => {
    return sql`case when ${v} = trunc(${v}) then
        case when abs(${v}) < 9e18 then ${v}::bigint::text else ${v}::numeric::text end
      else ${pyFloatText(sql, v)} end`;
  };
  return sql`(case when ${bbox} is null then null
    when ${realBox(sql, sql`(${bbox})`)} then '[' || ${element(sql`(${bbox})[1]`)} || ', '
      || ${element(sql`(${bbox})[2]`)} || ', ' || ${element(sql`(${bbox})[3]`)} || ', '
      || ${element(sql`(${bbox})[4]`)} || ']'
    else '[' || coalesce((
    select string_agg(case
      when x.v is null then 'None'
      when abs(x.v) < 'Infinity'::float8 and x.v = trunc(x.v) then
        case when abs(x.v) < 9e18 then x.v::bigint::text else x.v::numeric::text end
      else ${pyFloatText(sql, sql`x.v`)} end, ', ' order by x.i)
    from unnest(${bbox}) with ordinality x(v, i)
  ), '') || ']' end)`;
}

/**
 * A float8 as text exactly as JavaScript's `String(number)` writes it, so that text Postgres
 * serializes matches what a JS encoder would write: the two agree (shortest round-trip digits)
 * except on the exponent form, which Postgres uses below 1e-4 and from 1e15, JavaScript below
 * 1e-6 and from 1e21, and writes without a zero-padded exponent. Null stays null.
 */
export function jsNumberText(sql: postgres.Sql, value: Fragment): Fragment {
  return sql`(case
    when ${value} is null then null
    when ${value} = 0 then '0'
    when abs(${value}) >= 1e-4 and abs(${value}) < 1e15 then (${value})::text
    else coalesce((
      select case
        when p.e between -6 and -1 then p.s || '0.' || repeat('0', -p.e - 1) || p.d || p.f
        when p.e between 15 and 20 then p.s || rpad(p.d || p.f, p.e + 1, '0')
        else p.s || p.d || case when p.f = '' then '' else '.' || p.f end
          || 'e' || case when p.e > 0 then '+' else '-' end || abs(p.e)
      end
      from (
        select m[1] as s, m[2] as d, coalesce(m[3], '') as f, m[4]::int as e
        from regexp_match((${value})::text, '^(-?)([0-9])(?:[.]([0-9]+))?e([-+][0-9]+)$') m
      ) p
    ), (${value})::text)
  end)`;
}

/**
 * A text value as one RFC 4180 CSV field, quoted (with `"` doubled) when it holds a comma, a
 * quote, CR or LF: the rule `csv-stringify` applies with `quoted_match: /[\r\n]/`. Null stays
 * null (`concat` then writes an empty field). Guarded first against formula injection
 * ({@link csvFormulaGuardSql}).
 */
export function csvField(sql: postgres.Sql, value: Fragment): Fragment {
  // One regex test on the common path: a cell without a CSV special and without a trigger
  // character in front is its own field. `value` is written up to four times: pass a column.
  const text = csvFormulaGuardSql(sql, value);
  return sql`(case when ${value} !~ '[",\r\n]|^[-=+@\t]' then ${value}
    when ${text} ~ '[",\r\n]' then '"' || replace(${text}, '"', '""') || '"'
    else ${text} end)`;
}

/**
 * `csvFormulaGuard` of `encoding.ts` in SQL (OWASP CSV injection): a cell that is not a number
 * and starts with `=`, `+`, `-`, `@`, TAB or CR gets a leading `'`. Null stays null.
 */
export function csvFormulaGuardSql(sql: postgres.Sql, value: Fragment): Fragment {
  // one pass over the value: a lookahead for the trigger, a negative one for a number
  return sql`regexp_replace(${value}, ${FORMULA_GUARD_PATTERN}, ${"'"})`;
}

/** Matches the empty start of a cell to guard (Postgres ARE lookahead constraints). */
const FORMULA_GUARD_PATTERN = "^(?=[-=+@\\t\\r])" +
  "(?![-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$|-?Infinity$)";
