// Long because a crops dataset is four members (crops, manifest, taxa, skipped) over one set.
/**
 * `crops_by_taxon`: an image-classification dataset, one JPEG per boxed detection of an exported
 * (valid, filtered) occurrence, in a folder per split and taxon (a zip archive):
 *
 * - `crops/<split>/<family>/<name>-<taxon id>/<occurrence id>_<detection id>.jpg`, the crop of
 *   the detection's box from its capture (`registry/image_crops.ts`), the taxon the occurrence's
 *   determination, `<family>` the family of its lineage (`no_family` above family rank), names
 *   made filesystem-safe ({@link safeName});
 * - `manifest.csv`: one row per crop written;
 * - `taxa.csv`: one row per determined taxon with its folder and crop count;
 * - `skipped.csv`: the detections left out and why (`HTTP 404`, `host not allowed`, …).
 *
 * The crops phase is keyset on detection id; each batch fetches each of its captures once
 * (`registry/image_sources.ts`) and cuts all its crops from one decode. The split of a crop is
 * that of its unit (event, deployment or capture: `split_by`), by a hash of the unit and
 * `split_seed`, so a unit never spans two splits. The state holds the total and the skipped
 * detections (id and reason); more skipped than `max_skipped_fraction` of the total fails the
 * export ({@link ExportRefusedError}).
 */
import { upToShardEnd } from "../batch_sql.ts";
import { eachSourceImage } from "../image_sources.ts";
import {
  cropRegion,
  cutCrop,
  type DecodeResult,
  releaseBytes,
  withDecodedImage,
} from "../image_crops.ts";
import {
  boxedDetectionsFrom,
  imageBatch,
  imageOptionProblems,
  type ImageOutcome,
  imageTotal,
  MAX_IMAGE_ENTRIES,
  refuseImageOptionProblems,
  refuseTooManySkipped,
  type SplitOfUnit,
  type SplitOptions,
  splitOptions,
  splitUnit,
  unitSplits,
} from "../image_dataset.ts";
import { keyShardBounds, occurrenceFilterKeys } from "../filters.ts";
import { csvHeader, csvRecords } from "../keyset_csv.ts";
import { finiteOrNull } from "../numeric_sql.ts";
import { captureUrl, lineageName, settingsOf, stationZone } from "../occurrence_sql.ts";
import { captureTimes, sessionTime } from "../time_sql.ts";
import {
  type ExportOptions,
  type ExportQueryContext,
  type OptionKey,
  type RecordId,
  recordId,
} from "../types.ts";
import { zipArchive, type ZipArchiveState, type ZipMember } from "../zip_archive.ts";
import { OPTION_DEFAULTS } from "../option_defaults.ts";

/** `manifest.csv`, in file order: one row per crop in the archive. */
export const cropsManifestColumns: readonly string[] = [
  "file",
  "split",
  "occurrence_id",
  "detection_id",
  "capture_id",
  "taxon_id",
  "taxon_name",
  "taxon_rank",
  "determination_score",
  "verified",
  "bbox_x1",
  "bbox_y1",
  "bbox_x2",
  "bbox_y2",
  "source_url",
  "deployment_id",
  "deployment_name",
  "event_id",
  "local_timestamp",
];

/** `taxa.csv`: one row per taxon determining an exported occurrence with a boxed detection. */
export const cropsTaxaColumns: readonly string[] = [
  "taxon_id",
  "taxon_name",
  "taxon_rank",
  "family_name",
  "folder",
  "crop_count",
];

/** `skipped.csv`: one row per detection left out. */
export const cropsSkippedColumns: readonly string[] = [
  "detection_id",
  "occurrence_id",
  "capture_id",
  "source_url",
  "reason",
];

/** The options of the format, every one defaulted. */
export interface CropOptions extends SplitOptions {
  crop_padding: number;
  jpeg_quality: number;
  max_skipped_fraction: number;
  /** At most this many crops per taxon, the best scored (null: no limit). */
  per_taxon_limit: number | null;
  /** Longest side of a crop in pixels, downscaled to it (null: the crop's own size). */
  image_max_side: number | null;
}

/** The options of `crops_by_taxon` (its `acceptedOptions`). */
export const cropOptionKeys: readonly OptionKey[] = [
  "split",
  "split_by",
  "split_seed",
  "crop_padding",
  "jpeg_quality",
  "max_skipped_fraction",
  "per_taxon_limit",
  "image_max_side",
];

/** Why `options` cannot be used (empty: they can), one message per option. */
export function cropOptionProblems(options: ExportOptions): Record<string, string> {
  return imageOptionProblems(options);
}

/** The export's options with their defaults; throws on options the API would have refused. */
export function cropOptions(options: ExportOptions = {}): CropOptions {
  refuseImageOptionProblems(options);
  return {
    ...splitOptions(options),
    crop_padding: options.crop_padding ?? OPTION_DEFAULTS.crop_padding,
    jpeg_quality: options.jpeg_quality ?? OPTION_DEFAULTS.jpeg_quality,
    max_skipped_fraction: options.max_skipped_fraction ?? OPTION_DEFAULTS.max_skipped_fraction,
    per_taxon_limit: options.per_taxon_limit ?? null,
    image_max_side: options.image_max_side ?? null,
  };
}

/**
 * A name as one folder name: accents dropped, every run of characters other than
 * `A–Z a–z 0–9 . _ -` one `_`, no leading dot or `_`, at most 80 characters; `taxon` when
 * nothing is left.
 */
export function safeName(name: string): string {
  const ascii = name.normalize("NFKD").replace(/[\u0300-\u036f]/g, "");
  const safe = ascii.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._]+|_+$/g, "").slice(0, 80);
  return safe.length > 0 ? safe : "taxon";
}

/** `<family>/<name>-<taxon id>`: unique per taxon (its id), readable (its family and name). */
export function taxonFolder(taxon: { id: RecordId; name: string; family: string | null }): string {
  return `${taxon.family ? safeName(taxon.family) : "no_family"}/${
    safeName(taxon.name)
  }-${taxon.id}`;
}

/** A boxed detection of an exported occurrence, as the crops phase and the manifest read it. */
interface CropRow {
  detection_id: RecordId;
  occurrence_id: RecordId;
  capture_id: RecordId;
  taxon_id: RecordId;
  taxon_name: string;
  taxon_rank: string | null;
  family_name: string | null;
  determination_score: number | null;
  verified: boolean;
  bbox: number[];
  source_url: string | null;
  deployment_id: RecordId | null;
  deployment_name: string | null;
  event_id: RecordId | null;
  local_timestamp: string | null;
}

/** `from … where …` of the boxed detections of the valid filtered occurrences. */
function boxedFrom(ctx: ExportQueryContext) {
  return boxedDetectionsFrom(ctx);
}

/**
 * `from … where …` of the crops (`d`, `o`, `t`): the boxed detections of the valid filtered
 * occurrences; with `per_taxon_limit` N only the first N of each taxon by the occurrence's
 * determination score, highest first (a non-finite or missing score last), then by detection
 * id, ranked by a window over the same filtered set. Every statement of the format (count,
 * batches, taxa) reads this one set, so keyset batches, resume and the totals agree.
 */
function cropsFrom(ctx: ExportQueryContext) {
  const { sql } = ctx;
  const limit = cropOptions(ctx.options).per_taxon_limit;
  if (limit === null) return boxedFrom(ctx);
  const score = finiteOrNull(sql, sql`o.determination_score`);
  return sql`${boxedFrom(ctx)} and d.id in (
    select ranked.id from (
      select d.id, row_number() over (
        partition by t.id order by ${score} desc nulls last, d.id
      ) as n ${boxedFrom(ctx)}
    ) ranked where ranked.n <= ${limit})`;
}

/** Crops of the export (one statement): the file's record count. */
async function countCrops(ctx: ExportQueryContext): Promise<number> {
  const [row] = await ctx.sql<{ n: number }[]>`select count(*)::bigint as n ${cropsFrom(ctx)}`;
  return Number(row.n);
}

/** The next `limit` crops after detection `after`, up to `until` when given (one statement). */
function cropRows(
  ctx: ExportQueryContext,
  after: RecordId,
  limit: number,
  until: RecordId | null = null,
): Promise<CropRow[]> {
  const { sql } = ctx;
  const zone = stationZone(sql, settingsOf(ctx), "sd");
  const upTo = upToShardEnd(sql, sql`d.id`, until);
  return sql<CropRow[]>`
    with page as (
      select d.id ${cropsFrom(ctx)} and d.id > ${after} ${upTo} order by d.id limit ${limit}
    )
    select d.id as detection_id, d.occurrence_id, d.source_image_id as capture_id,
      t.id as taxon_id, t.name as taxon_name, t.rank as taxon_rank,
      ${lineageName(sql, "FAMILY")} as family_name,
      ${finiteOrNull(sql, sql`o.determination_score`)} as determination_score,
      exists (select 1 from identifications vi
        where vi.occurrence_id = o.id and not vi.withdrawn) as verified,
      d.bbox::float8[] as bbox,
      ${captureUrl(sql, sql`s.public_base_url`, sql`s.path`)} as source_url,
      s.deployment_id, sd.name as deployment_name, s.event_id,
      to_char(${sessionTime(sql, sql`s.timestamp`, sql`s.event_id`)} at time zone ${zone},
        'YYYY-MM-DD"T"HH24:MI:SS') as local_timestamp
    from page
    join detections d on d.id = page.id
    join occurrences o on o.id = d.occurrence_id
    join taxa t on t.id = o.determination_id
    join source_images s on s.id = d.source_image_id
    left join deployments sd on sd.id = s.deployment_id
    order by d.id`;
}

/** `from source_images s where …`: the captures holding a crop of the export. */
function cropCapturesFrom(ctx: ExportQueryContext) {
  return ctx.sql`from source_images s
    where exists (select 1 ${cropsFrom(ctx)} and d.source_image_id = s.id)`;
}

/** The archive path of a crop. */
function cropFile(row: CropRow, options: CropOptions, splitOf: SplitOfUnit): string {
  const unit = splitUnit(row, options.split_by);
  const folder = taxonFolder({ id: row.taxon_id, name: row.taxon_name, family: row.family_name });
  return `crops/${splitOf(unit)}/${folder}/${row.occurrence_id}_${row.detection_id}.jpg`;
}

/** The format's own state: the crop total and the skipped detections `[id, reason]`. */
interface CropsState extends ZipArchiveState {
  total: number | null;
  skipped: [RecordId, string][];
}

/** The crops of a batch's rows: each capture fetched and decoded once, its crops cut from it. */
async function cutCrops(
  ctx: ExportQueryContext,
  rows: readonly CropRow[],
  options: CropOptions,
): Promise<Map<RecordId, { ok: true; jpeg: Uint8Array } | { ok: false; reason: string }>> {
  const byCapture = new Map<RecordId, CropRow[]>();
  for (const row of rows) {
    byCapture.set(row.capture_id, [...(byCapture.get(row.capture_id) ?? []), row]);
  }
  const out = new Map<RecordId, { ok: true; jpeg: Uint8Array } | { ok: false; reason: string }>();
  const urlOf = (crops: CropRow[]): string | null => crops[0].source_url;
  // the crops of one capture are cut side by side (each an independent libvips pipeline on the
  // same decoded pixels), so both cores stay busy while the capture is held
  const cut = async (crops: CropRow[], decoded: DecodeResult): Promise<void> => {
    await Promise.all(crops.map(async (row) => {
      if (!decoded.ok) return void out.set(row.detection_id, decoded);
      const { image } = decoded;
      const region = cropRegion(row.bbox, options.crop_padding, image);
      if (!region.ok) return void out.set(row.detection_id, region);
      const jpeg = await cutCrop(image, region.region, options.jpeg_quality, {
        maxSide: options.image_max_side ?? undefined,
      });
      out.set(row.detection_id, { ok: true, jpeg });
    }));
  };
  // fetches overlap; the decoded pixels of at most DECODE_SLOTS captures (within
  // DECODE_BUDGET_BYTES) are held at once
  await eachSourceImage(ctx, [...byCapture.values()], urlOf, async (crops, fetched) => {
    if (!fetched.ok) return await cut(crops, fetched);
    await withDecodedImage(fetched.bytes, (decoded) => {
      releaseBytes(fetched.bytes); // decoded: the source's bytes are no longer read
      return cut(crops, decoded);
    });
  });
  return out;
}

/** The most crops one export writes: one entry each ({@link MAX_IMAGE_ENTRIES}). */
export const MAX_CROPS = MAX_IMAGE_ENTRIES;

const cropsPhase: ZipMember = {
  name: null,
  async batch(ctx, raw, limit, untilId) {
    const state = raw as CropsState;
    const options = cropOptions(ctx.options);
    const names = { format: "crops_by_taxon", noun: "crops" };
    const total = await imageTotal(ctx, state.total, countCrops, names);
    const rows = await cropRows(ctx, state.afterId, limit, untilId ?? null);
    const crops = await cutCrops(ctx, rows, options);
    const splitOf = await unitSplits(ctx, cropCapturesFrom(ctx), options);
    const cropOf = (row: CropRow): ImageOutcome => {
      const crop = crops.get(row.detection_id)!;
      const id = recordId(row.detection_id);
      if (!crop.ok) return { id, reason: crop.reason };
      return { id, name: cropFile(row, options, splitOf), data: crop.jpeg };
    };
    return imageBatch(rows, cropOf, { total, skipped: state.skipped }, {
      fraction: options.max_skipped_fraction,
      nouns: { left: "crops", of: "detections" },
      filesAreRecords: true,
    });
  },
  // shards cut the crops by detection id (each crop is an entry of its own); the tables after
  // them list what every shard skipped, so the composition writes them
  shardBounds: (ctx, every) => keyShardBounds(ctx, ctx.sql`select d.id ${cropsFrom(ctx)}`, every),
  holdsRecords: true,
};

const manifest: ZipMember = {
  name: "manifest.csv",
  head: () => csvHeader(cropsManifestColumns),
  async batch(ctx, raw, limit) {
    const state = raw as CropsState;
    const options = cropOptions(ctx.options);
    const skipped = new Set(state.skipped.map(([id]) => String(id)));
    const rows = await cropRows(ctx, state.afterId, limit);
    const kept = rows.filter((row) => !skipped.has(String(row.detection_id)));
    const splitOf = await unitSplits(ctx, cropCapturesFrom(ctx), options);
    const cells = kept.map((row) => ({
      ...row,
      file: cropFile(row, options, splitOf),
      split: cropFile(row, options, splitOf).split("/")[1],
      bbox_x1: row.bbox[0],
      bbox_y1: row.bbox[1],
      bbox_x2: row.bbox[2],
      bbox_y2: row.bbox[3],
    }));
    return csvPage(cells, rows.length, cropsManifestColumns, rows.at(-1)?.detection_id);
  },
  composed: true,
};

/** One batch of a CSV member: its rows' text, the rows read and the last key (null: none). */
function csvPage(
  cells: Record<string, unknown>[],
  rows: number,
  columns: readonly string[],
  last: RecordId | undefined,
): { data: string; rows: number; lastId: RecordId | null } {
  return {
    data: csvRecords(cells, columns),
    rows,
    lastId: last === undefined ? null : recordId(last),
  };
}

const taxa: ZipMember = {
  name: "taxa.csv",
  head: () => csvHeader(cropsTaxaColumns),
  async batch(ctx, raw, limit) {
    const state = raw as CropsState;
    const { sql } = ctx;
    const skipped = state.skipped.map(([id]) => String(id));
    const rows = await sql<
      { taxon_id: RecordId; taxon_name: string; taxon_rank: string; family_name: string | null }[]
    >`
      with page as (
        select t.id, count(*) filter (where d.id::text <> all(${skipped}::text[])) as crop_count
        ${cropsFrom(ctx)} and t.id > ${state.afterId}
        group by t.id order by t.id limit ${limit}
      )
      select t.id as taxon_id, t.name as taxon_name, t.rank as taxon_rank,
        ${lineageName(sql, "FAMILY")} as family_name, page.crop_count
      from page join taxa t on t.id = page.id
      order by t.id`;
    const cells = rows.map((row) => ({
      ...row,
      folder: taxonFolder({ id: row.taxon_id, name: row.taxon_name, family: row.family_name }),
    }));
    return csvPage(cells, rows.length, cropsTaxaColumns, rows.at(-1)?.taxon_id);
  },
  composed: true,
};

const skippedList: ZipMember = {
  name: "skipped.csv",
  async head(ctx, raw) {
    const state = raw as CropsState;
    const { sql } = ctx;
    // the whole list once more: each shard of a sharded archive checked only its own part
    refuseTooManySkipped(state.skipped, {
      total: state.total ?? 0,
      fraction: cropOptions(ctx.options).max_skipped_fraction,
      nouns: { left: "crops", of: "detections" },
    });
    const ids = state.skipped.map(([id]) => String(id));
    const reasons = new Map(state.skipped.map(([id, reason]) => [String(id), reason]));
    const rows = await sql<
      {
        detection_id: RecordId;
        occurrence_id: RecordId;
        capture_id: RecordId;
        source_url: string | null;
      }[]
    >`
      select d.id as detection_id, d.occurrence_id, d.source_image_id as capture_id,
        ${captureUrl(sql, sql`s.public_base_url`, sql`s.path`)} as source_url
      from detections d join source_images s on s.id = d.source_image_id
      where d.id = any(${ids}::bigint[])
      order by d.id`;
    const cells = rows.map((row) => ({ ...row, reason: reasons.get(String(row.detection_id)) }));
    return csvHeader(cropsSkippedColumns) + csvRecords(cells, cropsSkippedColumns);
  },
};

/** Crops of the boxed detections by split and taxon (`crops_by_taxon`). */
export const cropsByTaxon = zipArchive({
  key: "crops_by_taxon",
  // 2: tables deflated in pieces of 500 keys (pieceKeys), dated by the request; 3: the data
  // card's taxa.csv line says a taxon may have 0 crops
  revision: 3,
  label: "Crops by taxon (zip of JPEG)",
  description: "An image-classification dataset (zip): one JPEG crop per boxed detection of a " +
    "valid occurrence under crops/<split>/<family>/<name>-<taxon id>/, manifest.csv, taxa.csv " +
    "and skipped.csv (images that could not be fetched or cut, and why)",
  acceptedFilters: occurrenceFilterKeys,
  acceptedOptions: cropOptionKeys,
  optionProblems: cropOptionProblems,
  fetchesImages: true,
  count: countCrops,
  // captures of the export more than a day outside their session
  impossibleTimes: captureTimes(
    "local_timestamp of its crops empty",
    (ctx) => ctx.sql`exists (select 1 ${cropsFrom(ctx)} and d.source_image_id = s.id)`,
  ),
  extra: { total: null, skipped: [] },
  members: [cropsPhase, manifest, taxa, skippedList],
  // manifest.csv and taxa.csv in pieces of this many keys, so the composition writes them alike
  pieceKeys: 500,
  contents: [
    {
      name: "crops/<split>/<family>/<name>-<taxon id>/<occurrence id>_<detection id>.jpg",
      description: "one JPEG crop per boxed detection of an exported occurrence: the box (with " +
        "`crop_padding`) cut from its capture, downscaled to `image_max_side`, in the split of " +
        "its unit (`split_by`)",
    },
    {
      name: "manifest.csv",
      description: "one row per crop: its file, split, occurrence, detection, capture, taxon, " +
        "score, box in source pixels, source URL, station and local time",
      columns: cropsManifestColumns,
    },
    {
      name: "taxa.csv",
      description: "one row per determined taxon of the export: its folder and crop count " +
        "(0 when all its crops were left out or beyond per_taxon_limit)",
      columns: cropsTaxaColumns,
    },
    {
      name: "skipped.csv",
      description: "one row per detection left out (image missing, not an image, truncated, " +
        "host not allowed, box outside the image) and the reason",
      columns: cropsSkippedColumns,
    },
  ],
});
