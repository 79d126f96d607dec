/**
 * The SQL predicate shared by every occurrence-based format. The count and the export use the
 * very same fragment, so `record_count` always equals the rows written.
 *
 * Each filter is one fragment over the occurrence `o`: either a plain comparison of its columns,
 * a correlated `exists` on its own rows (detections, identifications: index lookups per
 * occurrence), or a comparison with an uncorrelated `array(…)` that Postgres evaluates once per
 * statement (an InitPlan: the taxon subtrees, the project's defaults). None of them joins a whole
 * table, so the per-row scalar subquery of `occurrenceBatch` keeps a batch's cost proportional to
 * its rows.
 *
 * Dates are UTC calendar dates of the occurrence's first appearance (its earliest detection).
 */
import type postgres from "postgres";
import {
  type ExportQueryContext,
  type FilterKey,
  type RecordId,
  recordId,
  type ShardBound,
} from "./types.ts";
import { finiteOrNull, realBox } from "./numeric_sql.ts";

type Fragment = postgres.PendingQuery<postgres.Row[]>;

/** Every filter an occurrence-based format accepts, in documentation order. */
export const occurrenceFilterKeys: readonly FilterKey[] = [
  "collection_id",
  "deployment_ids",
  "event_ids",
  "taxon_id",
  "exclude_taxon_ids",
  "date_start",
  "date_end",
  "min_score",
  "verified",
  "apply_project_defaults",
];

/**
 * `array(…)` of the ids of the taxa in `roots` (a `bigint[]` expression) and all their
 * descendants: taxa whose `parents` list one of them, and, recursively, taxa whose `parent_id`
 * is in the set (so a tree with incomplete `parents` still resolves). Uncorrelated: evaluated
 * once per statement.
 */
export function taxonSubtree(sql: postgres.Sql, roots: Fragment): Fragment {
  return sql`array(
    with recursive subtree(id) as (
      select st.id from taxa st
      where st.id = any(${roots})
        or exists (
          select 1 from jsonb_array_elements(st.parents) sp
          where (sp ->> 'id')::bigint = any(${roots})
        )
      union
      select sc.id from taxa sc join subtree on sc.parent_id = subtree.id
    )
    select id from subtree
  )`;
}

/** A list of ids as a `bigint[]` parameter. */
function idArray(sql: postgres.Sql, ids: readonly number[]): Fragment {
  return sql`${ids.map(String)}::bigint[]`;
}

/** The UTC midnight starting `date` (`YYYY-MM-DD`). */
function utcMidnight(sql: postgres.Sql, date: string, plusDays = 0): Fragment {
  return sql`((${date}::date + ${plusDays}::int)::timestamp at time zone 'UTC')`;
}

/**
 * `where`-clause fragment selecting the valid occurrences (a determination and at least one
 * detection with a real box: four finite numbers, antenna-compat §4.1) of the project that pass the filters. Expects the occurrence table
 * aliased as `o`.
 */
export function occurrencePredicate(ctx: ExportQueryContext): Fragment {
  const { sql, projectId, filters: f } = ctx;
  const parts: Fragment[] = [];
  if (f.collection_id !== undefined) {
    parts.push(sql`exists (
      select 1 from detections fd
      join source_image_collection_images fci on fci.source_image_id = fd.source_image_id
      where fd.occurrence_id = o.id and fci.collection_id = ${f.collection_id}
    )`);
  }
  if (f.deployment_ids !== undefined) {
    parts.push(sql`o.deployment_id = any(${idArray(sql, f.deployment_ids)})`);
  }
  if (f.event_ids !== undefined) {
    parts.push(sql`o.event_id = any(${idArray(sql, f.event_ids)})`);
  }
  if (f.taxon_id !== undefined) {
    parts.push(
      sql`o.determination_id = any(${taxonSubtree(sql, idArray(sql, [f.taxon_id]))})`,
    );
  }
  if (f.exclude_taxon_ids !== undefined && f.exclude_taxon_ids.length > 0) {
    parts.push(
      sql`not (o.determination_id = any(${taxonSubtree(sql, idArray(sql, f.exclude_taxon_ids))}))`,
    );
  }
  if (f.date_start !== undefined) {
    parts.push(sql`(select min(fs.timestamp) from detections fs where fs.occurrence_id = o.id)
      >= ${utcMidnight(sql, f.date_start)}`);
  }
  if (f.date_end !== undefined) {
    parts.push(sql`(select min(fe.timestamp) from detections fe where fe.occurrence_id = o.id)
      < ${utcMidnight(sql, f.date_end, 1)}`);
  }
  if (f.min_score !== undefined) {
    // NaN and ±Infinity never pass (NaN sorts above every number in PostgreSQL)
    parts.push(sql`${finiteOrNull(sql, sql`o.determination_score`)} >= ${f.min_score}::float8`);
  }
  if (f.verified !== undefined) {
    const identified = sql`exists (
      select 1 from identifications fi where fi.occurrence_id = o.id and not fi.withdrawn
    )`;
    parts.push(f.verified ? identified : sql`not ${identified}`);
  }
  if (f.apply_project_defaults === true) {
    const threshold = sql`(select pt.default_score_threshold from projects pt
      where pt.id = ${projectId})`;
    const include = sql`array(select pi.taxon_id from project_default_include_taxa pi
      where pi.project_id = ${projectId})`;
    const exclude = sql`array(select px.taxon_id from project_default_exclude_taxa px
      where px.project_id = ${projectId})`;
    parts.push(sql`(${threshold} is null
        or ${finiteOrNull(sql, sql`o.determination_score`)} >= ${threshold})
      and (cardinality(${include}) = 0
        or o.determination_id = any(${taxonSubtree(sql, include)}))
      and not (o.determination_id = any(${taxonSubtree(sql, exclude)}))`);
  }
  // an empty list would be sent as a parameter, not as an empty fragment
  const extra = parts.length === 0 ? sql`` : parts.map((part) => sql`and ${part}`);
  return sql`
    o.project_id = ${projectId}
    and o.determination_id is not null
    and exists (
      select 1 from detections vd where vd.occurrence_id = o.id and ${realBox(sql, sql`vd.bbox`)}
    )
    ${extra}`;
}

/** The count of records an occurrence-based export will contain: one statement. */
export async function countOccurrences(ctx: ExportQueryContext): Promise<number> {
  const [row] = await ctx.sql<{ n: number }[]>`
    select count(*)::bigint as n from occurrences o where ${occurrencePredicate(ctx)}`;
  return row.n;
}

/**
 * Shard boundaries of an occurrence-based export (`RecordExporter.shardBounds`): the ids of the
 * `every`-th, 2·`every`-th, … valid occurrence in id order, with the very predicate of the count
 * and the batches ({@link keyShardBounds}). One statement; `every` ≥ 1.
 */
export async function occurrenceShardBounds(
  ctx: ExportQueryContext,
  every: number,
): Promise<RecordId[]> {
  const keys = ctx.sql`select o.id from occurrences o where ${occurrencePredicate(ctx)}`;
  return (await keyShardBounds(ctx, keys, every)).map((bound) => bound.id);
}

/**
 * Shard boundaries of an export cut by one key (`RecordExporter.shardBounds`,
 * `StreamExporter.shardBounds`): of the rows `keys` selects (one statement selecting the key as
 * `id`, one row per exported record: the export's very predicate; a key may repeat, as the
 * occurrence id of each detection does), the key of the `every`-th, 2·`every`-th, … row in key
 * order, each key once, ascending, with the number of rows whose key is ≤ it (a record format's
 * keys are unique: bound i then has (i+1)·`every` records). One statement. Throws a RangeError
 * unless `every` is a positive safe integer.
 */
export async function keyShardBounds(
  ctx: ExportQueryContext,
  keys: Fragment,
  every: number,
): Promise<ShardBound[]> {
  if (!(Number.isSafeInteger(every) && every >= 1)) {
    throw new RangeError(`shard size must be a positive integer: ${every}`);
  }
  // count(*) over the default frame counts the rows with key ≤ this one, ties included
  const rows = await ctx.sql<{ id: unknown; records: unknown }[]>`
    select distinct on (r.id) r.id, r.records from (
      select k.id, row_number() over w as n, count(*) over w as records
      from (${keys}) k
      window w as (order by k.id)
    ) r
    where r.n % ${every} = 0
    order by r.id`;
  return rows.map((row) => ({ id: recordId(row.id), records: Number(row.records) }));
}
