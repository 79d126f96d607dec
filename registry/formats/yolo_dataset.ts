/**
 * `yolo_dataset`: an object-detection dataset in the Ultralytics YOLO layout (a zip archive):
 *
 * - `images/<split>/<capture id>.jpg`: the whole frame of every capture holding at least one
 *   real box of an exported (valid, filtered) occurrence, re-encoded at `jpeg_quality` and
 *   downscaled to at most `image_max_side` pixels on its longest side when given;
 * - `labels/<split>/<capture id>.txt`: one line per such box, in detection id order,
 *   `class cx cy w h` with the box's centre and size as fractions (6 decimals) of the source
 *   image's decoded width and height, `class` the index in `names` of the occurrence's
 *   determination;
 * - `data.yaml`: `path`, `train`, `val`, `test` and `names` (class index → taxon name; the
 *   classes are the determined taxa of the exported boxes, by taxon id);
 * - `skipped.csv`: the captures left out and why (`HTTP 404`, `host not allowed`,
 *   `box outside the image`, …); `README.md`: the export's data card.
 *
 * A frame is left out whole when its image cannot be fetched or decoded, or when one of its
 * boxes is empty or not inside the image (the reasons of `crops_by_taxon`, `registry/
 * image_crops.ts`): a frame with an unlabelled object would teach a detector that the object
 * is background.
 *
 * Phases: the classes and the frame total first (one statement each; the state keeps the
 * class list, so that every later batch and a resumed attempt number them alike), then the
 * frames, keyset on capture id, at most {@link MAX_IMAGES_PER_BATCH} a batch, each batch fetching
 * each of its captures once
 * (`registry/image_sources.ts`). The split of a frame is that of its unit (`split_by`:
 * `registry/image_dataset.ts`). More frames left out than `max_skipped_fraction` of the total
 * fails the export.
 */
import { keyShardBounds, occurrenceFilterKeys } from "../filters.ts";
import { capturesOfBatch, upToShardEnd } from "../batch_sql.ts";
import { cropRegion, encodeFrame, releaseBytes } from "../image_crops.ts";
import {
  boxedDetectionsFrom,
  imageOptionProblems,
  MAX_IMAGE_ENTRIES,
  MAX_IMAGES_PER_BATCH,
  refuseAboveLimit,
  refuseImageOptionProblems,
  refuseTooManySkipped,
  skippedCaptureColumns,
  skippedCapturesMember,
  type SplitOptions,
  splitOptions,
  splitUnit,
  unitSplits,
} from "../image_dataset.ts";
import { eachSourceImage, type FetchedImage } from "../image_sources.ts";
import { captureUrl } from "../occurrence_sql.ts";
import {
  type ExportOptions,
  type ExportQueryContext,
  type OptionKey,
  type RecordId,
  recordId,
} from "../types.ts";
import {
  type ArchiveFile,
  zipArchive,
  type ZipArchiveState,
  type ZipMember,
} from "../zip_archive.ts";
import { OPTION_DEFAULTS } from "../option_defaults.ts";

/** `skipped.csv`: one row per capture left out. */
export const yoloSkippedColumns: readonly string[] = skippedCaptureColumns;

/** The options of the format, every one defaulted. */
export interface YoloOptions extends SplitOptions {
  jpeg_quality: number;
  /** Longest side of a written frame in pixels (null: the source's size). */
  image_max_side: number | null;
  max_skipped_fraction: number;
}

/** The options of `yolo_dataset` (its `acceptedOptions`). */
export const yoloOptionKeys: readonly OptionKey[] = [
  "split",
  "split_by",
  "split_seed",
  "jpeg_quality",
  "image_max_side",
  "max_skipped_fraction",
];

/** The export's options with their defaults; throws on options the API would have refused. */
export function yoloOptions(options: ExportOptions = {}): YoloOptions {
  refuseImageOptionProblems(options);
  return {
    ...splitOptions(options),
    jpeg_quality: options.jpeg_quality ?? OPTION_DEFAULTS.jpeg_quality,
    image_max_side: options.image_max_side ?? null,
    max_skipped_fraction: options.max_skipped_fraction ?? OPTION_DEFAULTS.max_skipped_fraction,
  };
}

/**
 * `text` as a YAML double-quoted scalar: a JSON string (valid YAML 1.2), with the characters a
 * YAML 1.1 reader (PyYAML) refuses in a stream or reads as line breaks escaped too (DEL, C1
 * controls with NEL, U+2028, U+2029, U+FEFF, U+FFFE, U+FFFF), so that any name reads back as it
 * is whatever it holds (quotes, `#`, `: `, a leading space, `yes`, `null`).
 */
export function yamlString(text: string): string {
  return JSON.stringify(text).replace(
    /[\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * A box `[x1, y1, x2, y2]` (source pixels) as a YOLO label line `class cx cy w h`: centre and
 * size as fractions of `size`, 6 decimals; or why it has none (`empty box`, `box outside the
 * image`: {@link cropRegion}'s rules, without padding).
 */
export function labelLine(
  classIndex: number,
  bbox: readonly number[],
  size: { width: number; height: number },
): { ok: true; line: string } | { ok: false; reason: string } {
  const region = cropRegion(bbox, 0, size);
  if (!region.ok) return region;
  const [x1, y1, x2, y2] = bbox;
  const values = [
    (x1 + x2) / 2 / size.width,
    (y1 + y2) / 2 / size.height,
    (x2 - x1) / size.width,
    (y2 - y1) / size.height,
  ];
  return { ok: true, line: [classIndex, ...values.map((v) => v.toFixed(6))].join(" ") };
}

/** A capture of the export with its labelled boxes, as a batch reads it. */
interface FrameRow {
  capture_id: RecordId;
  source_url: string | null;
  deployment_id: RecordId | null;
  event_id: RecordId | null;
  /** The capture's boxes of exported occurrences, by detection id: `[taxon id, bbox]`. */
  boxes: [string, number[]][];
}

/** `from … where …` of the frames `s`: captures holding a box of an exported occurrence. */
function framesFrom(ctx: ExportQueryContext) {
  const { sql } = ctx;
  return sql`from source_images s
    where s.project_id = ${ctx.projectId}
      and exists (select 1 ${boxedDetectionsFrom(ctx)} and d.source_image_id = s.id)`;
}

/** Frames of the export (one statement): the progress total and the record count. */
async function countFrames(ctx: ExportQueryContext): Promise<number> {
  const [row] = await ctx.sql<{ n: number }[]>`select count(*)::bigint as n ${framesFrom(ctx)}`;
  return Number(row.n);
}

/** The classes: the taxon ids determining a box of an exported frame, ascending (one statement). */
async function classIds(ctx: ExportQueryContext): Promise<RecordId[]> {
  const { sql } = ctx;
  const rows = await sql<{ id: RecordId }[]>`
    select distinct t.id ${boxedDetectionsFrom(ctx)}
      and exists (select 1 from source_images cs
        where cs.id = d.source_image_id and cs.project_id = ${ctx.projectId})
    order by t.id`;
  return rows.map((row) => recordId(row.id));
}

/**
 * The next `limit` frames after capture `after` (up to capture `until` when given: a shard's
 * end) with their boxes (one statement).
 */
function frameRows(
  ctx: ExportQueryContext,
  after: RecordId,
  limit: number,
  until: RecordId | null = null,
): Promise<FrameRow[]> {
  const { sql } = ctx;
  const upTo = upToShardEnd(sql, sql`s.id`, until);
  return sql<FrameRow[]>`
    with batch as (
      select s.id ${framesFrom(ctx)} and s.id > ${after} ${upTo} order by s.id limit ${limit}
    )
    select s.id as capture_id, s.deployment_id, s.event_id,
      ${captureUrl(sql, sql`s.public_base_url`, sql`s.path`)} as source_url,
      (select json_agg(json_build_array(t.id::text, d.bbox::float8[]) order by d.id)
        ${boxedDetectionsFrom(ctx)} and d.source_image_id = s.id) as boxes
    ${capturesOfBatch(sql)}`;
}

/** The format's own state: the class list, the frame total and the skipped `[capture, reason]`. */
interface YoloState extends ZipArchiveState {
  classes: RecordId[] | null;
  total: number | null;
  skipped: [RecordId, string][];
  /** A shard of the frames: the classes and total it read itself (null before). */
  shardClasses: RecordId[] | null;
  shardTotal: number | null;
}

/** The JPEG and label text of a frame, or why it is left out. */
type Frame = { ok: true; jpeg: Uint8Array; labels: string } | { ok: false; reason: string };

/** A fetched frame re-encoded, with its labels from its decoded size. */
async function frameOf(
  row: FrameRow,
  image: FetchedImage,
  classes: ReadonlyMap<string, number>,
  options: YoloOptions,
): Promise<Frame> {
  if (!image.ok) return image;
  const encoded = await encodeFrame(image.bytes, {
    quality: options.jpeg_quality,
    maxSide: options.image_max_side,
  });
  releaseBytes(image.bytes); // re-encoded: the source's bytes are no longer read
  if (!encoded.ok) return encoded;
  const lines: string[] = [];
  for (const [taxon, bbox] of row.boxes ?? []) {
    const index = classes.get(taxon);
    if (index === undefined) throw new Error(`taxon not among the classes: ${taxon}`);
    const label = labelLine(index, bbox, encoded.frame);
    if (!label.ok) return label;
    lines.push(`${label.line}\n`);
  }
  return { ok: true, jpeg: encoded.frame.jpeg, labels: lines.join("") };
}

/**
 * The entries of one archive are bounded ({@link MAX_IMAGE_ENTRIES}, or `maxCrops` of the image
 * settings); a frame takes two (its image and its labels).
 */
function maxFrames(ctx: ExportQueryContext): number {
  return Math.floor((ctx.settings?.images?.maxCrops ?? MAX_IMAGE_ENTRIES) / 2);
}

const classesPhase: ZipMember = {
  name: null,
  async batch(ctx) {
    const total = await countFrames(ctx);
    refuseAboveLimit("yolo_dataset", { total, max: maxFrames(ctx), noun: "frames" });
    return { data: "", rows: 0, lastId: null, extra: { total, classes: await classIds(ctx) } };
  },
};

const framesPhase: ZipMember = {
  name: null,
  async batch(ctx, raw, limit, untilId) {
    const state = raw as YoloState;
    const options = yoloOptions(ctx.options);
    // a shard of the frames reads the classes and the total itself, once (the classes phase
    // runs apart from it): the same statements, in the export's snapshot; kept in its state
    // under names of its own, which the archive's composition does not merge
    const own = state.classes === null;
    const classList = state.classes ?? state.shardClasses ?? await classIds(ctx);
    const total = state.total ?? state.shardTotal ?? await countFrames(ctx);
    const classes = new Map(classList.map((id, i) => [String(id), i]));
    const take = Math.min(limit, MAX_IMAGES_PER_BATCH);
    const rows = await frameRows(ctx, state.afterId, take, untilId ?? null);
    const frames = await eachSourceImage(
      ctx,
      rows,
      (row) => row.source_url,
      (row, image) => frameOf(row, image, classes, options),
    );
    const splitOf = await unitSplits(ctx, framesFrom(ctx), options);
    const files: ArchiveFile[] = [];
    const skipped = [...state.skipped];
    for (const [i, row] of rows.entries()) {
      const frame = frames[i];
      if (!frame.ok) {
        skipped.push([recordId(row.capture_id), frame.reason]);
        continue;
      }
      const split = splitOf(splitUnit(row, options.split_by));
      files.push({
        name: `images/${split}/${row.capture_id}.jpg`,
        data: frame.jpeg,
        compressed: true,
      });
      files.push({ name: `labels/${split}/${row.capture_id}.txt`, data: frame.labels });
    }
    refuseTooManyFrames(skipped, total, options);
    return {
      data: "",
      files,
      rows: rows.length,
      records: files.length / 2,
      lastId: rows.length > 0 ? recordId(rows[rows.length - 1].capture_id) : null,
      more: rows.length === take,
      extra: { skipped, ...(own ? { shardClasses: classList, shardTotal: total } : {}) },
    };
  },
  // shards cut the frames by capture id: each frame is two entries of its own
  shardBounds: (ctx, every) => keyShardBounds(ctx, ctx.sql`select s.id ${framesFrom(ctx)}`, every),
  holdsRecords: true,
};

/** {@link refuseTooManySkipped} for frames: `skipped` of `total` captures. */
function refuseTooManyFrames(
  skipped: readonly (readonly [RecordId, string])[],
  total: number,
  options: YoloOptions,
): void {
  refuseTooManySkipped(skipped, {
    total,
    fraction: options.max_skipped_fraction,
    nouns: { left: "frames", of: "captures" },
  });
}

/**
 * `skipped.csv`, after every frame: the skipped list checked against the total once more (a
 * sharded export's shards each checked only their own part of it).
 */
const skippedFramesMember: ZipMember = {
  ...skippedCapturesMember,
  async head(ctx, raw) {
    const state = raw as YoloState;
    refuseTooManyFrames(state.skipped, state.total ?? 0, yoloOptions(ctx.options));
    return await skippedCapturesMember.head!(ctx, raw);
  },
};

/**
 * `data.yaml`: an empty `path` (Ultralytics then takes the folder of `data.yaml` itself as the
 * dataset root, where `path: .` meant the working directory, or its datasets folder in older
 * releases), the three split folders and `names`, class index → taxon name
 * ({@link yamlString}), each with its taxon id in a comment; `names: {}` without classes.
 */
export function dataYamlText(classes: readonly { id: RecordId; name: string }[]): string {
  const names = classes.map((taxon, i) =>
    `  ${i}: ${yamlString(taxon.name)} # taxon ${taxon.id}\n`
  );
  return "# Ultralytics YOLO dataset: class index → taxon name (the taxon id after #)\n" +
    "path: '' # empty: the dataset root is this file's folder\n" +
    "train: images/train\nval: images/val\ntest: images/test\n" +
    (names.length > 0 ? `names:\n${names.join("")}` : "names: {}\n");
}

const dataYaml: ZipMember = {
  name: "data.yaml",
  async head(ctx, raw) {
    const classes = (raw as YoloState).classes ?? [];
    const rows = await ctx.sql<{ id: RecordId; name: string }[]>`
      select t.id, t.name from taxa t where t.id = any(${classes.map(String)}::bigint[])`;
    const names = new Map(rows.map((row) => [String(row.id), row.name]));
    return dataYamlText(classes.map((id) => ({ id, name: names.get(String(id)) ?? "" })));
  },
};

/** Frames and YOLO labels of the boxed detections by split (`yolo_dataset`). */
export const yoloDataset = zipArchive({
  key: "yolo_dataset",
  label: "YOLO dataset (zip of JPEG and labels)",
  description: "An object-detection dataset in the Ultralytics YOLO layout (zip): the frames " +
    "holding a boxed detection of a valid occurrence under images/<split>/, one label file " +
    "per frame under labels/<split>/ (class cx cy w h, normalised), data.yaml with the class " +
    "names, and skipped.csv (frames that could not be fetched or labelled, and why)",
  acceptedFilters: occurrenceFilterKeys,
  acceptedOptions: yoloOptionKeys,
  optionProblems: imageOptionProblems,
  fetchesImages: true,
  count: countFrames,
  // 2: data.yaml's `path` empty instead of `.` (resolved against the working directory); 3:
  // README.md says how many frames were left out, member descriptions as Markdown (backticks
  // were escaped), the members listed instead of "Columns: every column"
  revision: 3,
  extra: { classes: null, total: null, skipped: [] },
  members: [classesPhase, framesPhase, dataYaml, skippedFramesMember],
  dataCard: true,
  contents: [
    {
      name: "images/<split>/<capture id>.jpg",
      description: "the whole frame of each capture holding a box of an exported occurrence, " +
        "as JPEG (`jpeg_quality`, longest side at most `image_max_side`), in the split of its " +
        "unit (`split_by`)",
    },
    {
      name: "labels/<split>/<capture id>.txt",
      description: "one line per box of an exported occurrence on the frame: `class cx cy w h`, " +
        "the class index in data.yaml's names, centre and size as fractions of the image",
      unit: "0–1",
    },
    {
      name: "data.yaml",
      description: "the dataset's paths (path, train, val, test) and names: class index → " +
        "taxon name, the classes ordered by taxon id",
    },
    {
      name: "skipped.csv",
      description: "one row per capture left out (image missing, not an image, truncated, host " +
        "not allowed, a box empty or outside the image) and the reason",
      columns: yoloSkippedColumns,
    },
  ],
});
