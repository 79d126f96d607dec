/**
 * Pieces of batch statements that several formats share word for word (the occurrence rules
 * themselves are in `registry/occurrence_sql.ts`).
 */
import { occurrencePredicate } from "./filters.ts";
import type { Fragment } from "./occurrence_sql.ts";
import type { ExportQueryContext, RecordId } from "./types.ts";

/**
 * `and key <= until`: a sharded batch's condition on its first key (`key`, an id column), none
 * past the end of its shard (`until`, the shard's last key; null: the last shard or an unsharded
 * export, an empty fragment). The one rule of every batch that honours `until`.
 */
export function upToShardEnd(
  sql: ExportQueryContext["sql"],
  key: Fragment,
  until: RecordId | null,
): Fragment {
  return until === null ? sql`` : sql`and ${key} <= ${until}`;
}

/**
 * `occ as (…)`: the next `limit + 1` exported occurrences from `occurrenceId` on (none past
 * `until`, when given: the end of a shard), the cursor's
 * own included (it may have detections left after the cursor's detection; every other one has
 * one), checked row by row against the shared predicate as `occurrenceBatch` does. The first
 * CTE of `detections_csv` (keyed on occurrence id, detection id); `tracks_csv` and
 * `detections_coco`'s annotations walk the occurrences with their detections in one step.
 */
export function occurrencesFrom(
  ctx: ExportQueryContext,
  occurrenceId: RecordId | string,
  limit: number,
  until: RecordId | null = null,
): Fragment {
  return ctx.sql`occ as (
      select c.id from occurrences c
      where c.project_id = ${ctx.projectId} and c.id >= ${occurrenceId}
        ${upToShardEnd(ctx.sql, ctx.sql`c.id`, until)}
        and (select true from occurrences o where o.id = c.id and ${occurrencePredicate(ctx)})
      order by c.id
      limit ${limit + 1}
    )`;
}

/**
 * `left join …`: the session `e` of occurrence `o`, the session's station `ed` and the
 * occurrence's own station `d` (antenna-compat: event names are in the session's station's
 * zone; `deployment` is the occurrence's).
 */
export function occurrencePlaces(ctx: ExportQueryContext): Fragment {
  return ctx.sql`left join events e on e.id = o.event_id
    left join deployments ed on ed.id = e.deployment_id
    left join deployments d on d.id = o.deployment_id`;
}

/**
 * `from page join …`: the detections `d` of the CTE `page` (their ids, after
 * {@link occurrencesFrom}) with their occurrence `o`, capture `s`, the capture's station `sd`
 * (its time zone) and the occurrence's determination `t`.
 */
export function pageDetections(ctx: ExportQueryContext): Fragment {
  return ctx.sql`from page
    join detections d on d.id = page.id
    join occurrences o on o.id = d.occurrence_id
    join source_images s on s.id = d.source_image_id
    left join deployments sd on sd.id = s.deployment_id
    left join taxa t on t.id = o.determination_id`;
}

/**
 * `left join lateral (…) li on true`: the standing identification of occurrence `o`, the
 * latest non-withdrawn one (tie: highest id), with its `id`, `created_at` and `user_label`
 * (the user's name, else email). Darwin Core's `identifiedBy` and Camtrap DP's `classifiedBy`.
 */
export function standingIdentification(ctx: ExportQueryContext): Fragment {
  return ctx.sql`left join lateral (
      select li_i.id, li_i.created_at, coalesce(nullif(li_u.name, ''), li_u.email) as user_label
      from identifications li_i
      join users li_u on li_u.id = li_i.user_id
      where li_i.occurrence_id = o.id and not li_i.withdrawn
      order by li_i.created_at desc, li_i.id desc
      limit 1
    ) li on true`;
}

/**
 * The rows of a page of captures: `from batch` (a CTE of capture ids, `id`) joined to its
 * captures `s` and their stations `sd`, in capture id order (the keyset of the image sections
 * of detections_coco and the media table of camtrap_dp).
 */
export function capturesOfBatch(sql: ExportQueryContext["sql"]): Fragment {
  return sql`from batch
    join source_images s on s.id = batch.id
    left join deployments sd on sd.id = s.deployment_id
    order by s.id`;
}

/** The taxon and its lineage, as the CSV formats name them (`lineageName` fills the ranks). */
export const taxonLineageColumns: readonly string[] = [
  "taxon_id",
  "taxon_name",
  "taxon_rank",
  "order_name",
  "family_name",
  "genus_name",
];
