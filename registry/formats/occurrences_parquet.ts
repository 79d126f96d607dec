// Long because Parquet needs a typed schema and row groups resumable from a JSON checkpoint.
/**
 * `occurrences_parquet`: the simple CSV's 28 columns (`occurrences_simple_csv`, same names, same
 * order, same rows) with real Parquet types instead of Python text forms: INT64 ids and counts,
 * DOUBLE scores and sizes, BOOLEAN flags, STRING (UTF8) text, TIMESTAMP(isAdjustedToUTC=true,
 * MICROS) instants, the bbox as a LIST of DOUBLE and the duration as INT64 microseconds.
 *
 * File layout (Apache Parquet format spec, "File Format"): `PAR1`, one row group per batch
 * (keyset on occurrence id, one statement per batch), then the footer (`FileMetaData`, Thrift
 * compact protocol: schema, `num_rows`, every `RowGroup` with its `ColumnChunk` offsets, sizes
 * and statistics), its 4-byte little-endian length and `PAR1`. A column chunk's own bytes (page
 * headers and pages) hold no file offset; only the footer's `ColumnChunk.file_offset` and
 * `ColumnMetaData.data_page_offset` / `dictionary_page_offset` (and the index and bloom filter
 * offsets, unused here) are absolute.
 *
 * Row groups: every one holds `EXPORT_BATCH_SIZE` rows (the stream's `maxRecords`, fixed in the
 * state at the first batch) but the last, whatever the byte-sized batch limit says: the
 * boundaries are then a function of the rows alone (row g·B+1 … (g+1)·B), so shards planned on
 * multiples of B cut the same groups ({@link occurrencesParquet} `shardBounds`). Revision 2:
 * revision 1 sized its first group 50 rows and the others by bytes.
 *
 * Written with `hyparquet-writer` (`ParquetWriter`): each batch is encoded by a fresh writer
 * whose byte offset is set to where the stream stands, and its `RowGroup` metadata is kept for
 * the footer: in a side object per group (`g<nnnnnn>.json`, `SideStore`, when the export gives
 * the stream one: the activities do) or, without one (and in checkpoints written before side
 * objects, which carry `rowGroups`), in the stream state. The heartbeat checkpoint then holds
 * the count of groups, not ~5.6 KB of metadata per group (Temporal refuses details over 2 MB).
 * The footer is written by a last writer handed every row group. No byte of the file is read
 * back, and an export resumed after kill -9 writes identical bytes. Offset and column indexes
 * are off (they would live between the last row group and the footer and point at pages);
 * min/max statistics are kept in the column chunk metadata of the numeric, boolean and
 * timestamp columns (text columns only get null counts: see {@link storeRowGroups}).
 *
 * Shards (docs/architecture.md, Sharded exports): shard k writes its row groups only (shard 0
 * also the leading `PAR1`), with offsets from its own start, each group's metadata in its side
 * store and, at its end, `end.json` (its group count and bytes). `shardTail` then makes the
 * footer: every shard's groups shifted by the sizes of the shards before it, the row counts
 * summed; the shards and the footer concatenated are the unsharded file, byte for byte.
 */
import { ByteWriter, ParquetWriter } from "hyparquet-writer";
import { columnContents } from "../keyset_csv.ts";
import { occurrenceCsvColumns, occurrenceCsvMeanings } from "./occurrences_simple_csv.ts";
import {
  countOccurrences,
  occurrenceFilterKeys,
  occurrencePredicate,
  occurrenceShardBounds,
} from "../filters.ts";
import {
  bestDetection,
  bestPrediction,
  captureUrl,
  cropUrl,
  detectionStats,
  eventName,
  type Fragment,
  occurrenceBatch,
  settingsOf,
} from "../occurrence_sql.ts";
import { countImpossibleTimes, sessionTime, withinSession } from "../time_sql.ts";
import {
  type ExportQueryContext,
  type ImpossibleTimeCount,
  type RecordId,
  recordId,
  type ShardBound,
  type ShardRange,
  type SideStore,
  type StreamChunk,
  type StreamExporter,
  type StreamOptions,
  type StreamState,
} from "../types.ts";
import { finiteOrNull } from "../numeric_sql.ts";

/** A Parquet schema element (`SchemaElement` in the Parquet Thrift definition). */
type SchemaElement = ConstructorParameters<typeof ParquetWriter>[0]["schema"][number];

/** How a column is typed and how its value is taken from a row. */
type ColumnKind = "int64" | "double" | "boolean" | "string" | "timestamp" | "doubleList";

/** The columns, in file order: the simple CSV's names, each with its Parquet type. */
export const parquetColumns: readonly { name: string; kind: ColumnKind }[] = [
  { name: "id", kind: "int64" },
  { name: "event_id", kind: "int64" },
  { name: "event_name", kind: "string" },
  { name: "deployment_id", kind: "int64" },
  { name: "deployment_name", kind: "string" },
  { name: "project_id", kind: "int64" },
  { name: "project_name", kind: "string" },
  { name: "determination_id", kind: "int64" },
  { name: "determination_name", kind: "string" },
  { name: "determination_score", kind: "double" },
  { name: "verification_status", kind: "boolean" },
  { name: "best_machine_prediction_name", kind: "string" },
  { name: "best_machine_prediction_algorithm", kind: "string" },
  { name: "best_machine_prediction_score", kind: "double" },
  { name: "verified_by", kind: "string" },
  { name: "participant_count", kind: "int64" },
  { name: "agreed_with_algorithm", kind: "string" },
  { name: "agreed_with_user", kind: "string" },
  { name: "determination_matches_machine_prediction", kind: "boolean" },
  { name: "detections_count", kind: "int64" },
  { name: "first_appearance_timestamp", kind: "timestamp" },
  { name: "last_appearance_timestamp", kind: "timestamp" },
  /** microseconds */
  { name: "duration", kind: "int64" },
  { name: "best_detection_url", kind: "string" },
  { name: "best_detection_bbox", kind: "doubleList" },
  { name: "best_detection_width", kind: "double" },
  { name: "best_detection_height", kind: "double" },
  { name: "best_detection_capture_url", kind: "string" },
];

/** The Parquet schema: a root group, then one element per column (three for the bbox list). */
export function parquetSchema(): SchemaElement[] {
  const schema: SchemaElement[] = [{ name: "schema", num_children: parquetColumns.length }];
  for (const { name, kind } of parquetColumns) {
    const repetition_type = name === "id" ? "REQUIRED" : "OPTIONAL";
    if (kind === "int64") schema.push({ name, type: "INT64", repetition_type });
    else if (kind === "double") schema.push({ name, type: "DOUBLE", repetition_type });
    else if (kind === "boolean") schema.push({ name, type: "BOOLEAN", repetition_type });
    else if (kind === "string") {
      schema.push({
        name,
        type: "BYTE_ARRAY",
        repetition_type,
        converted_type: "UTF8",
        logical_type: { type: "STRING" },
      });
    } else if (kind === "timestamp") {
      schema.push({
        name,
        type: "INT64",
        repetition_type,
        converted_type: "TIMESTAMP_MICROS",
        logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MICROS" },
      });
    } else {
      // the three-level LIST of the Parquet LogicalTypes spec
      schema.push(
        { name, repetition_type, num_children: 1, converted_type: "LIST" },
        { name: "list", repetition_type: "REPEATED", num_children: 1 },
        { name: "element", type: "DOUBLE", repetition_type: "REQUIRED" },
      );
    }
  }
  return schema;
}

/** The row group metadata of the library, as it lives in a writer (`RowGroup`). */
type RowGroup = ParquetWriter["row_groups"][number];

/**
 * Short names of the `RowGroup` / `ColumnChunk` / `ColumnMetaData` / `Statistics` fields (the
 * Parquet Thrift definition's names, as the library spells them), so that the checkpoint, which
 * holds every row group written so far, stays small (Temporal refuses heartbeat details over
 * 2 MB): about 3 KB per row group of the 28 columns.
 */
const ALIASES: Record<string, string> = {
  columns: "C",
  meta_data: "m",
  type: "t",
  encodings: "e",
  path_in_schema: "p",
  codec: "c",
  num_values: "n",
  total_compressed_size: "tc",
  total_uncompressed_size: "tu",
  data_page_offset: "dp",
  dictionary_page_offset: "dd",
  statistics: "s",
  min_value: "lo",
  max_value: "hi",
  null_count: "nc",
  nan_count: "nn",
  file_offset: "fo",
  total_byte_size: "tb",
  num_rows: "nr",
};
const NAMES = Object.fromEntries(Object.entries(ALIASES).map(([k, v]) => [v, k]));

/**
 * Row group metadata as compact JSON for the checkpoint: short keys ({@link ALIASES}), bigints as
 * `#<digits>`, byte arrays as `$<base64>`, dates as `@<ISO>`, non-finite numbers and -0 as `!<text>`
 * (text starting with one of `#$@!~` gets a `~`). Left out, for size: `encoding_stats` (optional
 * in the Parquet spec) and the min/max statistics of BYTE_ARRAY (text) columns, whose values can
 * be long URLs; their null counts stay. {@link loadRowGroups} restores the rest exactly.
 */
export function storeRowGroups(groups: RowGroup[]): StreamState {
  const pack = (value: unknown): StreamState => {
    if (value === undefined || value === null) return null;
    if (typeof value === "bigint") return "#" + value.toString();
    if (value instanceof Uint8Array) return "$" + btoa(String.fromCharCode(...value));
    if (value instanceof Date) return "@" + value.toISOString();
    if (typeof value === "number") {
      // JSON has no -0 (a double statistic can be one): tagged like the non-finite numbers
      if (Object.is(value, -0)) return "!-0";
      return Number.isFinite(value) ? value : "!" + String(value);
    }
    if (typeof value === "string") return /^[#$@!~]/.test(value) ? "~" + value : value;
    if (typeof value === "boolean") return value;
    if (Array.isArray(value)) return value.map(pack);
    const out: Record<string, StreamState> = {};
    const record = value as Record<string, unknown>;
    for (const [key, item] of Object.entries(record)) {
      if (item === undefined || key === "encoding_stats") continue;
      if ((key === "min_value" || key === "max_value") && typeof item === "string") continue;
      out[ALIASES[key] ?? key] = pack(item);
    }
    return out;
  };
  return groups.map(pack);
}

/** The inverse of {@link storeRowGroups}. */
export function loadRowGroups(state: StreamState): RowGroup[] {
  const unpack = (value: StreamState): unknown => {
    if (typeof value === "string") {
      const tag = value[0];
      const rest = value.slice(1);
      if (tag === "#") return BigInt(rest);
      if (tag === "$") return Uint8Array.from(atob(rest), (c) => c.charCodeAt(0));
      if (tag === "@") return new Date(rest);
      if (tag === "!") return Number(rest);
      if (tag === "~") return rest;
      return value;
    }
    if (Array.isArray(value)) return value.map(unpack);
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(
        Object.entries(value).map(([key, item]) => [NAMES[key] ?? key, unpack(item)]),
      );
    }
    return value;
  };
  return (state as StreamState[]).map(unpack) as RowGroup[];
}

interface ParquetState {
  [key: string]: StreamState;
  /** `magic`: nothing written yet; `rows`: row groups; `done`. */
  phase: "magic" | "rows" | "done";
  afterId: RecordId | null;
  /**
   * Bytes of the stream written so far: of the file (the next column chunk's absolute offset),
   * or of the shard (the offset from the shard's start).
   */
  offset: number;
  /**
   * Every row group written so far ({@link storeRowGroups}), when they live in the state: a
   * stream without side store, or a checkpoint written before side objects (resumed as it was);
   * null when they are in the side store.
   */
  rowGroups: StreamState;
  /** Row groups written so far (in a side store: `g000000.json` …; absent in old checkpoints). */
  groups: number;
  /** Rows of every row group but the last (fixed at the first batch; null: not yet). */
  groupRows: number | null;
}

/** The side object of row group `index` of a stream. */
function groupName(index: number): string {
  return `g${String(index).padStart(6, "0")}.json`;
}

/** The side object a shard writes when it ends: `{groups, bytes}`. */
const SHARD_END = "end.json";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Row groups `0 … count−1` of a side store, in order (16 reads at a time). */
async function loadSideGroups(side: SideStore, count: number): Promise<RowGroup[]> {
  const groups: RowGroup[] = [];
  for (let start = 0; start < count; start += 16) {
    const names = Array.from({ length: Math.min(16, count - start) }, (_, i) => start + i);
    const read = await Promise.all(names.map(async (index) => {
      const bytes = await side.get(groupName(index));
      if (!bytes) throw new Error(`parquet row group ${index} is missing from the side store`);
      return loadRowGroups([JSON.parse(decoder.decode(bytes))])[0];
    }));
    groups.push(...read);
  }
  return groups;
}

/**
 * The row group moved `delta` bytes further into the file: every absolute offset of the
 * Parquet Thrift definition's `RowGroup` (`file_offset`) and `ColumnChunk` (`file_offset`,
 * `offset_index_offset`, `column_index_offset`, and `ColumnMetaData.data_page_offset`,
 * `index_page_offset`, `dictionary_page_offset`, `bloom_filter_offset`) that is present.
 */
function shifted(group: RowGroup, delta: number): RowGroup {
  const d = BigInt(delta);
  const move = <T extends Record<string, unknown>>(record: T, keys: string[]): T => {
    const out: Record<string, unknown> = { ...record };
    for (const key of keys) {
      if (typeof out[key] === "bigint") out[key] = (out[key] as bigint) + d;
      else if (typeof out[key] === "number") out[key] = (out[key] as number) + delta;
    }
    return out as T;
  };
  const moved = move(group as unknown as Record<string, unknown>, [
    "file_offset",
  ]) as unknown as RowGroup;
  moved.columns = group.columns.map((chunk) => {
    const out = move(chunk as unknown as Record<string, unknown>, [
      "file_offset",
      "offset_index_offset",
      "column_index_offset",
    ]) as unknown as typeof chunk;
    if (chunk.meta_data) {
      out.meta_data = move(chunk.meta_data as unknown as Record<string, unknown>, [
        "data_page_offset",
        "index_page_offset",
        "dictionary_page_offset",
        "bloom_filter_offset",
      ]) as unknown as typeof chunk.meta_data;
    }
    return out;
  });
  return moved;
}

const MAGIC = new Uint8Array([0x50, 0x41, 0x52, 0x31]); // "PAR1"

/**
 * A writer positioned at byte `offset` of the file: the constructor's `PAR1` is dropped from
 * its buffer, so it produces only what follows.
 */
function writerAt(offset: number, rowGroups: RowGroup[] = []): {
  parquet: ParquetWriter;
  bytes: ByteWriter;
} {
  const bytes = new ByteWriter();
  const parquet = new ParquetWriter({
    writer: bytes,
    schema: parquetSchema(),
    codec: "SNAPPY",
    statistics: true,
    createdBy: "ami-exports (hyparquet-writer 0.17.0)",
  });
  bytes.index = 0;
  bytes.offset = offset;
  parquet.row_groups = rowGroups;
  parquet.num_rows = rowGroups.reduce((n, g) => n + g.num_rows, 0n);
  return { parquet, bytes };
}

/** A copy of what the writer holds (its buffer is reused). */
function taken(bytes: ByteWriter): Uint8Array {
  return bytes.getBytes().slice();
}

/**
 * Occurrences of the export whose first or last detection is more than a day outside their
 * session (issue 23).
 */
async function impossibleTimes(ctx: ExportQueryContext): Promise<ImpossibleTimeCount[]> {
  const { sql } = ctx;
  const within = (t: Fragment): Fragment => withinSession(sql, t, sql`o.event_id`);
  return await countImpossibleTimes(sql, [{
    kind: "occurrence_time",
    effect: "that first_appearance_timestamp or last_appearance_timestamp null, and duration null",
    universe: "occurrences",
    rows: sql`select not (${within(sql`ds.first_timestamp`)} and ${
      within(sql`ds.last_timestamp`)
    }) as bad
      from occurrences o ${detectionStats(sql)} where ${occurrencePredicate(ctx)}`,
  }], ctx.projectId);
}

/** The batch's rows with typed values: ids and counts as text (exact), instants in µs. */
async function batchRows(
  ctx: ExportQueryContext,
  cursor: { afterId: RecordId | null; limit: number; untilId: RecordId | null },
): Promise<Record<string, unknown>[]> {
  const { sql } = ctx;
  const settings = settingsOf(ctx);
  const micros = (v: Fragment): Fragment => sql`(extract(epoch from ${v}) * 1000000)::bigint::text`;
  const first = sessionTime(sql, sql`ds.first_timestamp`, sql`o.event_id`);
  const last = sessionTime(sql, sql`ds.last_timestamp`, sql`o.event_id`);
  // the columns and joins of occurrences_simple_csv (antenna-compat §5.2), typed
  return await sql`
    ${occurrenceBatch(ctx, cursor)}
    select
      o.id::text as id,
      o.event_id::text as event_id,
      ${eventName(sql, settings)} as event_name,
      o.deployment_id::text as deployment_id,
      d.name as deployment_name,
      o.project_id::text as project_id,
      p.name as project_name,
      o.determination_id::text as determination_id,
      t.name as determination_name,
      -- NaN and ±Infinity are no scores: null, as in the simple CSV (issue 12, kind 4)
      ${finiteOrNull(sql, sql`o.determination_score`)} as determination_score,
      pc.participant_count > 0 as verification_status,
      bp.taxon_name as best_machine_prediction_name,
      bp.algorithm_name as best_machine_prediction_algorithm,
      bp.score as best_machine_prediction_score,
      li.user_name as verified_by,
      pc.participant_count::text as participant_count,
      li.agreed_with_algorithm,
      li.agreed_with_user,
      case when bp.classification_id is not null
        then coalesce(o.determination_id = bp.taxon_id, false) end
        as determination_matches_machine_prediction,
      ds.detections_count::text as detections_count,
      -- null when more than a day outside the occurrence's session, and then no duration
      -- either (issue 23, time_sql.ts); the simple CSV keeps the original's values
      ${micros(first)} as first_appearance_timestamp,
      ${micros(last)} as last_appearance_timestamp,
      case when ${first} is not null and ${last} is not null then ds.duration_us::text end
        as duration,
      ${cropUrl(sql, settings.mediaUrl, sql`bx.crop_path`)} as best_detection_url,
      bx.bbox as best_detection_bbox,
      abs(bx.bbox[3] - bx.bbox[1]) as best_detection_width,
      abs(bx.bbox[4] - bx.bbox[2]) as best_detection_height,
      ${captureUrl(sql, sql`bx.public_base_url`, sql`bx.capture_path`)}
        as best_detection_capture_url
    from batch
    join occurrences o on o.id = batch.id
    join projects p on p.id = o.project_id
    left join events e on e.id = o.event_id
    left join deployments ed on ed.id = e.deployment_id
    left join deployments d on d.id = o.deployment_id
    left join taxa t on t.id = o.determination_id
    ${detectionStats(sql)}
    ${bestPrediction(sql)}
    ${bestDetection(sql)}
    left join lateral (
      select
        li_u.name as user_name,
        li_a.name as agreed_with_algorithm,
        li_au.email as agreed_with_user
      from identifications li_i
      join users li_u on li_u.id = li_i.user_id
      left join classifications li_c on li_c.id = li_i.agreed_with_prediction_id
      left join algorithms li_a on li_a.id = li_c.algorithm_id
      left join identifications li_ai on li_ai.id = li_i.agreed_with_identification_id
      left join users li_au on li_au.id = li_ai.user_id
      where li_i.occurrence_id = o.id and not li_i.withdrawn
      order by li_i.created_at desc, li_i.id desc
      limit 1
    ) li on true
    left join lateral (
      select count(distinct pu.user_id)::int as participant_count
      from identifications pu
      where pu.occurrence_id = o.id and not pu.withdrawn
    ) pc on true
    order by batch.id`;
}

/** The value of a cell as the writer takes it (INT64: bigint; null stays null). */
function cell(kind: ColumnKind, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (kind === "int64" || kind === "timestamp") return BigInt(value as string);
  if (kind === "double") return Number(value);
  if (kind === "boolean") return Boolean(value);
  if (kind === "doubleList") return (value as number[]).map(Number);
  return String(value);
}

/**
 * The stream of the whole file (`range` null) or of one shard: `PAR1` unless it is a shard
 * after the first, row groups of `groupRows` rows, then the footer (whole file) or the shard's
 * `end.json` side object (a shard: the footer is `shardTail`'s).
 */
function parquetStream(range: ShardRange | null): Pick<StreamExporter, "initialState" | "next"> {
  async function next(
    ctx: ExportQueryContext,
    raw: StreamState,
    options: StreamOptions,
  ): Promise<StreamChunk> {
    const state = raw as ParquetState;
    if (state.phase === "done") return { data: "", records: 0, state, done: true };
    if (state.phase === "magic") {
      return {
        data: MAGIC,
        records: 0,
        state: { ...state, phase: "rows", offset: MAGIC.length },
        done: false,
      };
    }
    const { side } = options;
    // metadata in the state: a checkpoint of before side objects, or no side store (tests)
    const inState = Array.isArray(state.rowGroups) || (!side && range === null);
    if (!inState && !side) throw new Error("occurrences_parquet: a shard needs a side store");
    if (inState && !Array.isArray(state.rowGroups) && (state.groups ?? 0) > 0) {
      throw new Error("occurrences_parquet: the row groups are in a side store it was not given");
    }
    const groupRows = state.groupRows ?? options.maxRecords ?? options.limit;
    const rows = await batchRows(ctx, {
      afterId: state.afterId,
      limit: groupRows,
      untilId: range?.untilId ?? null,
    });
    const kept = inState ? loadRowGroups(state.rowGroups ?? []) : [];
    let groups = state.groups ?? 0;
    const parts: Uint8Array[] = [];
    let offset = state.offset;
    if (rows.length > 0) {
      const { parquet, bytes } = writerAt(offset);
      parquet.write({
        columnData: parquetColumns.map(({ name, kind }) => ({
          name,
          data: rows.map((row) => cell(kind, row[name])),
          offsetIndex: false,
        })),
        rowGroupSize: rows.length,
      });
      const written = taken(bytes);
      parts.push(written);
      offset += written.length;
      // through the checkpoint form, so every row group's metadata is the same whether or not
      // the export was resumed, and wherever it was kept
      const stored = storeRowGroups(parquet.row_groups);
      if (inState) kept.push(...loadRowGroups(stored));
      else {
        // stored before the chunk that holds the group is returned, so before any checkpoint
        // counts it; a retry rewrites the same name with the same bytes
        await side!.put(
          groupName(groups),
          encoder.encode(JSON.stringify((stored as StreamState[])[0])),
        );
      }
      groups++;
    }
    const done = rows.length < groupRows;
    if (done && range === null) {
      const all = inState ? kept : await loadSideGroups(side!, groups);
      const { parquet, bytes } = writerAt(offset, all);
      parquet.finish();
      const footer = taken(bytes);
      parts.push(footer);
      offset += footer.length;
    } else if (done) {
      await side!.put(SHARD_END, encoder.encode(JSON.stringify({ groups, bytes: offset })));
    }
    const data = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((at, p) => (data.set(p, at), at + p.length), 0);
    const after: ParquetState = {
      phase: done ? "done" : "rows",
      afterId: rows.length > 0 ? recordId(rows[rows.length - 1].id) : state.afterId,
      offset,
      rowGroups: inState ? storeRowGroups(kept) : null,
      groups,
      groupRows,
    };
    return { data, records: rows.length, state: after, done };
  }

  return {
    initialState(): StreamState {
      return {
        phase: range === null || range.first ? "magic" : "rows",
        afterId: range?.afterId ?? null,
        offset: 0,
        rowGroups: null,
        groups: 0,
        groupRows: range?.batchRecords ?? null,
      } satisfies ParquetState;
    },
    next,
  };
}

/**
 * The footer after the shards (`StreamExporter.shardTail`): each shard's row groups from its
 * side store (as many as its `end.json` says: groups a crashed attempt wrote past that are not
 * read), shifted by the bytes of the shards before it, then `FileMetaData` (`num_rows` the sum),
 * its length and `PAR1`: the bytes the whole-file stream ends with. Throws when a shard's
 * `end.json` or a group is missing, or the shard's object is not the size its stream wrote.
 */
async function shardTail(shards: { bytes: number; side: SideStore }[]): Promise<Uint8Array> {
  const all: RowGroup[] = [];
  let base = 0;
  for (const [k, shard] of shards.entries()) {
    const end = await shard.side.get(SHARD_END);
    if (!end) throw new Error(`parquet shard ${k} has no ${SHARD_END}: it did not end`);
    const { groups, bytes } = JSON.parse(decoder.decode(end)) as { groups: number; bytes: number };
    if (bytes !== shard.bytes) {
      throw new Error(`parquet shard ${k} wrote ${bytes} bytes, its object has ${shard.bytes}`);
    }
    all.push(...(await loadSideGroups(shard.side, groups)).map((g) => shifted(g, base)));
    base += shard.bytes;
  }
  const { parquet, bytes } = writerAt(base, all);
  parquet.finish();
  return taken(bytes);
}

/**
 * Shard bounds on row-group boundaries: every `every` records rounded up to a multiple of the
 * batch size B (`maxRecords`), so that a shard starts where an unsharded file starts a row
 * group; shard k then cuts the same groups.
 */
async function shardBounds(
  ctx: ExportQueryContext,
  every: number,
  options?: { maxRecords: number },
): Promise<ShardBound[]> {
  const batch = Math.max(1, options?.maxRecords ?? every);
  const aligned = Math.ceil(every / batch) * batch;
  const ids = await occurrenceShardBounds(ctx, aligned);
  return ids.map((id, i) => ({ id, records: (i + 1) * aligned }));
}

/** The simple CSV's columns as a typed Parquet file (`occurrences_parquet`). */
export const occurrencesParquet: StreamExporter = {
  kind: "stream",
  key: "occurrences_parquet",
  label: "Occurrences (Parquet)",
  description: "One row per valid occurrence: the simple CSV's columns with real types " +
    "(int64 ids, float64 scores, UTC timestamps, booleans, strings), one row group per batch",
  extension: "parquet",
  contentType: "application/vnd.apache.parquet",
  contents: columnContents("occurrences_parquet", occurrenceCsvColumns, {
    ...occurrenceCsvMeanings,
    duration: { description: "last − first appearance", unit: "microseconds" },
  }),
  acceptedFilters: occurrenceFilterKeys,
  count: countOccurrences,
  impossibleTimes,
  revision: 2,
  sideObjects: true,
  ...parquetStream(null),
  shardBounds,
  shard(range: ShardRange): StreamExporter {
    // a shard's stream is not cut again
    const { shardBounds: _bounds, shard: _shard, shardTail: _tail, ...info } = occurrencesParquet;
    return { ...info, ...parquetStream(range) };
  },
  shardTail,
};
