/**
 * What the image-dataset formats (`crops_by_taxon`, `yolo_dataset`) share: their options and
 * how they are checked, the split of a split unit, the unit of a capture, the threshold of
 * images left out, and the bound on the entries of one archive.
 *
 * Splits: the export's units (an event, a station (deployment) or a capture: {@link splitUnit})
 * ordered by a hash of `<split_seed>/<unit kind>:<unit id>`, the first round(n × train) `train`,
 * up to round(n × (train + val)) `val`, the rest `test` ({@link unitSplits}): deterministic, a
 * unit never in two splits, each split within one unit of its fraction.
 */
import { occurrencePredicate } from "./filters.ts";
import { realBox } from "./numeric_sql.ts";
import { OPTION_DEFAULTS } from "./option_defaults.ts";
import { csvHeader, csvRecords } from "./keyset_csv.ts";
import { captureUrl, type Fragment } from "./occurrence_sql.ts";
import type { ArchiveFile, MemberBatch, ZipArchiveState, ZipMember } from "./zip_archive.ts";
import {
  type ExportOptions,
  type ExportQueryContext,
  ExportRefusedError,
  type RecordId,
} from "./types.ts";

/** The split options, defaulted. */
export interface SplitOptions {
  split: { train: number; val: number; test: number };
  split_by: "event" | "deployment" | "capture";
  split_seed: string;
}

/**
 * `from … where …` of the boxed detections `d` of the valid filtered occurrences `o` with their
 * determination `t`: what the image formats cut or label (a real box: four finite numbers).
 */
export function boxedDetectionsFrom(ctx: ExportQueryContext): Fragment {
  const { sql } = ctx;
  return sql`from detections d
    join occurrences o on o.id = d.occurrence_id
    join taxa t on t.id = o.determination_id
    where ${occurrencePredicate(ctx)} and ${realBox(sql, sql`d.bbox`)}`;
}

/** `split`, `split_by` and `split_seed` of `options`, defaulted (0.8/0.1/0.1, event, ""). */
export function splitOptions(options: ExportOptions): SplitOptions {
  return {
    split: options.split ?? { ...OPTION_DEFAULTS.split },
    split_by: options.split_by ?? OPTION_DEFAULTS.split_by,
    split_seed: options.split_seed ?? OPTION_DEFAULTS.split_seed,
  };
}

/**
 * The most image entries one archive writes (crops, or frames and their labels). The zip-archive
 * driver's checkpoint keeps every finished entry for the central directory, packed
 * (`registry/zip_entries_packed.ts`: 18.5 bytes an entry measured on 100,000 crop names with
 * random CRCs and sizes, `zip_entries_packed_test.ts`), and a checkpoint travels in a Temporal
 * heartbeat, whose payloads Temporal refuses above 2 MB: 50,000 entries stay under 1 MB
 * (about 0.92 MB), leaving room for the rest of the state.
 */
export const MAX_IMAGE_ENTRIES = 50_000;

function isFraction(value: unknown, max: number): boolean {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 && value <= max;
}

function isIntegerIn(value: unknown, min: number, max: number): boolean {
  return Number.isInteger(value) && (value as number) >= min && (value as number) <= max;
}

/**
 * Why the image options of `options` cannot be used (empty: they can), one message per option:
 * `split` (`{train, val, test}`, fractions summing to 1), `split_by`, `split_seed` (≤ 200
 * characters), `crop_padding` (0–10), `jpeg_quality` (integer 1–100), `image_max_side`
 * (integer 16–10000, pixels), `max_skipped_fraction` (0–1) and `per_taxon_limit` (integer ≥ 1). Which of them a format accepts
 * is its `acceptedOptions`; the API refuses the others before this check.
 */
export function imageOptionProblems(options: ExportOptions): Record<string, string> {
  const problems: Record<string, string> = {};
  const { split, split_by, split_seed, crop_padding, jpeg_quality, max_skipped_fraction } = options;
  if (split !== undefined) {
    const parts = [split?.train, split?.val, split?.test];
    const valid = typeof split === "object" && split !== null &&
      Object.keys(split).every((k) => ["train", "val", "test"].includes(k)) &&
      parts.every((f) => typeof f === "number" && f >= 0 && f <= 1) &&
      Math.abs(parts.reduce((a, b) => a + b, 0) - 1) < 1e-9;
    if (!valid) problems.split = "must be {train, val, test}, fractions summing to 1";
  }
  if (split_by !== undefined && !["event", "deployment", "capture"].includes(split_by)) {
    problems.split_by = "must be event, deployment or capture";
  }
  if (split_seed !== undefined && (typeof split_seed !== "string" || split_seed.length > 200)) {
    problems.split_seed = "must be text of at most 200 characters";
  }
  if (crop_padding !== undefined && !isFraction(crop_padding, 10)) {
    problems.crop_padding = "must be a number from 0 to 10";
  }
  if (jpeg_quality !== undefined && !isIntegerIn(jpeg_quality, 1, 100)) {
    problems.jpeg_quality = "must be an integer from 1 to 100";
  }
  if (options.image_max_side !== undefined && !isIntegerIn(options.image_max_side, 16, 10_000)) {
    problems.image_max_side = "must be an integer from 16 to 10000";
  }
  if (max_skipped_fraction !== undefined && !isFraction(max_skipped_fraction, 1)) {
    problems.max_skipped_fraction = "must be a number from 0 to 1";
  }
  const perTaxon = options.per_taxon_limit;
  if (perTaxon !== undefined && !isIntegerIn(perTaxon, 1, Number.MAX_SAFE_INTEGER)) {
    problems.per_taxon_limit = "must be an integer from 1";
  }
  return problems;
}

/** Throws {@link ExportRefusedError} naming every problem of `options` (none: returns). */
export function refuseImageOptionProblems(options: ExportOptions): void {
  const problems = Object.entries(imageOptionProblems(options));
  if (problems.length > 0) {
    throw new ExportRefusedError(
      `invalid options: ${problems.map(([k, v]) => `${k} ${v}`).join("; ")}`,
    );
  }
}

/**
 * 32-bit FNV-1a of the UTF-8 bytes of `text`, finished with MurmurHash3's `fmix32` (FNV-1a
 * alone barely moves its high bits for texts that differ only in their last characters, such
 * as `event:11` and `event:12`), as a fraction in [0, 1).
 */
function hashFraction(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}

/** The split of a unit by its hash alone (a unit outside {@link unitSplits}' list). */
function hashedSplit(
  unit: { kind: string; id: RecordId },
  options: Pick<SplitOptions, "split" | "split_seed">,
): "train" | "val" | "test" {
  const x = hashFraction(`${options.split_seed}/${unit.kind}:${unit.id}`);
  if (x < options.split.train) return "train";
  if (x < options.split.train + options.split.val) return "val";
  return "test";
}

/**
 * The split of each of `keys` (distinct `<kind>:<id>` unit keys): ordered by the hash of
 * `<seed>/<key>` (then by key), the first round(n × train) `train`, up to
 * round(n × (train + val)) `val`, the rest `test`.
 */
export function assignSplits(
  keys: readonly string[],
  options: Pick<SplitOptions, "split" | "split_seed">,
): Map<string, "train" | "val" | "test"> {
  const ordered = keys.map((key) => [key, hashFraction(`${options.split_seed}/${key}`)] as const)
    .sort(([a, x], [b, y]) => x - y || (a < b ? -1 : a > b ? 1 : 0));
  const n = ordered.length;
  const trainEnd = Math.round(n * options.split.train);
  const valEnd = Math.round(n * (options.split.train + options.split.val));
  const splits = new Map<string, "train" | "val" | "test">();
  ordered.forEach(([key], i) =>
    splits.set(key, i < trainEnd ? "train" : i < valEnd ? "val" : "test")
  );
  return splits;
}

/** The split of each unit of an export (see {@link unitSplits}). */
export type SplitOfUnit = (unit: { kind: string; id: RecordId }) => "train" | "val" | "test";

/**
 * The splits of every unit of an export, exact to one unit: the distinct `split_by` units of the
 * captures `s` of `capturesFrom` (a `from source_images s where …` fragment: the captures the
 * format writes), ordered by the hash of `<seed>/<kind>:<id>` (then by that text), the first
 * round(n × train) are `train`, up to round(n × (train + val)) `val`, the rest `test`. One
 * statement; every batch of one attempt reads the same snapshot, so every batch assigns the
 * same splits. A unit not in the list (none, within a snapshot) falls back to its hash alone.
 */
export async function unitSplits(
  ctx: ExportQueryContext,
  capturesFrom: Fragment,
  options: SplitOptions,
): Promise<SplitOfUnit> {
  const captures = await ctx.sql<
    { capture_id: RecordId; deployment_id: RecordId | null; event_id: RecordId | null }[]
  >`select s.id as capture_id, s.deployment_id, s.event_id ${capturesFrom}`;
  const keys = new Set<string>();
  for (const capture of captures) {
    const unit = splitUnit(capture, options.split_by);
    keys.add(`${unit.kind}:${unit.id}`);
  }
  const splits = assignSplits([...keys.keys()], options);
  return (unit) => splits.get(`${unit.kind}:${unit.id}`) ?? hashedSplit(unit, options);
}

/**
 * The split unit of a capture: its station (`deployment`), its session (`event`) or itself
 * (`capture`); a capture without a station or a session is its own unit.
 */
export function splitUnit(
  capture: { capture_id: RecordId; deployment_id: RecordId | null; event_id: RecordId | null },
  splitBy: SplitOptions["split_by"],
): { kind: string; id: RecordId } {
  if (splitBy === "deployment" && capture.deployment_id !== null) {
    return { kind: "deployment", id: capture.deployment_id };
  }
  if (splitBy === "event" && capture.event_id !== null) {
    return { kind: "event", id: capture.event_id };
  }
  return { kind: "capture", id: capture.capture_id };
}

// in a module of its own: the zip-archive driver reads it too, and this module imports the
// driver's types
export { skippedCount } from "./skipped_count.ts";

/**
 * Throws {@link ExportRefusedError} when more of `total` than `fraction` are in `skipped`
 * (`[id, reason]` pairs), its message naming the counts by reason: `too many crops left out:
 * 4 of 44 detections (more than max_skipped_fraction 0.05): 1 HTTP 404, …` for
 * `nouns = { left: "crops", of: "detections" }`.
 */
export function refuseTooManySkipped(
  skipped: readonly (readonly [RecordId, string])[],
  options: { total: number; fraction: number; nouns: { left: string; of: string } },
): void {
  const { total, fraction, nouns } = options;
  if (skipped.length <= fraction * total) return;
  const reasons = new Map<string, number>();
  for (const [, reason] of skipped) reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  throw new ExportRefusedError(
    `too many ${nouns.left} left out: ${skipped.length} of ${total} ${nouns.of} (more than ` +
      `max_skipped_fraction ${fraction}): ` +
      [...reasons].map(([reason, n]) => `${n} ${reason}`).join(", "),
    skipped.length,
  );
}

/**
 * Throws {@link ExportRefusedError} when a request of `total` items is more than `max`: the
 * archive's checkpoint keeps every entry it wrote, packed ({@link MAX_IMAGE_ENTRIES}).
 */
export function refuseAboveLimit(
  format: string,
  options: { total: number; max: number; noun: string },
): void {
  const { total, max, noun } = options;
  if (total <= max) return;
  throw new ExportRefusedError(
    `${format} holds at most ${max} ${noun} per export for now: this request has ` +
      `${total} (the archive's checkpoint lists every entry it wrote); narrow the filters ` +
      "(taxa, dates, stations, min_score)",
  );
}

/**
 * The most whole images one batch of an image phase reads, whatever its limit (`yolo_dataset`'s
 * frames, `detections_coco`'s `images/…` with `include_images`): a batch holds its images in
 * memory until they are written, and the first batch of an export is sized before any was
 * weighed (50 records), 50 frames of a 4000 × 3000 source being some 150 MB, 50 sources of up to
 * `IMAGE_FETCH_MAX_MB` each far more.
 */
export const MAX_IMAGES_PER_BATCH = 16;

/**
 * What became of one item of an image phase: a file for the archive (a JPEG, stored rather than
 * deflated again), or the reason it is left out.
 */
export type ImageOutcome =
  | { id: RecordId; name: string; data: Uint8Array }
  | { id: RecordId; reason: string };

/**
 * One batch of an image phase (a {@link MemberBatch} writing whole files) over `rows` (read in
 * keyset order): each row's outcome (`outcomeOf`: a file, or the reason it is left out), the
 * files in order, the skipped list of `state` grown by the failures (`[id, reason]`, kept with
 * `total` in the format's state), the cursor after the last row; the files count as records
 * when `filesAreRecords` (crops: yes; COCO images: no, its records are annotations). Throws like
 * {@link refuseTooManySkipped} when the list passes `fraction` of `total`.
 */
export function imageBatch<Row>(
  rows: readonly Row[],
  outcomeOf: (row: Row, index: number) => ImageOutcome,
  state: { total: number; skipped: readonly (readonly [RecordId, string])[] },
  rule: { fraction: number; nouns: { left: string; of: string }; filesAreRecords: boolean },
): MemberBatch {
  const files: ArchiveFile[] = [];
  const skipped = state.skipped.map(([id, reason]): [RecordId, string] => [id, reason]);
  let lastId: RecordId | null = null;
  rows.forEach((row, index) => {
    const outcome = outcomeOf(row, index);
    lastId = outcome.id;
    if ("reason" in outcome) skipped.push([outcome.id, outcome.reason]);
    else files.push({ name: outcome.name, data: outcome.data, compressed: true });
  });
  const { total } = state;
  refuseTooManySkipped(skipped, { total, fraction: rule.fraction, nouns: rule.nouns });
  return {
    data: "",
    files,
    rows: rows.length,
    ...(rule.filesAreRecords ? { records: files.length } : {}),
    lastId,
    extra: { total, skipped },
  };
}

/** The state of an image archive that lists what it left out (`[id, reason]` pairs). */
export interface SkippedState extends ZipArchiveState {
  skipped: [RecordId, string][];
}

/** `skipped.csv` of the formats that leave out whole captures: one row per capture. */
export const skippedCaptureColumns: readonly string[] = ["capture_id", "source_url", "reason"];

/**
 * The `skipped.csv` member of a format whose state lists skipped captures (`[capture id,
 * reason]`): {@link skippedCaptureColumns}, by capture id, with each capture's source URL.
 */
export const skippedCapturesMember: ZipMember = {
  name: "skipped.csv",
  async head(ctx, raw) {
    const { sql } = ctx;
    const { skipped } = raw as SkippedState;
    const reasons = new Map(skipped.map(([id, reason]) => [String(id), reason]));
    const rows = await sql<{ capture_id: RecordId; source_url: string | null }[]>`
      select s.id as capture_id,
        ${captureUrl(sql, sql`s.public_base_url`, sql`s.path`)} as source_url
      from source_images s where s.id = any(${[...reasons.keys()]}::bigint[])
      order by s.id`;
    const cells = rows.map((row) => ({ ...row, reason: reasons.get(String(row.capture_id)) }));
    return csvHeader(skippedCaptureColumns) + csvRecords(cells, skippedCaptureColumns);
  },
};

/**
 * The items of an image archive's export: `known` (the total in its state) or `count(ctx)`,
 * refused by {@link refuseAboveLimit} above the entries one archive holds (`images.maxCrops`
 * of the settings, default {@link MAX_IMAGE_ENTRIES}), naming `format` and its `noun`.
 */
export async function imageTotal(
  ctx: ExportQueryContext,
  known: number | null | undefined,
  count: (ctx: ExportQueryContext) => Promise<number>,
  names: { format: string; noun: string },
): Promise<number> {
  const total = known ?? await count(ctx);
  const max = ctx.settings?.images?.maxCrops ?? MAX_IMAGE_ENTRIES;
  refuseAboveLimit(names.format, { total, max, noun: names.noun });
  return total;
}
