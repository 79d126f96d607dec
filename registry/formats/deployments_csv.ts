/**
 * `deployments_csv`: one row per station of the project, with or without occurrences: place,
 * sampling effort, what it recorded. Keyset on station id; the example of docs/adding-a-format.md.
 */
import { coordinateCells } from "../encoding.ts";
import { occurrencePredicate } from "../filters.ts";
import { keysetCsv, keysetPage, sessionIntervals } from "../keyset_csv.ts";
import { type Fragment, localTime, settingsOf, stationZone } from "../occurrence_sql.ts";
import { deploymentFilterKeys, deploymentPredicate } from "../sampling_sql.ts";
import { possibleInterval } from "../time_sql.ts";
import type { ExportQueryContext } from "../types.ts";

/** The header, in file order. */
export const deploymentsCsvColumns: readonly string[] = [
  "deployment_id",
  "deployment_name",
  "latitude",
  "longitude",
  "country_code",
  "time_zone",
  "sessions_count",
  "first_session_date",
  "last_session_date",
  "captures_count",
  "detections_count",
  "occurrences_count",
  "taxa_count",
];

/** The stations the export holds, by id: its count, keyset and shard bounds. */
function deploymentsKeys(ctx: ExportQueryContext): Fragment {
  return ctx.sql`select d.id from deployments d
    where d.project_id = ${ctx.projectId} ${deploymentPredicate(ctx, "d")}`;
}

/** Stations and their counts (`deployments_csv`). */
export const deploymentsCsv = keysetCsv({
  key: "deployments_csv",
  label: "Stations / deployments (CSV)",
  description: "One row per station (deployment): name, coordinates, country, time zone, " +
    "sessions and their first and last date, captures, detections, valid occurrences, taxa",
  acceptedFilters: deploymentFilterKeys,
  columns: deploymentsCsvColumns,
  cursor: [{ column: "deployment_id" }],
  // the count and the shard bounds come from the same rows (keyset_csv.ts)
  keys: deploymentsKeys,
  batch(ctx, after, limit, until) {
    const { sql } = ctx;
    const zone = stationZone(sql, settingsOf(ctx), "d");
    const date = (at: string) =>
      sql`to_char(${localTime(sql, sql`es.${sql(at)}`, zone)}, 'YYYY-MM-DD')`;
    // sessions whose end precedes their start give no dates (time_sql.ts)
    const possible = possibleInterval(sql, sql`e.start`, sql`e."end"`);
    const valid = occurrencePredicate({ ...ctx, filters: {} }); // every valid occurrence
    return sql`
      select d.id as deployment_id, d.name as deployment_name, d.latitude, d.longitude,
        d.country_code, ${zone} as time_zone, es.sessions_count,
        ${date("first_start")} as first_session_date, ${date("last_end")} as last_session_date,
        (select count(*)::int from source_images cs where cs.deployment_id = d.id) as captures_count,
        (select count(*)::int from source_images ds join detections dd on dd.source_image_id = ds.id
          where ds.deployment_id = d.id) as detections_count,
        (select count(*)::int from occurrences o where o.deployment_id = d.id and ${valid})
          as occurrences_count,
        (select count(distinct o.determination_id)::int from occurrences o
          where o.deployment_id = d.id and ${valid}) as taxa_count
      from (${keysetPage(sql, deploymentsKeys(ctx), after.deployment_id, until, limit)}) batch
      join deployments d on d.id = batch.id
      cross join lateral (
        select count(*)::int as sessions_count, min(e.start) filter (where ${possible})
          as first_start, max(e."end") filter (where ${possible}) as last_end
        from events e where e.deployment_id = d.id
      ) es
      order by d.id`;
  },
  encode: coordinateCells,
  impossibleTimes: [
    sessionIntervals(
      "left out of first_session_date and last_session_date",
      (ctx) =>
        ctx.sql`from events e join deployments d on d.id = e.deployment_id
        where d.project_id = ${ctx.projectId} ${deploymentPredicate(ctx, "d")}`,
    ),
  ],
});
