/**
 * The SQL predicate shared by every occurrence-based format. The count and the export use the
 * very same fragment, so `record_count` always equals the rows written.
 */
import type postgres from "postgres";
import type { ExportQueryContext } from "./types.ts";

/**
 * `where`-clause fragment selecting the valid occurrences (a determination and at least one
 * detection with a bbox) of the project that pass the filters. Expects the occurrence table
 * aliased as `o`.
 */
export function occurrencePredicate(
  ctx: ExportQueryContext,
): postgres.PendingQuery<postgres.Row[]> {
  const { sql, projectId, filters } = ctx;
  const collection = filters.collection_id === undefined ? sql`` : sql`
    and exists (
      select 1 from detections fd
      join source_image_collection_images fci on fci.source_image_id = fd.source_image_id
      where fd.occurrence_id = o.id and fci.collection_id = ${filters.collection_id}
    )`;
  return sql`
    o.project_id = ${projectId}
    and o.determination_id is not null
    and exists (select 1 from detections vd where vd.occurrence_id = o.id and vd.bbox is not null)
    ${collection}`;
}

/** The count of records an occurrence-based export will contain: one statement. */
export async function countOccurrences(ctx: ExportQueryContext): Promise<number> {
  const [row] = await ctx.sql<{ n: number }[]>`
    select count(*)::bigint as n from occurrences o where ${occurrencePredicate(ctx)}`;
  return row.n;
}
