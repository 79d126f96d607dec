/**
 * `taxon_counts_csv`: valid, filtered occurrences counted by session × determined taxon, with
 * the taxon's lineage one column per rank (order, family, genus, species): the abundance table
 * ecologists combine with `sessions_csv` (the effort). Occurrences without a session have no
 * row (the count says so). Keyset on (event id, taxon id): a batch reads the next sessions that
 * hold an exported occurrence, then at most `limit` (event, taxon) groups of them after the
 * cursor. One statement per batch; every occurrence filter applies. Shards by event id: a shard
 * holds every (session, taxon) group of its sessions.
 */
import { occurrenceFilterKeys, occurrencePredicate } from "../filters.ts";
import { keysetCsv, sessionIntervals } from "../keyset_csv.ts";
import { lineageName, localTime, settingsOf, stationZone } from "../occurrence_sql.ts";
import { ifPossibleInterval } from "../time_sql.ts";
import { taxonLineageColumns, upToShardEnd } from "../batch_sql.ts";

/** The header, in file order. */
export const taxonCountsCsvColumns: readonly string[] = [
  "event_id",
  "deployment_id",
  "start_date",
  ...taxonLineageColumns,
  "species_name",
  "occurrence_count",
];

/** Occurrences counted by session × taxon (`taxon_counts_csv`). */
export const taxonCountsCsv = keysetCsv({
  key: "taxon_counts_csv",
  label: "Taxon counts by session (CSV)",
  description: "Valid occurrences counted by session (event) × determined taxon, with the " +
    "session's station and local start date and the taxon's order, family, genus and species",
  acceptedFilters: occurrenceFilterKeys,
  columns: taxonCountsCsvColumns,
  cursor: [{ column: "event_id" }, { column: "taxon_id" }],
  // the session of each (session, taxon) group: the count, and the shard bounds by session;
  // a session of another project has no row (the batch reads the project's sessions), so no
  // group of it is counted either
  keys: (ctx) =>
    ctx.sql`select g.event_id as id from (
      select distinct o.event_id, o.determination_id from occurrences o
      where ${occurrencePredicate(ctx)} and exists (
        select 1 from events ke where ke.id = o.event_id and ke.project_id = ${ctx.projectId})
    ) g`,
  batch(ctx, after, limit, until) {
    const { sql } = ctx;
    const zone = stationZone(sql, settingsOf(ctx), "d");
    // limit + 1 sessions: the cursor's own one may have no group left, every other has one
    return sql`
    with ev as (
      select be.id from events be
      where be.project_id = ${ctx.projectId} and be.id >= ${after.event_id}
        ${upToShardEnd(sql, sql`be.id`, until)}
        and (select true from occurrences o
          where o.event_id = be.id and ${occurrencePredicate(ctx)} limit 1)
      order by be.id
      limit ${limit + 1}
    ), page as (
      select o.event_id, o.determination_id as taxon_id, count(*)::int as occurrence_count
      from ev join occurrences o on o.event_id = ev.id
      where ${occurrencePredicate(ctx)}
        and (o.event_id, o.determination_id) > (${after.event_id}::bigint, ${after.taxon_id}::bigint)
      group by o.event_id, o.determination_id
      order by o.event_id, o.determination_id
      limit ${limit}
    )
    select
      page.event_id,
      e.deployment_id,
      -- empty for a session that ends before it starts (issue 23, time_sql.ts)
      ${
      ifPossibleInterval(
        sql,
        { start: sql`e.start`, end: sql`e."end"` },
        sql`to_char(${localTime(sql, sql`e.start`, zone)}, 'YYYY-MM-DD')`,
      )
    } as start_date,
      page.taxon_id,
      t.name as taxon_name,
      t.rank as taxon_rank,
      ${lineageName(sql, "ORDER")} as order_name,
      ${lineageName(sql, "FAMILY")} as family_name,
      ${lineageName(sql, "GENUS")} as genus_name,
      ${lineageName(sql, "SPECIES")} as species_name,
      page.occurrence_count
    from page
    join events e on e.id = page.event_id
    join deployments d on d.id = e.deployment_id
    join taxa t on t.id = page.taxon_id
    order by page.event_id, page.taxon_id`;
  },
  impossibleTimes: [
    sessionIntervals(
      "start_date left empty",
      (ctx) =>
        ctx.sql`from events e where e.project_id = ${ctx.projectId} and exists (
        select 1 from occurrences o where o.event_id = e.id and ${occurrencePredicate(ctx)})`,
    ),
  ],
});
