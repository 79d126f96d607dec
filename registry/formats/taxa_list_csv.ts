/**
 * `taxa_list_csv`: one row per taxon that determines at least one valid, filtered occurrence,
 * with counts, scores, dates and places aggregated over those occurrences. Keyset on taxon id:
 * a batch picks the next taxa that have such an occurrence (an index lookup per taxon), then
 * aggregates only the occurrences of those taxa. One statement per batch; shards by taxon id.
 */
import { occurrenceFilterKeys, occurrencePredicate } from "../filters.ts";
import { detectionTimes, keysetCsv, keysetPage } from "../keyset_csv.ts";
import { type Fragment, isoTimestamp, lineageName, settingsOf } from "../occurrence_sql.ts";
import { sessionTime } from "../time_sql.ts";
import { finiteOrNull } from "../numeric_sql.ts";
import { taxonLineageColumns } from "../batch_sql.ts";
import type { ExportQueryContext } from "../types.ts";

/** The header, in file order. */
export const taxaListCsvColumns: readonly string[] = [
  ...taxonLineageColumns,
  "gbif_taxon_key",
  "common_name_en",
  "occurrence_count",
  "verified_count",
  "determination_score_min",
  "determination_score_avg",
  "determination_score_max",
  "first_seen",
  "last_seen",
  "deployments_count",
  "events_count",
];

/**
 * The ids of the exported taxa (one statement): each taxon that determines a valid, filtered
 * occurrence, found by an index lookup per taxon.
 */
function taxaKeys(ctx: ExportQueryContext): Fragment {
  return ctx.sql`select bt.id from taxa bt
    where (select true from occurrences o
      where o.determination_id = bt.id and ${occurrencePredicate(ctx)} limit 1)`;
}

/** The species list of the exported occurrences (`taxa_list_csv`). */
export const taxaListCsv = keysetCsv({
  key: "taxa_list_csv",
  label: "Taxa list (CSV)",
  description: "One row per determined taxon: lineage, GBIF key, common name, occurrence and " +
    "verified counts, score min/avg/max, first and last seen, deployments and events",
  acceptedFilters: occurrenceFilterKeys,
  columns: taxaListCsvColumns,
  cursor: [{ column: "taxon_id" }],
  // the taxa `keys` selects, counted from the occurrences' side in one scan
  count: (ctx) =>
    ctx.sql`select count(distinct o.determination_id)::bigint as n from occurrences o
      where ${occurrencePredicate(ctx)}`,
  keys: taxaKeys,
  batch(ctx, after, limit, until) {
    const { sql } = ctx;
    const serviceZone = sql`${settingsOf(ctx).timeZone}::text`;
    return sql`
    with batch as (${keysetPage(sql, taxaKeys(ctx), after.taxon_id, until, limit)})
    select
      t.id as taxon_id,
      t.name as taxon_name,
      t.rank as taxon_rank,
      ${lineageName(sql, "ORDER")} as order_name,
      ${lineageName(sql, "FAMILY")} as family_name,
      ${lineageName(sql, "GENUS")} as genus_name,
      t.gbif_taxon_key,
      t.common_name_en,
      agg.occurrence_count,
      agg.verified_count,
      agg.score_min as determination_score_min,
      agg.score_avg as determination_score_avg,
      agg.score_max as determination_score_max,
      ${isoTimestamp(sql, sql`agg.first_seen`, serviceZone)} as first_seen,
      ${isoTimestamp(sql, sql`agg.last_seen`, serviceZone)} as last_seen,
      agg.deployments_count,
      agg.events_count
    from batch
    join taxa t on t.id = batch.id
    join lateral (
      select
        count(*)::int as occurrence_count,
        count(*) filter (where exists (
          select 1 from identifications ai where ai.occurrence_id = o.id and not ai.withdrawn
        ))::int as verified_count,
        -- NaN and ±Infinity are not scores: left out of the aggregates (issue 12, kind 4)
        min(${finiteOrNull(sql, sql`o.determination_score`)}) as score_min,
        round(avg(${
      finiteOrNull(sql, sql`o.determination_score`)
    })::numeric, 6)::float8 as score_avg,
        max(${finiteOrNull(sql, sql`o.determination_score`)}) as score_max,
        min(ad.first_seen) as first_seen,
        max(ad.last_seen) as last_seen,
        count(distinct o.deployment_id)::int as deployments_count,
        count(distinct o.event_id)::int as events_count
      from occurrences o
      cross join lateral (
        -- detection times more than a day outside their session are left out (issue 23)
        select min(${sessionTime(sql, sql`sd.timestamp`, sql`o.event_id`)}) as first_seen,
          max(${sessionTime(sql, sql`sd.timestamp`, sql`o.event_id`)}) as last_seen
        from detections sd where sd.occurrence_id = o.id
      ) ad
      where o.determination_id = t.id and ${occurrencePredicate(ctx)}
    ) agg on true
    order by t.id`;
  },
  impossibleTimes: [detectionTimes("left out of first_seen and last_seen")],
});
