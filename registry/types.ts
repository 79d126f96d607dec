/**
 * The exporter contract. An export format is one file in `registry/formats/` that builds an
 * {@link Exporter} and registers it in `registry/mod.ts`.
 */
import type { FormatSettings } from "../config/mod.ts";
import type { Sql } from "../db/client.ts";

/**
 * Filters an export may carry; each exporter declares which ones it accepts. They combine with
 * AND; `registry/filters.ts` turns each into one SQL predicate, `api/filters.ts` validates them.
 */
export interface ExportFilters {
  /** Occurrences with a detection in this capture set. */
  collection_id?: number;
  /** Occurrences of these deployments (stations). */
  deployment_ids?: number[];
  /** Occurrences of these events (sessions). */
  event_ids?: number[];
  /** Occurrences determined as this taxon or any of its descendants. */
  taxon_id?: number;
  /** Occurrences not determined as any of these taxa nor their descendants. */
  exclude_taxon_ids?: number[];
  /** `YYYY-MM-DD`: first appearance on or after this UTC date. */
  date_start?: string;
  /** `YYYY-MM-DD`: first appearance on or before this UTC date (inclusive). */
  date_end?: string;
  /** Determination score at least this (0–1). */
  min_score?: number;
  /** true: has a non-withdrawn identification; false: has none. */
  verified?: boolean;
  /** Apply the project's default score threshold and default include/exclude taxa. */
  apply_project_defaults?: boolean;
}

/**
 * Options an export may carry besides its filters; each exporter declares which ones it accepts
 * (`acceptedOptions`). They change how the file is encoded; only `per_taxon_limit` also narrows
 * which records it holds.
 */
export interface ExportOptions {
  /**
   * CSV formats: start the file with a UTF-8 byte order mark, so that Excel on Windows reads it
   * as UTF-8 (without it, `Écaille` shows as `Ã‰caille`). Default off: the file is then
   * byte-identical to one exported without the option.
   */
  excel_compatible?: boolean;
  /**
   * Formats that declare their columns (`ExporterInfo.columns`): write only these columns, a
   * non-empty subset of the format's columns in the format's order; the file is then exactly
   * the full file's projection (same dialect, quoting, formula guard, byte order mark). Absent:
   * every column. `registry/columns.ts` checks a request's list.
   */
  columns?: string[];
  /** Image formats: the fractions of the train, val and test splits (default 0.8, 0.1, 0.1). */
  split?: { train: number; val: number; test: number };
  /** Image formats: what one split unit is (default `event`; a crop's unit goes whole). */
  split_by?: "event" | "deployment" | "capture";
  /** Image formats: text mixed into the split hash (default ""). */
  split_seed?: string;
  /** Image formats: margin around each box, as a fraction of its width and height (default 0). */
  crop_padding?: number;
  /** Image formats: JPEG quality of the crops or frames, 1–100 (default 90). */
  jpeg_quality?: number;
  /** Image formats: most crops that may be left out before the export fails (default 0.05). */
  max_skipped_fraction?: number;
  /**
   * `crops_by_taxon`: keep only the N boxed detections of each taxon whose occurrences have the
   * highest determination score (ties by lower detection id), after every filter (an integer
   * from 1; default: all of them).
   */
  per_taxon_limit?: number;
  /**
   * `crops_by_taxon`, `yolo_dataset`: downscale each crop (after padding) or frame so that its
   * longest side is at most this many pixels, 16–10000 (never upscaled; default: the source
   * size). YOLO labels are fractions of the image, so they do not change.
   */
  image_max_side?: number;
  /**
   * `detections_coco`: a zip of `annotations.json` (the COCO document, `file_name` inside the
   * zip) and `images/<capture id>.jpg`, the source images (default false: the JSON document).
   */
  include_images?: boolean;
}

/** Names of the options (keys of {@link ExportOptions}). */
export type OptionKey = keyof ExportOptions;

/** Names of the filters (keys of {@link ExportFilters}). */
export type FilterKey = keyof ExportFilters;

/** What an exporter needs to query its records. */
export interface ExportQueryContext {
  sql: Sql;
  projectId: number;
  filters: ExportFilters;
  /** Time zone and URL bases of the occurrence formats; `defaultFormatSettings` when absent. */
  settings?: FormatSettings;
  /**
   * What the export's row says that its data card states (the archives write the card as
   * `README.md`, `registry/zip_archive.ts`); absent outside an export (format tests).
   */
  card?: ExportCardFacts;
  /** The export's options (image formats read theirs here); `{}` when absent. */
  options?: ExportOptions;
}

/** The facts of an export's request its archive's `README.md` states (fixed for its life). */
export interface ExportCardFacts {
  exportId: number;
  filtersDisplay: Record<string, unknown>;
  requestedBy: string | null;
  createdAt: string;
  /** The export's download route (`<PUBLIC_BASE_URL>/api/v2/exports/<id>/download/`). */
  downloadUrl: string;
}

/**
 * A record id (a `bigint` column) used as a keyset cursor: a JS number when it is a safe
 * integer, else its exact decimal text (see `parseBigint` in `db/client.ts`). Cursors are
 * written with {@link recordId}, never through `Number()`, which rounds ids past 2^53 so that a
 * batch would skip the record after a rounded cursor.
 */
export type RecordId = number | string;

/**
 * A bigint column value as a cursor, exactly: a safe integer stays a number (the checkpoints of
 * ordinary ids keep their shape), anything past 2^53 − 1 is its decimal text.
 */
export function recordId(value: unknown): RecordId {
  if (typeof value === "number" && Number.isSafeInteger(value)) return value;
  const text = typeof value === "bigint" ? value.toString() : value;
  if (typeof text !== "string" || !/^-?[0-9]+$/.test(text)) {
    throw new Error(`not an integer id: ${String(value)}`);
  }
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : text;
}

/** Where a batch of a record format starts, and how many records it may hold. */
export interface BatchCursor {
  /** The batch holds records with id > afterId (null: from the first record). */
  afterId: RecordId | null;
  limit: number;
  /** Records of the export before this batch (JSON places its `,` separators by it). */
  recordsBefore: number;
  /** Formats that shard: only records with id ≤ untilId (absent or null: no upper bound). */
  untilId?: RecordId | null;
}

/** One batch of encoded records, in id order. */
export interface EncodedBatch {
  /** Records in this batch (0 means the export has no more records). */
  records: number;
  /** Id of the last record in the batch: the keyset cursor for the next one. */
  lastId: RecordId | null;
  /** The encoded bytes of these records, ready to append to the file. */
  text: string;
}

/** JSON-serializable state of a stream (lives in heartbeat checkpoints). */
export type StreamState =
  | null
  | boolean
  | number
  | string
  | StreamState[]
  | { [key: string]: StreamState };

/**
 * The kinds of impossible source times (issue 23, `registry/time_sql.ts`): a session whose end
 * precedes its start (its duration is below zero), and a capture's, detection's or
 * occurrence's time more than a day outside its session.
 */
export type ImpossibleTimeKind =
  | "session_interval"
  | "capture_time"
  | "detection_time"
  | "occurrence_time";

/** How many values of one {@link ImpossibleTimeKind} an export met, and what it did with them. */
export interface ImpossibleTimeCount {
  kind: ImpossibleTimeKind;
  /** Sessions, captures, detections or occurrences of the export (not cells). */
  count: number;
  /** What the format does with them: `eventDate and sampleSizeValue left empty`. */
  effect: string;
}

/**
 * What one column (CSV, Parquet), member file (zip archives) or top-level member (JSON) of a
 * format's file means: the one definition the data card (`registry/datacard.ts`) and the column
 * lists of docs/formats.md (generated by `deno task docs:formats`) are made from (STYLE.md,
 * "Formats as declarations": one column list feeds the README, the data card and the docs).
 */
export interface ContentEntry {
  /** The column's header, the member's file name, or the JSON key. */
  name: string;
  /** What it holds, e.g. `the detection's time, ISO 8601 with the station's offset`. */
  description: string;
  /** The unit, when it has one: `pixels`, `seconds`, `0–1`, `bytes`, `WGS84 degrees`. */
  unit?: string;
  /** Archive members that are tables: their header, in file order. */
  columns?: readonly string[];
}

/** What a column means, as a format declares it beside its column list. */
export type ColumnMeaning = Omit<ContentEntry, "name" | "columns">;

/** What every export format declares. */
export interface ExporterInfo {
  key: string;
  label: string;
  description: string;
  /** File extension without the dot. */
  extension: string;
  contentType: string;
  acceptedFilters: readonly FilterKey[];
  /** The {@link ExportOptions} the format accepts (none when absent). */
  acceptedOptions?: readonly OptionKey[];
  /**
   * True for a format that fetches source images (`SOURCE_IMAGE_HOSTS`): the allowed hosts are
   * then part of its reuse key (`registry/settings_key.ts`).
   */
  fetchesImages?: boolean;
  /** Why options the format accepts have unusable values (option → message; empty: none). */
  optionProblems?(options: ExportOptions): Record<string, string>;
  /**
   * The revision of the format's bytes (1 when absent): raise it in the same commit as any change
   * to what the format writes for the same data, so that no earlier file is reused for it
   * (`registry/settings_key.ts`).
   */
  revision?: number;
  /**
   * Formats that accept the `columns` option: the file's columns in file order (the header).
   * Absent on formats that cannot project their rows.
   */
  columns?: readonly string[];
  /**
   * What the file holds, in file order: one entry per column (CSV, Parquet), per member file
   * (zip archives) or per top-level JSON member; the data card and docs/formats.md list it.
   */
  contents?: readonly ContentEntry[];
  /**
   * Present with {@link ExporterInfo.columns}: the same format writing only `chosen` (a checked
   * subset in file order, `registry/columns.ts`), each row the full row's projection.
   */
  withColumns?(chosen: readonly string[]): Exporter;
  /**
   * The format as an export's `options` make it, when they change its container (its
   * extension, content type, contents): `detections_coco` with `include_images` is a zip.
   * Absent, or `this` returned: the options do not. `registry/mod.ts` `exporterFor` applies it.
   */
  withOptions?(options: ExportOptions): Exporter;
  /** Number of records the export will contain (one statement). */
  count(ctx: ExportQueryContext): Promise<number>;
  /**
   * Present on formats that write session intervals, durations or capture / detection /
   * occurrence times: how many impossible ones this export meets, per kind it writes (one
   * statement; zero counts included). The job log reports them (`registry/impossible_times.ts`).
   */
  impossibleTimes?(ctx: ExportQueryContext): Promise<ImpossibleTimeCount[]>;
}

/**
 * A format whose file is a prologue, records in id order, and an epilogue (CSV, JSON, NDJSON).
 * The pipeline adapts it to a {@link StreamExporter} (see `registry/stream.ts`).
 */
export interface RecordExporter extends ExporterInfo {
  kind?: "records";
  /** Bytes before the first record (CSV header, `[`). */
  prologue(): string;
  /**
   * The next batch after `afterId` (null: from the start), at most `limit` records, encoded.
   * `recordsBefore` lets formats place separators (`,` between JSON array items).
   * Must run a constant number of statements, whatever the batch size. A format that declares
   * {@link RecordExporter.shardBounds} also honours `untilId`: only records with id ≤ `untilId`
   * (none past it; absent or null: no upper bound).
   */
  fetchBatch(ctx: ExportQueryContext, cursor: BatchCursor): Promise<EncodedBatch>;
  /** Bytes after the last record (`]`). */
  epilogue(): string;
  /**
   * Present on formats that can be exported in shards (docs/architecture.md, Sharded exports): the
   * ids of the `every`-th, 2·`every`-th, … record of the export in id order (one statement, the
   * very predicate of the export), ascending. Shard k then holds the records with
   * `ids[k-1] < id ≤ ids[k]`; the bytes of a record never depend on the batch or shard it is in,
   * only on how many records precede it (`recordsBefore`).
   */
  shardBounds?(ctx: ExportQueryContext, every: number): Promise<RecordId[]>;
}

/** One chunk of a stream: bytes, how many records they hold, the state after them. */
export interface StreamChunk {
  data: string | Uint8Array;
  records: number;
  /**
   * The rows the chunk's `limit` counted, when they are not the exported records (the stations
   * or captures table of an archive, the images of a COCO file); defaults to `records`. The
   * export sizes its next batch by bytes per row (activities/batch_size.ts): without it, a phase
   * that exports no records would keep the first batch's limit of 50 rows to its end.
   */
  rows?: number;
  /**
   * The bytes the chunk weighed before compression (a zip member's rows, which the worker held
   * uncompressed); defaults to the length of `data`. The export sizes its next batch by them.
   */
  bytes?: number;
  /**
   * True when the next batch reads another table (a zip member's first chunk) whose rows may
   * weigh ten times the last table's: the export sizes that batch as a first batch
   * (activities/batch_size.ts), then by its own weight.
   */
  newTable?: boolean;
  state: StreamState;
  /** True when this chunk ends the file. */
  done: boolean;
}

/**
 * The general form of a format (multi-file archives such as a Darwin Core Archive): a resumable
 * stream of chunks. Given the state after chunk N, `next` must produce exactly the bytes that
 * follow chunk N, so an export can resume from any durable checkpoint.
 */
export interface StreamExporter extends ExporterInfo {
  kind: "stream";
  initialState(ctx: ExportQueryContext): StreamState;
  /** The next chunk; at most about `limit` records, a constant number of statements. */
  next(
    ctx: ExportQueryContext,
    state: StreamState,
    options: StreamOptions,
  ): Promise<StreamChunk>;
  /**
   * True for a stream that keeps part of its state in a {@link SideStore} when given one
   * (`occurrences_parquet`: its row group metadata, which would outgrow a heartbeat). The export
   * activities then give it one under the export's `<file_uuid>/shards/meta/` and remove it
   * once the file is published.
   */
  sideObjects?: boolean;
  /**
   * Present, with {@link StreamExporter.shard}, on stream formats that can be exported in shards
   * (docs/architecture.md, Sharded exports), cut by their first cursor key (`detections_csv`: by
   * occurrence id): the key of the `every`-th, 2·`every`-th, … record in file order, each once,
   * ascending, with the records of the export whose key is ≤ it (one statement, the very
   * predicate of the export). Shard k holds the records with `bounds[k-1].id < key ≤ bounds[k].id`.
   */
  shardBounds?(
    ctx: ExportQueryContext,
    every: number,
    options?: { maxRecords: number },
  ): Promise<ShardBound[]>;
  /**
   * The stream of one shard: the records whose first cursor key is in
   * `(range.afterId, range.untilId]`, the file's start only when `range.first`, its end only
   * when `range.last`; the shards' bytes concatenated are the unsharded file's. `earlier`: the
   * side stores of the units `range.reads` names, in that order (an archive's unit that starts
   * from what they left, {@link ShardUnit.reads}).
   */
  shard?(range: ShardRange, earlier?: readonly SideStore[]): StreamExporter;
  /**
   * Present on shardable streams whose file ends with an index of the whole file (Parquet's
   * footer): the bytes after the last shard, made from what each shard left in its side store
   * (`shards[k].bytes`: the size of shard k's object, so the offsets of shard k's content in
   * the file are shifted by the sizes of the shards before it). Deterministic: the same shards
   * give the same bytes, so a retried compose writes them again unchanged. Throws when a
   * shard's side objects are missing.
   */
  shardTail?(shards: { bytes: number; side: SideStore }[]): Promise<Uint8Array>;
  /**
   * True when a shard's rows refer to rows another shard writes (an archive's occurrences to
   * its events, COCO's annotations to its images): the file holds together only when every
   * shard read the data the count read. A shard that finds the data changed then fails
   * (`ShardSnapshotChanged`) and the workflow exports the file unsharded, from one snapshot.
   */
  shardsReferAcross?: boolean;
  /**
   * Present, instead of {@link StreamExporter.shardBounds}, on archives written member by member
   * (`registry/zip_archive.ts`: `dwca`): the export's shards as units, each one table member's
   * keys in a range (a member without bounds is one unit), in file order; each unit is exported
   * by {@link StreamExporter.shard} with its `member`. `every` is the planner's records a shard,
   * `wanted` the most ranges it wants of a member, `maxRecords` its `EXPORT_BATCH_SIZE`. No
   * unit, or no member cut in two or more: export unsharded.
   */
  shardUnits?(
    ctx: ExportQueryContext,
    plan: { every: number; wanted: number; totalRecords: number; maxRecords: number },
  ): Promise<ShardUnit[]>;
  /**
   * Present with {@link StreamExporter.shardUnits}: the file as a sequence of pieces, each the
   * object of unit `k` (a number: its index) or bytes made here (headers, the parts no unit
   * writes, the index at the end), from what each unit left in its side store. Deterministic:
   * the same units give the same pieces. Throws when a unit's side objects are missing.
   */
  shardLayout?(
    ctx: ExportQueryContext,
    units: { bytes: number; side: SideStore }[],
  ): Promise<(number | Uint8Array)[]>;
}

/** A unit of a sharded archive: see {@link StreamExporter.shardUnits}. */
export interface ShardUnit {
  /** The member (index in the archive's declaration, data card included) the unit writes. */
  member: number;
  /** Keys of the member > afterId (null: from its first). */
  afterId: RecordId | null;
  /** … and ≤ untilId (null: to its last). */
  untilId: RecordId | null;
  /** Records of the export the unit holds (0 for a member whose rows are not the records). */
  records: number;
  /**
   * Indices (in the list of units) of the units whose values this unit starts from, all before
   * it: it runs once they ended (`detections_coco` with `include_images`: `annotations.json`
   * leaves out the images its image units skipped). Absent: it runs at once.
   */
  reads?: number[];
}

/** What a stream's `next` is given besides its state. */
export interface StreamOptions {
  /** At most about this many records (the export sizes it by bytes: activities/batch_size.ts). */
  limit: number;
  /**
   * The export's `EXPORT_BATCH_SIZE` (absent: `limit`): a format whose batch boundaries are
   * visible in the file (Parquet's row groups) cuts its batches by it instead of by the
   * byte-sized `limit`, so that the boundaries do not depend on the bytes of earlier batches
   * and a shard can reproduce them.
   */
  maxRecords?: number;
  /** Where a {@link StreamExporter.sideObjects} stream keeps its side objects. */
  side?: SideStore;
}

/**
 * Small named objects a stream keeps beside its file (one storage prefix per stream, which is
 * the export's own). A stream writes an object before it returns the chunk that needs it, so a
 * durable checkpoint never names an object that is not stored; a retried attempt rewrites the
 * same name with the same bytes, and objects a crashed attempt wrote past its last checkpoint
 * are overwritten or never read.
 */
export interface SideStore {
  /** Stores `data` under `name` (replacing it). */
  put(name: string, data: Uint8Array): Promise<void>;
  /** The bytes stored under `name`, or null. */
  get(name: string): Promise<Uint8Array | null>;
}

/** A shard boundary of a stream format: see {@link StreamExporter.shardBounds}. */
export interface ShardBound {
  /** The last key of the shard. */
  id: RecordId;
  /** Records of the export up to and including the shard (key ≤ `id`). */
  records: number;
}

/** The part of an export one shard writes (`registry/stream.ts`, `shardStream`). */
export interface ShardRange {
  /** Records with id (a stream's first cursor key) > afterId (null: from the first record). */
  afterId: RecordId | null;
  /** … and id ≤ untilId (null: to the last record). */
  untilId: RecordId | null;
  /** Records of the export before this shard (JSON places its `,` separators by it). */
  recordsBefore: number;
  /** The first shard writes the prologue (CSV header, `[`). */
  first: boolean;
  /** The last shard writes the epilogue (`]`). */
  last: boolean;
  /**
   * The planner's `EXPORT_BATCH_SIZE` (absent: the worker's): the batch size of a format whose
   * batch boundaries are visible in the file (Parquet's row groups), so every shard cuts them
   * alike whatever worker runs it.
   */
  batchRecords?: number;
  /** An archive's unit ({@link StreamExporter.shardUnits}): the member it writes. */
  member?: number;
  /** An archive's unit: the units it starts from ({@link ShardUnit.reads}). */
  reads?: number[];
}

/** A registered export format. */
export type Exporter = RecordExporter | StreamExporter;

/**
 * Thrown by a format when the data cannot make its file (more source images left out than the
 * export allows): the export fails with this message and is not retried.
 */
export class ExportRefusedError extends Error {
  override name = "ExportRefusedError";
  /**
   * @param skippedCount the images (crops, frames) left out when the refusal is about them
   *   (`refuseTooManySkipped`): the export's `skipped_count`, which the batch that refuses
   *   reports no other way
   */
  constructor(message: string, readonly skippedCount?: number) {
    super(message);
  }
}
