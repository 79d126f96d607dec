// Long because COCO is four sections, and with include_images a zip of the images besides them.
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
 *
 * Option `include_images` makes it a zip (`withOptions`, the zip-archive driver): first
 * `images/<capture id>.jpg` for each image (`registry/source_jpeg.ts`, keyset on capture id, the
 * ones that cannot be fetched kept in the state with their reason), then `annotations.json`, the
 * same document (its JSON-sections state nested in the zip's) but for each `file_name` and the
 * images left out and their annotations, deflated in pieces of 500 elements, then
 * `skipped.csv`. Sharded, the images are cut by capture id and `annotations.json` is one unit
 * after them, from their skipped lists (`ZipMember.readsEarlierUnits`, docs/architecture.md).
 */
import { keyShardBounds, occurrenceFilterKeys, occurrencePredicate } from "../filters.ts";
import { defaultImageSourceSettings, mapBounded } from "../image_sources.ts";
import {
  captureUrl,
  type Fragment,
  lineageName,
  realBox,
  settingsOf,
  stationZone,
} from "../occurrence_sql.ts";
import {
  imageBatch,
  type ImageOutcome,
  imageTotal,
  MAX_IMAGES_PER_BATCH,
  refuseTooManySkipped,
  skippedCaptureColumns,
  skippedCapturesMember,
} from "../image_dataset.ts";
import { sourceJpeg } from "../source_jpeg.ts";
import {
  type ContentEntry,
  type ExportOptions,
  type ExportQueryContext,
  type OptionKey,
  type RecordId,
  recordId,
  type StreamExporter,
  type StreamState,
} from "../types.ts";
import { finiteOrNull } from "../numeric_sql.ts";
import { captureTimes, sessionTime } from "../time_sql.ts";
import { capturesOfBatch, upToShardEnd } from "../batch_sql.ts";
import { jsonSections } from "../json_sections.ts";
import { zipArchive, type ZipArchiveState, type ZipMember } from "../zip_archive.ts";
import { OPTION_DEFAULTS } from "../option_defaults.ts";

/** The options of `detections_coco` (its `acceptedOptions`). */
export const cocoOptionKeys: readonly OptionKey[] = ["include_images", "max_skipped_fraction"];

/** Why `options` cannot be used (empty: they can), one message per option. */
export function cocoOptionProblems(options: ExportOptions): Record<string, string> {
  const problems: Record<string, string> = {};
  const { include_images, max_skipped_fraction: fraction } = options;
  if (include_images !== undefined && typeof include_images !== "boolean") {
    problems.include_images = "must be true or false";
  }
  if (
    fraction !== undefined &&
    !(typeof fraction === "number" && Number.isFinite(fraction) && fraction >= 0 && fraction <= 1)
  ) {
    problems.max_skipped_fraction = "must be a number from 0 to 1";
  }
  return problems;
}

/** The options with their defaults (`include_images` false, `max_skipped_fraction` 0.05). */
function cocoOptions(
  options: ExportOptions = {},
): { include_images: boolean; max_skipped_fraction: number } {
  return {
    include_images: options.include_images ?? OPTION_DEFAULTS.include_images,
    max_skipped_fraction: options.max_skipped_fraction ?? OPTION_DEFAULTS.max_skipped_fraction,
  };
}

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

/** True for a capture (`capture`: its id) holding a boxed detection of an exported occurrence. */
function holdsExportedBox(ctx: ExportQueryContext, capture: Fragment): Fragment {
  const { sql } = ctx;
  return sql`exists (
    select 1 from detections bd
    where bd.source_image_id = ${capture} and ${realBox(sql, sql`bd.bbox`)}
      and (select true from occurrences o
        where o.id = bd.occurrence_id and ${occurrencePredicate(ctx)})
  )`;
}

/**
 * The next `limit` captures of the export after `afterId` (a CTE `batch` of their ids), none
 * past `untilId` when given (a shard's end).
 */
function capturesBatch(
  ctx: ExportQueryContext,
  afterId: RecordId,
  limit: number,
  untilId: RecordId | null = null,
): Fragment {
  const { sql } = ctx;
  return sql`batch as (
    select bs.id from source_images bs
    where bs.project_id = ${ctx.projectId} and bs.id > ${afterId}
      ${upToShardEnd(sql, sql`bs.id`, untilId)}
      and ${holdsExportedBox(ctx, sql`bs.id`)}
    order by bs.id
    limit ${limit}
  )`;
}

/** `file_name` of an image: its storage path; in the zip, `images/<capture id>.jpg`. */
function fileName(ctx: ExportQueryContext, inZip: boolean): Fragment {
  const { sql } = ctx;
  return inZip ? sql`'images/' || s.id || '.jpg'` : sql`s.path`;
}

async function images(
  ctx: ExportQueryContext,
  { afterId }: Readonly<Record<string, RecordId>>,
  limit: number,
  inZip = false,
): Promise<{ id: RecordId; json: string }[]> {
  const { sql } = ctx;
  const zone = stationZone(sql, settingsOf(ctx), "sd");
  return await sql<{ id: RecordId; json: string }[]>`
    with ${capturesBatch(ctx, afterId, limit)}
    select s.id, json_build_object(
      'id', s.id,
      'width', s.width,
      'height', s.height,
      'file_name', ${fileName(ctx, inZip)},
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
  until: RecordId | null = null,
): Promise<{ occurrence_id: RecordId; id: RecordId; image_id: RecordId; json: string }[]> {
  const { sql } = ctx;
  // One walk in keyset order: each exported occurrence from the cursor's on (checked row by row
  // against the shared predicate, as `occurrenceBatch` does), its boxed detections after the
  // cursor read by one index probe (`offset 0` keeps the probe per occurrence), stopped at
  // `limit`. The page carries the columns the element needs: no second read of detections or
  // occurrences by id (the planner hashed the whole detections table for that, every batch).
  return await sql<{ occurrence_id: RecordId; id: RecordId; image_id: RecordId; json: string }[]>`
    with page as (
      select c.id as occurrence_id, c.determination_id, c.determination_score,
        pd.id, pd.source_image_id, pd.bbox
      from occurrences c
      cross join lateral (
        select pd.id, pd.source_image_id, pd.bbox from detections pd
        where pd.occurrence_id = c.id and ${realBox(sql, sql`pd.bbox`)}
          and (pd.occurrence_id, pd.id)
            > (${cursor.afterId}::bigint, ${cursor.afterDetection}::bigint)
        offset 0
      ) pd
      where c.project_id = ${ctx.projectId} and c.id >= ${cursor.afterId}
        ${until === null ? sql`` : sql`and c.id <= ${until}`}
        and (select true from occurrences o where o.id = c.id and ${occurrencePredicate(ctx)})
      order by c.id, pd.id
      limit ${limit}
    )
    select d.occurrence_id, d.id, d.source_image_id as image_id, json_build_object(
      'id', d.id,
      'image_id', d.source_image_id,
      'category_id', d.determination_id,
      'bbox', json_build_array(d.bbox[1], d.bbox[2], d.bbox[3] - d.bbox[1], d.bbox[4] - d.bbox[2]),
      'area', (d.bbox[3] - d.bbox[1]) * (d.bbox[4] - d.bbox[2]),
      'iscrowd', 0,
      'occurrence_id', d.occurrence_id,
      'determination_score', ${finiteOrNull(sql, sql`d.determination_score`)}
    )::text as json
    from page d
    order by d.occurrence_id, d.id`;
}

/**
 * The occurrence id of each annotation (boxed detection of an exported occurrence), the shard
 * bounds' keys: the plain file shards by occurrence id in its annotations, shard 0 also writing
 * `info`, `categories` and `images` (`jsonSections`).
 */
function annotationKeys(ctx: ExportQueryContext): Fragment {
  const { sql } = ctx;
  return sql`select d.occurrence_id as id from occurrences o
    join detections d on d.occurrence_id = o.id
    where ${occurrencePredicate(ctx)} and ${realBox(sql, sql`d.bbox`)}`;
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

/**
 * The COCO document: with `skipped` (capture ids as text) the one inside the zip of
 * `include_images`, whose `file_name`s are `images/<capture id>.jpg` and which leaves out the
 * skipped captures and their annotations; without, the JSON file itself.
 */
function cocoDocument(skipped?: ReadonlySet<string>): StreamExporter {
  const inZip = skipped !== undefined;
  const kept = (id: RecordId): boolean => !skipped?.has(String(id));
  return jsonSections({
    key: "detections_coco",
    label: "Detections (COCO)",
    contents: cocoContents,
    description: "A COCO object-detection dataset (JSON): images (captures), annotations (boxed " +
      "detections of valid occurrences, bbox [x, y, width, height], category = determination) " +
      "and categories (the determined taxa, supercategory = order)",
    acceptedFilters: occurrenceFilterKeys,
    acceptedOptions: cocoOptionKeys,
    optionProblems: cocoOptionProblems,
    withOptions: (options) => (options.include_images === true ? cocoWithImages : detectionsCoco),
    count: countAnnotations,
    // images of the export more than a day outside their session
    impossibleTimes: captureTimes(
      "date_captured of the image null",
      (ctx) => holdsExportedBox(ctx, ctx.sql`s.id`),
    ),
    leading,
    // the zip's document leaves out the skipped images' annotations: only the file shards
    ...(inZip ? {} : { shardKeys: annotationKeys }),
    /** Keyset of the section (taxon, capture or occurrence id); annotations: + detection id. */
    cursor: ["afterId", "afterDetection"],
    sections: [
      { name: "categories", rows: categories, cursor: (row) => ({ afterId: recordId(row.id) }) },
      {
        name: "images",
        rows: (ctx, after, limit) => images(ctx, after, limit, inZip),
        cursor: (row) => ({ afterId: recordId(row.id) }),
        keep: inZip ? (row) => kept(row.id) : undefined,
      },
      {
        name: "annotations",
        rows: annotations,
        cursor: (row) => ({
          afterId: recordId(row.occurrence_id),
          afterDetection: recordId(row.id),
        }),
        records: true,
        keep: inZip ? (row) => kept(row.image_id) : undefined,
      },
    ],
  });
}

/**
 * A COCO object-detection dataset of the exported occurrences (`detections_coco`). Its shards'
 * annotations refer to the images and categories shard 0 writes (`shardsReferAcross`).
 */
export const detectionsCoco: StreamExporter = { ...cocoDocument(), shardsReferAcross: true };

/** `skipped.csv` of `include_images`: one row per capture left out. */
export const cocoSkippedColumns: readonly string[] = skippedCaptureColumns;

/** The format's own state in the zip: the image total, the skipped ones, the document's state. */
interface CocoImagesState extends ZipArchiveState {
  total: number | null;
  skipped: [RecordId, string][];
  document: StreamState | null;
}

/** Captures of the export (one statement): the images the zip holds, skipped ones included. */
async function countImages(ctx: ExportQueryContext): Promise<number> {
  const { sql } = ctx;
  const [row] = await sql<{ n: number }[]>`
    select count(*)::bigint as n from source_images s
    where s.project_id = ${ctx.projectId} and ${holdsExportedBox(ctx, sql`s.id`)}`;
  return Number(row.n);
}

/** `images/<capture id>.jpg`, one per capture of the export, keyset on capture id. */
const imagesPhase: ZipMember = {
  name: null,
  async batch(ctx, raw, limit, untilId) {
    const state = raw as CocoImagesState;
    const options = cocoOptions(ctx.options);
    const total = await imageTotal(ctx, state.total, countImages, {
      format: "detections_coco with include_images",
      noun: "images",
    });
    const { sql } = ctx;
    const take = Math.min(limit, MAX_IMAGES_PER_BATCH);
    const rows = await sql<
      { id: RecordId; source_url: string | null; width: number | null; height: number | null }[]
    >`
      with ${capturesBatch(ctx, state.afterId, take, untilId ?? null)}
      select s.id, ${captureUrl(sql, sql`s.public_base_url`, sql`s.path`)} as source_url,
        s.width, s.height
      ${capturesOfBatch(sql)}`;
    const settings = ctx.settings?.images ?? defaultImageSourceSettings;
    const fetched = await mapBounded(
      rows,
      settings.concurrency,
      (row) =>
        row.source_url === null
          ? Promise.resolve({ ok: false as const, reason: "no source URL" })
          : sourceJpeg(row.source_url, settings),
    );
    // a capture's image, as fetched (a JPEG) or re-encoded, or why it is left out
    const batch = imageBatch(
      rows,
      (row, i): ImageOutcome => {
        const image = fetched[i];
        if (!image.ok) return { id: recordId(row.id), reason: image.reason };
        const problem = storedSizeProblem(row, image);
        return problem
          ? { id: recordId(row.id), reason: problem }
          : { id: recordId(row.id), name: `images/${row.id}.jpg`, data: image.jpeg };
      },
      { total, skipped: state.skipped },
      { fraction: options.max_skipped_fraction, nouns: IMAGE_NOUNS, filesAreRecords: false },
    );
    return { ...batch, more: rows.length === take };
  },
  // shards cut the images by capture id: each image is an entry of its own
  shardBounds: (ctx, every) =>
    keyShardBounds(
      ctx,
      ctx.sql`select s.id from source_images s
        where s.project_id = ${ctx.projectId} and ${holdsExportedBox(ctx, ctx.sql`s.id`)}`,
      every,
    ),
};

/**
 * Why an image cannot go into the zip beside the document: `annotations.json` gives each image
 * the capture's stored `width` and `height` (COCO's `image` fields, in which its boxes are
 * measured), so an image decoding to another size, or a capture with none stored, would be
 * described wrongly: it is left out with this reason (`size 1600 × 844 differs from the
 * capture's stored 3200 × 1688`, `the capture has no stored size`), never written with a size
 * that is not its own.
 */
export function storedSizeProblem(
  stored: { width: number | null; height: number | null },
  decoded: { width: number; height: number },
): string | undefined {
  if (stored.width === null || stored.height === null) return "the capture has no stored size";
  if (stored.width === decoded.width && stored.height === decoded.height) return undefined;
  return `size ${decoded.width} × ${decoded.height} differs from the capture's stored ` +
    `${stored.width} × ${stored.height}`;
}

/** What `max_skipped_fraction` counts for `include_images`: images of images. */
const IMAGE_NOUNS = { left: "images", of: "images" };

/** `annotations.json`: the COCO document, chunk by chunk, its driver's state in the zip's. */
const annotationsMember: ZipMember = {
  name: "annotations.json",
  async batch(ctx, raw, limit) {
    const state = raw as CocoImagesState;
    const document = cocoDocument(new Set(state.skipped.map(([id]) => String(id))));
    const chunk = await document.next(ctx, state.document ?? document.initialState(ctx), {
      limit,
    });
    return {
      data: chunk.data,
      lastId: null,
      // the member ends with the document
      rows: chunk.done ? 0 : limit,
      records: chunk.records,
      extra: { document: chunk.state },
    };
  },
  // the document leaves out what every image unit skipped: one unit, after them
  readsEarlierUnits: true,
  holdsRecords: true,
};

/**
 * `skipped.csv`, after the document: the skipped list checked against the total once more (a
 * sharded export's image units each checked only their own part of it).
 */
const skippedImagesMember: ZipMember = {
  ...skippedCapturesMember,
  async head(ctx, raw) {
    const state = raw as CocoImagesState;
    refuseTooManySkipped(state.skipped, {
      total: state.total ?? 0,
      fraction: cocoOptions(ctx.options).max_skipped_fraction,
      nouns: IMAGE_NOUNS,
    });
    return await skippedCapturesMember.head!(ctx, raw);
  },
};

// the zip shards as an archive (its images by capture, its document whole after them), not
// as the JSON file
const { shardBounds: _bounds, shard: _shard, ...cocoInfo } = detectionsCoco;

/** `detections_coco` with `include_images`: the dataset and its images in one zip. */
const cocoWithImages: StreamExporter = zipArchive({
  ...cocoInfo,
  label: "Detections (COCO) with images (zip)",
  description: "A COCO object-detection dataset with its images (zip): annotations.json " +
    "(file_name = images/<capture id>.jpg), the images, and skipped.csv",
  fetchesImages: true,
  contents: [
    {
      name: "images/<capture id>.jpg",
      description: "the source image of each capture of annotations.json (as fetched when a " +
        "JPEG, else re-encoded as JPEG at quality 90)",
    },
    {
      name: "annotations.json",
      description: "the COCO document of the JSON file, but each image's file_name its path " +
        "in the zip and the skipped images and their annotations left out",
    },
    {
      name: "skipped.csv",
      description: "one row per capture left out (image missing, not an image, truncated, " +
        "host not allowed) and the reason",
      columns: cocoSkippedColumns,
    },
  ],
  // 2: annotations.json deflated in pieces of 500 elements (pieceKeys), so it shards;
  // 3: an image whose decoded size is not the capture's stored one is left out (skipped.csv)
  revision: 3,
  extra: { total: null, skipped: [], document: null },
  members: [imagesPhase, annotationsMember, skippedImagesMember],
  pieceKeys: 500,
});
