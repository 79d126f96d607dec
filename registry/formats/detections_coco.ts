/**
 * `detections_coco`: a COCO object-detection dataset (cocodataset.org/#format-data, "1. Object
 * Detection") for training detectors and classifiers on the project's verified and machine
 * determinations:
 *
 * - `info`, `licenses` (empty: the project's license, when set, is in `info.license`);
 * - `categories`: the taxa determining at least one exported occurrence (keyset on taxon id),
 *   `{id, name, supercategory}` with `supercategory` the taxon's order from its lineage (the
 *   taxon itself included), else its own name;
 * - `images`: the captures holding a boxed detection of an exported occurrence (keyset on capture
 *   id), `{id, width, height, file_name, coco_url, date_captured}`;
 * - `annotations`: one per boxed detection (a real box, antenna-compat §4.1) of an exported
 *   occurrence, keyset on (occurrence id, detection id): `{id, image_id, category_id, bbox,
 *   area, iscrowd, occurrence_id}` with `bbox` `[x, y, width, height]` in pixels from the top
 *   left corner (COCO's convention) and `category_id` the occurrence's determination.
 *
 * Every element is built by Postgres (`json_build_object`), so ids past 2^53 stay exact. One
 * statement per batch; the state holds the section, its cursor and whether an element was
 * already written in it (for the commas), so a resumed export writes the same bytes.
 */
import { occurrenceFilterKeys, occurrencePredicate } from "../filters.ts";
import { captureUrl, lineageName, realBox, settingsOf, stationZone } from "../occurrence_sql.ts";
import { captureTimes, sessionTime } from "../time_sql.ts";
import { type ExportQueryContext, type RecordId, recordId } from "../types.ts";
import { finiteOrNull } from "../numeric_sql.ts";
import { capturesOfBatch, occurrencesFrom } from "../batch_sql.ts";
import { jsonSections } from "../json_sections.ts";
import type { ContentEntry } from "../types.ts";

/** Boxed detections of the valid filtered occurrences (the annotations): one statement. */
async function countAnnotations(ctx: ExportQueryContext): Promise<number> {
  const { sql } = ctx;
  const [row] = await sql<{ n: number }[]>`
    select count(*)::bigint as n from occurrences o
    join detections d on d.occurrence_id = o.id
    where ${occurrencePredicate(ctx)} and ${realBox(sql, sql`d.bbox`)}`;
  return Number(row.n);
}

/** `"info": {…}, "licenses": []`: the project's name, owner and license. */
async function leading(ctx: ExportQueryContext): Promise<string> {
  const [row] = await ctx.sql<{ info: string }[]>`
    select json_build_object(
      'description', p.name,
      'url', '',
      'version', '1.0',
      'contributor', coalesce(nullif(u.name, ''), u.email, ''),
      'license', p.license
    )::text as info
    from projects p left join users u on u.id = p.owner_id
    where p.id = ${ctx.projectId}`;
  return `"info":${row?.info ?? "{}"},"licenses":[]`;
}

async function categories(
  ctx: ExportQueryContext,
  { afterId }: Readonly<Record<string, RecordId>>,
  limit: number,
): Promise<{ id: RecordId; json: string }[]> {
  const { sql } = ctx;
  return await sql<{ id: RecordId; json: string }[]>`
    with batch as (
      select bt.id from taxa bt
      where bt.id > ${afterId}
        and (select true from occurrences o
          where o.determination_id = bt.id and ${occurrencePredicate(ctx)} limit 1)
      order by bt.id
      limit ${limit}
    )
    select t.id, json_build_object(
      'id', t.id,
      'name', t.name,
      'supercategory', coalesce(${lineageName(sql, "ORDER")}, t.name),
      'rank', t.rank
    )::text as json
    from batch join taxa t on t.id = batch.id
    order by t.id`;
}

async function images(
  ctx: ExportQueryContext,
  { afterId }: Readonly<Record<string, RecordId>>,
  limit: number,
): Promise<{ id: RecordId; json: string }[]> {
  const { sql } = ctx;
  const zone = stationZone(sql, settingsOf(ctx), "sd");
  return await sql<{ id: RecordId; json: string }[]>`
    with batch as (
      select bs.id from source_images bs
      where bs.project_id = ${ctx.projectId} and bs.id > ${afterId}
        and exists (
          select 1 from detections bd
          where bd.source_image_id = bs.id and ${realBox(sql, sql`bd.bbox`)}
            and (select true from occurrences o
              where o.id = bd.occurrence_id and ${occurrencePredicate(ctx)})
        )
      order by bs.id
      limit ${limit}
    )
    select s.id, json_build_object(
      'id', s.id,
      'width', s.width,
      'height', s.height,
      'file_name', s.path,
      'coco_url', ${captureUrl(sql, sql`s.public_base_url`, sql`s.path`)},
      -- COCO's form (2013-11-14 17:02:52), station-local; null when more than a day outside
      -- the capture's session (issue 23, time_sql.ts)
      'date_captured', to_char(
        ${sessionTime(sql, sql`s.timestamp`, sql`s.event_id`)} at time zone ${zone},
        'YYYY-MM-DD HH24:MI:SS'),
      'deployment_id', s.deployment_id,
      'event_id', s.event_id
    )::text as json
    ${capturesOfBatch(sql)}`;
}

async function annotations(
  ctx: ExportQueryContext,
  cursor: Readonly<Record<string, RecordId>>,
  limit: number,
): Promise<{ occurrence_id: RecordId; id: RecordId; json: string }[]> {
  const { sql } = ctx;
  // limit + 1 occurrences: the cursor's own one may have no detection left, every other has one
  return await sql<{ occurrence_id: RecordId; id: RecordId; json: string }[]>`
    with ${occurrencesFrom(ctx, cursor.afterId, limit)}, page as (
      select pd.id from occ join detections pd on pd.occurrence_id = occ.id
      where ${realBox(sql, sql`pd.bbox`)}
        and (pd.occurrence_id, pd.id) > (${cursor.afterId}::bigint, ${cursor.afterDetection}::bigint)
      order by pd.occurrence_id, pd.id
      limit ${limit}
    )
    select d.occurrence_id, d.id, json_build_object(
      'id', d.id,
      'image_id', d.source_image_id,
      'category_id', o.determination_id,
      'bbox', json_build_array(d.bbox[1], d.bbox[2], d.bbox[3] - d.bbox[1], d.bbox[4] - d.bbox[2]),
      'area', (d.bbox[3] - d.bbox[1]) * (d.bbox[4] - d.bbox[2]),
      'iscrowd', 0,
      'occurrence_id', d.occurrence_id,
      'determination_score', ${finiteOrNull(sql, sql`o.determination_score`)}
    )::text as json
    from page
    join detections d on d.id = page.id
    join occurrences o on o.id = d.occurrence_id
    order by d.occurrence_id, d.id`;
}

/** The sections of the COCO object, in file order (the data card and docs/formats.md list them). */
export const cocoContents: readonly ContentEntry[] = [
  {
    name: "info",
    description: "description (project name), url, version, contributor (the owner), license",
  },
  { name: "licenses", description: "always `[]`" },
  {
    name: "categories",
    description:
      "the taxa determining an exported occurrence: id (taxon id), name, supercategory (order), rank",
  },
  {
    name: "images",
    description:
      "the captures holding a boxed detection: id, width, height (pixels), file_name, coco_url, date_captured (station-local), deployment_id, event_id",
  },
  {
    name: "annotations",
    description:
      "one per boxed detection: id, image_id, category_id (the determination), bbox [x, y, width, height] and area in pixels, iscrowd 0, occurrence_id, determination_score",
  },
];

/** A COCO object-detection dataset of the exported occurrences (`detections_coco`). */
export const detectionsCoco = jsonSections({
  key: "detections_coco",
  label: "Detections (COCO)",
  contents: cocoContents,
  description: "A COCO object-detection dataset (JSON): images (captures), annotations (boxed " +
    "detections of valid occurrences, bbox [x, y, width, height], category = determination) " +
    "and categories (the determined taxa, supercategory = order)",
  acceptedFilters: occurrenceFilterKeys,
  count: countAnnotations,
  // images of the export more than a day outside their session
  impossibleTimes: captureTimes("date_captured of the image null", (ctx) =>
    ctx.sql`exists (
      select 1 from detections bd
      where bd.source_image_id = s.id and ${realBox(ctx.sql, ctx.sql`bd.bbox`)}
        and (select true from occurrences o
          where o.id = bd.occurrence_id and ${occurrencePredicate(ctx)})
    )`),
  leading,
  /** Keyset of the section (taxon, capture or occurrence id); annotations: + detection id. */
  cursor: ["afterId", "afterDetection"],
  sections: [
    { name: "categories", rows: categories, cursor: (row) => ({ afterId: recordId(row.id) }) },
    { name: "images", rows: images, cursor: (row) => ({ afterId: recordId(row.id) }) },
    {
      name: "annotations",
      rows: annotations,
      cursor: (row) => ({
        afterId: recordId(row.occurrence_id),
        afterDetection: recordId(row.id),
      }),
      records: true,
    },
  ],
});
