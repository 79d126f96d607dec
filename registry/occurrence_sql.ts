/**
 * SQL building blocks shared by the occurrence-based formats, so that "best machine prediction",
 * "event name" or "duration" mean the same thing in every file a project exports.
 *
 * Every fragment expects the occurrence table aliased as `o` and runs per occurrence of the
 * batch (LATERAL), so a batch costs in proportion to its rows, not to the table.
 */
import type postgres from "postgres";
import { occurrencePredicate } from "./filters.ts";
import type { ExportQueryContext, RecordId } from "./types.ts";

/** A postgres.js SQL fragment. */
export type Fragment = postgres.PendingQuery<postgres.Row[]>;

/**
 * `with batch as (…)`: the ids of the next `limit` valid occurrences after `afterId`, in id
 * order (keyset pagination). Join it to `occurrences o` and order by `batch.id`. `also` is a
 * format's own extra condition on `o` (the Darwin Core Archive needs an event).
 *
 * The shared predicate is checked per candidate in a scalar subquery, which the planner cannot
 * flatten. Written as a plain `where`, its `exists (… detections …)` becomes a merge semi-join
 * that reads the detections index from its start on every batch (batch N costs O(N), the whole
 * export O(N²)); here a batch reads only the candidates from `afterId` on.
 */
export function occurrenceBatch(
  ctx: ExportQueryContext,
  cursor: { afterId: RecordId | null; limit: number },
  options: { also?: Fragment } = {},
): Fragment {
  const { sql } = ctx;
  const after = cursor.afterId === null ? sql`` : sql`and c.id > ${cursor.afterId}`;
  const also = options.also === undefined ? sql`` : sql`and ${options.also}`;
  return sql`
    with batch as (
      select c.id from occurrences c
      where c.project_id = ${ctx.projectId} ${after}
        and (select true from occurrences o where o.id = c.id and ${
    occurrencePredicate(ctx)
  } ${also})
      order by c.id
      limit ${cursor.limit}
    )`;
}

/** ISO-8601 text in UTC with milliseconds (`2024-06-01T22:15:03.000Z`), whatever the session zone. */
export function isoTimestamp(sql: postgres.Sql, value: Fragment): Fragment {
  return sql`to_char(${value} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}

/** A public URL: the base URL and the path joined by exactly one slash. */
export function mediaUrl(sql: postgres.Sql, base: Fragment, path: Fragment): Fragment {
  return sql`(rtrim(${base}, '/') || '/' || ltrim(${path}, '/'))`;
}

/**
 * The event's display name, "<start date> <station>" (UTC date). Expects the event aliased `e`
 * and its deployment `ed`; null without an event.
 */
export function eventName(sql: postgres.Sql): Fragment {
  return sql`(to_char(e.start at time zone 'UTC', 'YYYY-MM-DD') || ' ' || ed.name)`;
}

/**
 * `left join lateral … ds`: `detections_count`, `first_timestamp`, `last_timestamp` and
 * `duration` (seconds, float) over all the occurrence's detections.
 */
export function detectionStats(sql: postgres.Sql): Fragment {
  return sql`
    left join lateral (
      select
        count(*)::int as detections_count,
        min(sd.timestamp) as first_timestamp,
        max(sd.timestamp) as last_timestamp,
        extract(epoch from max(sd.timestamp) - min(sd.timestamp))::float8 as duration
      from detections sd
      where sd.occurrence_id = o.id
    ) ds on true`;
}

/**
 * `left join lateral … bp`: the occurrence's best machine prediction, the terminal
 * classification with the highest score over all its detections (tie: lowest classification
 * id). Columns: `classification_id`, `score`, `taxon_id`, `taxon_name`, `taxon_rank`,
 * `algorithm_id`, `algorithm_name`; all null when no detection has a terminal classification.
 */
export function bestPrediction(sql: postgres.Sql): Fragment {
  return sql`
    left join lateral (
      select
        bc.id as classification_id,
        bc.score,
        bt.id as taxon_id,
        bt.name as taxon_name,
        bt.rank as taxon_rank,
        ba.id as algorithm_id,
        ba.name as algorithm_name
      from detections bd
      join classifications bc on bc.detection_id = bd.id and bc.terminal
      join taxa bt on bt.id = bc.taxon_id
      join algorithms ba on ba.id = bc.algorithm_id
      where bd.occurrence_id = o.id
      order by bc.score desc, bc.id
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
 * `left join lateral … bx`: the occurrence's best detection, a detection with a bbox, by its best
 * terminal score (tie: lowest id). Columns: `detection_id`, `bbox`, `timestamp`, `crop_path`
 * (null without a crop), `capture_id`, `capture_path`, `capture_timestamp`, `public_base_url`.
 */
export function bestDetection(sql: postgres.Sql): Fragment {
  return sql`
    left join lateral (
      select xd.id as detection_id, xd.bbox, xd.timestamp, xd.path as crop_path,
        xs.id as capture_id, xs.path as capture_path, xs.timestamp as capture_timestamp,
        xs.public_base_url
      from detections xd
      join source_images xs on xs.id = xd.source_image_id
      left join lateral (
        select max(xc.score) as score from classifications xc
        where xc.detection_id = xd.id and xc.terminal
      ) xscore on true
      where xd.occurrence_id = o.id and xd.bbox is not null
      order by xscore.score desc nulls last, xd.id
      limit 1
    ) bx on true`;
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
  const text = csvFormulaGuardSql(sql, value);
  return sql`(case when ${text} ~ '[",\\r\\n]'
    then '"' || replace(${text}, '"', '""') || '"' else ${text} end)`;
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
