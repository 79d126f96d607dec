/**
 * The zip-archive driver: a zip format declares its members in order ({@link ZipMember}), each
 * a head (a table's header, or the whole of a document such as `meta.xml`) and, for tables,
 * keyset batches of rows; {@link zipArchive} streams them over `registry/zip.ts` and ends with
 * the central directory. It owns what every zip format shares: the phases (one member after
 * the other, then the central directory, then done), the open entry, the byte offset, the
 * finished entries the central directory lists, the keyset cursor within a member, and resume
 * from any checkpoint with identical bytes. A format keeps its own values in the state beside
 * the driver's (`extra`: a coverage, counters), and a member may also write whole files of its
 * own (`files`: an image dataset's `images/…` members, one per capture) between tables.
 *
 * State (a checkpoint; JSON): `{modified, step, entry, afterId, offset, packedEntries, records,
 * …extra}`, with `step` the index of the member being written, `members.length` for the central
 * directory and `members.length + 1` once done. The finished entries are kept packed
 * (`registry/zip_entries_packed.ts`, about 18.5 bytes an entry), so the checkpoint stays small
 * enough for a Temporal heartbeat at 100,000 entries; a checkpoint written before the packed form
 * (a plain `entries` array) resumes too, and is packed at its next finished entry.
 */
import { exportCitation } from "../domain/citation.ts";
import { renderDataCard } from "../domain/datacard.ts";
import { skippedCount } from "./skipped_count.ts";
import { settingsOf } from "./occurrence_sql.ts";
import { exportSettingsKey } from "./settings_key.ts";
import {
  type ContentEntry,
  type ExporterInfo,
  type ExportQueryContext,
  type RecordId,
  type ShardBound,
  type ShardRange,
  type ShardUnit,
  type SideStore,
  type StreamChunk,
  type StreamExporter,
  type StreamState,
} from "./types.ts";
import {
  appendEntryPiece,
  beginEntry,
  centralDirectory,
  endEntry,
  writeEntryData,
  type ZipEntry,
  type ZipEntryState,
} from "./zip.ts";
import { packEntries, unpackEntries } from "./zip_entries_packed.ts";

/** The driver's part of the state (the format's `extra` values sit beside it). */
export interface ZipArchiveState {
  [key: string]: StreamState;
  /** Creation time: zip entry times (and what a format dates with it). */
  modified: string;
  /** Index of the member being written; `members.length`: the central directory; + 1: done. */
  step: number;
  /** The entry being written (null between entries). */
  entry: ZipEntryState | null;
  /** Keyset cursor within the current member (0 before its first batch). */
  afterId: RecordId;
  /** Bytes of the archive written so far. */
  offset: number;
  /**
   * The finished entries, packed (`registry/zip_entries_packed.ts`; "" for none; absent in a
   * checkpoint written before the packed form, which lists them in `entries` instead).
   */
  packedEntries: string;
  /** Exported records so far (what the format counts). */
  records: number;
  // `pieceKeys` (a number, when present): keys a piece of a table member holds
  // (ZipArchiveFormat.pieceKeys), fixed by the first chunk; absent: one piece a batch (an
  // archive that does not shard, or a checkpoint written before pieces)
}

/** One batch of a table member. */
export interface MemberBatch {
  /** The encoded rows ("" for none). */
  data: string | Uint8Array;
  /** The cursor after the batch (null: no row, the cursor stays). */
  lastId: RecordId | null;
  /** The rows the batch's `limit` counted; fewer than `limit` ends the member (but `more`). */
  rows: number;
  /**
   * True: the member goes on although the batch read fewer rows than `limit` (a phase that
   * caps its own batches: `yolo_dataset`'s frames, a few megabytes each).
   */
  more?: boolean;
  /** Exported records in the batch (default 0). */
  records?: number;
  /** New values of the format's `extra` state fields (a widened coverage, a counter). */
  extra?: Record<string, StreamState>;
  /**
   * Whole files written before the rows of this batch, each as its own zip entry; only for a
   * member whose `name` is null (a member that is a set of files, not one file). `compressed`:
   * the data is compressed already (a JPEG), stored rather than deflated again (zip.ts
   * `writeEntryData`).
   */
  files?: readonly ArchiveFile[];
}

/** A whole file of an archive: its name, its bytes, and whether they are compressed already. */
export interface ArchiveFile {
  name: string;
  data: string | Uint8Array;
  compressed?: boolean;
}

/** A member of the archive (or, with a null `name`, a phase writing whole files). */
export interface ZipMember {
  /** The file name in the archive; null for a phase whose batches write whole `files`. */
  name: string | null;
  /** The member's first bytes: a table's header; without `batch`, the whole member. */
  head?(ctx: ExportQueryContext, state: ZipArchiveState): string | Promise<string>;
  /**
   * The next batch after `afterId` (one statement), at most about `limit` rows (keys: `rows`
   * counts the keys read, whether or not each made a row of the member), none past `untilId`
   * when given (a shard's end). A batch reads from the state only the cursor and values its own
   * member writes (`extra`), so that a member can be written apart from the others (a member
   * that `readsEarlierUnits` also theirs).
   */
  batch?(
    ctx: ExportQueryContext,
    state: ZipArchiveState,
    limit: number,
    untilId?: RecordId | null,
  ): Promise<MemberBatch>;
  /**
   * Present on a table member that can be cut in shards: the key of its `every`-th,
   * 2·`every`-th, … key in file order with the keys up to and including it
   * (`StreamExporter.shardBounds`; one statement, the member's own predicate).
   */
  shardBounds?(ctx: ExportQueryContext, every: number): Promise<ShardBound[]>;
  /** True for the member whose rows are the export's records (`dwca`'s `occurrence.txt`). */
  holdsRecords?: boolean;
  /**
   * True for a table that reads what the members before it left in the state as a whole
   * (`crops_by_taxon`'s `manifest.csv` leaves out every crop the images phase skipped): a
   * sharded archive has no unit of it; the composition writes it, piece by piece as the
   * unsharded archive does, from the state every unit before it left.
   */
  composed?: boolean;
  /**
   * True for a member written after the phases before it, from what they left in the state as a
   * whole (COCO's `annotations.json` leaves out every image its images phase skipped), but too
   * large to be written at compose time: a sharded archive writes it as one unit that reads the
   * values of the units before it (`ShardUnit.reads`) and runs once they ended. Its batches see
   * those values in the state as the unsharded archive's hold them; the unit keeps them apart
   * from its own and does not report them as its own.
   */
  readsEarlierUnits?: boolean;
}

/** What a zip format declares; the driver adds extension and content type. */
export interface ZipArchiveFormat extends Omit<ExporterInfo, "extension" | "contentType"> {
  members: readonly ZipMember[];
  /**
   * True: the driver ends the archive with `README.md`, the export's data card (the formats
   * users publish: `dwca`, `camtrap_dp`).
   */
  dataCard?: boolean;
  /** The format's own state fields and their values before the first member. */
  extra?: Record<string, StreamState>;
  /**
   * Set on the archives that shard: each table member is deflated in pieces of this many keys
   * (at most the export's `EXPORT_BATCH_SIZE`), counted from the member's first key, a batch
   * holding whole pieces; the bytes then depend on neither the byte-sized batches nor the
   * shards, and a shard starting on a piece boundary writes the very pieces an unsharded
   * export writes (docs/architecture.md, Sharded exports).
   */
  pieceKeys?: number;
}

const encoder = new TextEncoder();

/** A state as a checkpoint written before the packed form may hold it. */
type ListedState = ZipArchiveState & { entries?: ZipEntry[] };

/** The finished entries of a state, packed or (an older checkpoint) listed. */
function finishedEntries(state: ListedState): ZipEntry[] {
  return [...(state.entries ?? []), ...unpackEntries(state.packedEntries ?? "")];
}

function bytesOf(data: string | Uint8Array): Uint8Array {
  return typeof data === "string" ? encoder.encode(data) : data;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** The member every archive ends with: its data card. */
const README_ENTRY: ContentEntry = {
  name: "README.md",
  description: "the data card of the export, as the archive was written (Markdown)",
};

/**
 * The archive's data card (`domain/datacard.ts`), as `README.md`: what the served card says,
 * but for what an archive cannot know while it is written — its own size and checksum, the
 * export's end and the source versions recorded with the snapshot; the citation dates the
 * export by the archive's start (`modified`). Only what a resume computes again identically:
 * the request's facts (`ctx.card`), the project read in the snapshot, the settings, and the
 * records counted in the state (docs/formats.md, "The data card inside archives").
 */
async function archiveReadme(
  info: Omit<ZipArchiveFormat, "members" | "extra" | "dataCard">,
  ctx: ExportQueryContext,
  state: ZipArchiveState,
): Promise<string> {
  const [project] = await ctx.sql<{ name: string; owner: string | null }[]>`
    select p.name, (select coalesce(nullif(u.name, ''), u.email) from users u
      where u.id = p.owner_id) as owner
    from projects p where p.id = ${ctx.projectId}`;
  const settings = settingsOf(ctx);
  const facts = ctx.card;
  const started = new Date(state.modified);
  return renderDataCard({
    exportId: facts?.exportId ?? null,
    projectId: ctx.projectId,
    projectName: project?.name ?? "",
    ownerName: project?.owner ?? null,
    format: {
      key: info.key,
      label: info.label,
      description: info.description,
      extension: "zip",
      revision: info.revision ?? 1,
    },
    filtersDisplay: facts?.filtersDisplay ?? {},
    columns: null,
    excelCompatible: false,
    requestedBy: facts?.requestedBy ?? null,
    createdAt: facts ? new Date(facts.createdAt) : null,
    finishedAt: null,
    recordCount: state.records,
    // an image archive's skipped.csv is written before README.md, from the same list
    skippedCount: skippedCount(state),
    file: null,
    settings,
    settingsMatch: null,
    settingsKey: await exportSettingsKey(info, settings),
    sourceVersion: undefined,
    globalSourceVersion: undefined,
    citation: facts
      ? exportCitation({
        projectName: project?.name ?? "",
        ownerName: project?.owner ?? null,
        formatLabel: info.label,
        formatKey: info.key,
        recordCount: state.records,
        finishedAt: started,
        downloadUrl: facts.downloadUrl,
      })
      : null,
    contents: info.contents ?? [],
    contentsKind: "members",
  });
}

/** Keys a piece holds: the format's, at most the export's batch size (fixed at the start). */
function piecesOf(format: ZipArchiveFormat, maxRecords: number | undefined): number | null {
  if (format.pieceKeys === undefined) return null;
  return Math.max(1, Math.min(format.pieceKeys, maxRecords ?? format.pieceKeys));
}

/** What one chunk of a table member read: its pieces, deflated, and what they carried. */
interface TableRead {
  /** The state after the batch (cursor, records and the member's `extra` moved on). */
  state: ZipArchiveState;
  /** Entry data written, each element one deflated piece. */
  pieces: Uint8Array[];
  entry: ZipEntryState;
  /** Rows the batches' limits counted, and their bytes before deflating. */
  rows: number;
  weight: number;
  records: number;
  /** The member has no more rows (in the range). */
  finished: boolean;
}

/**
 * One chunk of a table member: batches of `pieceKeys` keys, each deflated as a piece of its
 * own, while the rows read stay within `limit` (at least one piece); without `pieceKeys` (an
 * archive that does not shard, or a checkpoint written before pieces) one batch of `limit`
 * rows, one piece. Whole files a batch carries (`files`) are written as entries of their own
 * through `files`.
 */
async function readTable(
  member: ZipMember,
  ctx: ExportQueryContext,
  state: ZipArchiveState,
  entry: ZipEntryState,
  options: { limit: number; pieceKeys: number | null; untilId: RecordId | null },
  files: (file: { name: string; data: Uint8Array; compressed?: boolean }) => void,
): Promise<TableRead> {
  const { limit, pieceKeys, untilId } = options;
  const size = pieceKeys ?? limit;
  const pieces: Uint8Array[] = [];
  let current = state;
  let rows = 0;
  let weight = 0;
  let records = 0;
  let finished = false;
  do {
    const batch = await member.batch!(ctx, current, size, untilId);
    for (const file of batch.files ?? []) {
      const data = bytesOf(file.data);
      weight += data.length;
      files({ name: file.name, data, compressed: file.compressed });
    }
    const data = bytesOf(batch.data);
    weight += data.length;
    if (data.length > 0) {
      const written = writeEntryData(entry, data);
      pieces.push(written.bytes);
      entry = written.entry;
    }
    rows += batch.rows;
    records += batch.records ?? 0;
    finished = batch.rows < size && !batch.more;
    current = {
      ...current,
      afterId: batch.lastId ?? current.afterId,
      records: current.records + (batch.records ?? 0),
      ...batch.extra,
    };
  } while (pieceKeys !== null && !finished && rows + size <= limit);
  return { state: current, pieces, entry, rows, weight, records, finished };
}

/** What a unit of a sharded archive leaves in its side store: `unit.json`. */
interface UnitRecord {
  member: number;
  /** A table's unit: CRC-32 and sizes of its pieces (0 for a phase of whole files). */
  crc: number;
  size: number;
  compressedSize: number;
  records: number;
  /** The format's values the unit wrote (a list: its own items, appended to the others'). */
  extra: Record<string, StreamState>;
  /** A phase's unit: its entries, packed, at offsets from the unit's start ("" for none). */
  entries: string;
  /** The archive's piece size ({@link ZipArchiveFormat.pieceKeys}) as planned; null: none. */
  pieceKeys: number | null;
}

/**
 * The state's value `key` after a unit's: a list the unit grew is appended to what the units
 * before it listed (`skipped`); any other value replaces it (one unit writes it).
 */
function mergedValue(before: StreamState, unit: StreamState): StreamState {
  return Array.isArray(before) && Array.isArray(unit) ? [...before, ...unit] : unit;
}

/**
 * `state` after a unit's (its `unit.json`): the unit's values (`UnitRecord.extra`) merged in key
 * by key ({@link mergedValue}) and its records added. The one rule by which values pass from
 * units on: the layout moves its state on with each unit in order, and a unit that reads
 * earlier units starts from theirs the same way.
 */
function afterUnit(state: ZipArchiveState, unit: UnitRecord): ZipArchiveState {
  const merged: ZipArchiveState = { ...state, records: state.records + unit.records };
  for (const [key, value] of Object.entries(unit.extra)) {
    merged[key] = mergedValue(state[key], value);
  }
  return merged;
}

/**
 * The key under which a unit that reads earlier units (`ShardUnit.reads`) keeps the values it
 * read from them in its state, and so in its checkpoints (`{key: value}`, as the layout holds
 * them once past those units): apart from its own values, so that what it reports as its own
 * (its `unit.json` values, what an export's progress reads from its state, such as the images
 * left out) is only what it wrote itself; its member's batches see them merged ({@link readView}).
 */
const READ_VALUES = "readValues";

/** `state` with `values`, read from earlier units, kept apart ({@link READ_VALUES}). */
function withReadValues(
  state: ZipArchiveState,
  values: Record<string, StreamState>,
): ZipArchiveState {
  const own: ZipArchiveState = { ...state, [READ_VALUES]: values };
  for (const key of Object.keys(values)) delete own[key];
  return own;
}

/**
 * A checkpoint of a reading unit written before {@link READ_VALUES}, which merged the values read
 * into its own and listed their keys in `readKeys`, with them kept apart; any other as it is.
 */
function readValuesApart(state: ZipArchiveState): ZipArchiveState {
  const { readKeys, ...rest } = state;
  if (!Array.isArray(readKeys)) return state;
  const values = Object.fromEntries(readKeys.map((key) => [String(key), rest[String(key)]]));
  return withReadValues(rest as ZipArchiveState, values);
}

/**
 * What a member's batch is given of a unit's state: the values the unit read from earlier units
 * ({@link READ_VALUES}) under its own, as the unsharded archive's state holds them there; a
 * state without read values as it is.
 */
function readView(state: ZipArchiveState): ZipArchiveState {
  const { [READ_VALUES]: read, ...own } = state;
  if (read === undefined) return state;
  return { ...(read as Record<string, StreamState>), ...own } as ZipArchiveState;
}

const UNIT_OBJECT = "unit.json";

/** The record a unit left in its side store (`unit.json`); `what` names the unit in the error. */
async function readUnitRecord(side: SideStore, what: string): Promise<UnitRecord> {
  const stored = await side.get(UNIT_OBJECT);
  if (!stored) throw new Error(`${what} left no ${UNIT_OBJECT}`);
  return JSON.parse(new TextDecoder().decode(stored));
}

/**
 * The exporter of a zip declaration. A chunk is at most one batch of one member: the first
 * chunk of a member opens its entry and writes its head; a member without `batch` ends there;
 * a batch of fewer than `limit` rows ends its member. Entries are deflated piece by piece
 * (`registry/zip.ts`), so no compressor state outlives a chunk. Entry times, and what a format
 * dates with `modified`, are the export's request time (`ctx.card.createdAt`; outside an
 * export, the stream's start), so that every shard of an export dates it alike.
 *
 * With `pieceKeys`, the archive shards member by member (`shardUnits`): a unit writes one table
 * member's pieces for a range of its keys (a member without `shardBounds` whole), and
 * `shardLayout` places the units between the bytes no unit writes — local headers, heads, the
 * members without rows, the end of each entry with its CRC-32 combined from the units'
 * ({@link crc32Combine}), the central directory — giving the unsharded archive byte for byte.
 */
export function zipArchive(format: ZipArchiveFormat): StreamExporter {
  const { members: declared, extra, dataCard, pieceKeys: _pieceKeys, ...info } = format;
  const contents = dataCard ? [...(info.contents ?? []), README_ENTRY] : info.contents;
  const members: readonly ZipMember[] = dataCard
    ? [...declared, {
      name: README_ENTRY.name,
      head: (ctx: ExportQueryContext, state: ZipArchiveState) =>
        archiveReadme({ ...info, contents }, ctx, state),
    }]
    : declared;
  const initialState = (ctx?: ExportQueryContext): ZipArchiveState => ({
    modified: ctx?.card?.createdAt ?? new Date().toISOString(),
    step: 0,
    entry: null,
    afterId: 0,
    offset: 0,
    packedEntries: "",
    records: 0,
    ...extra,
  });
  const whole: StreamExporter = {
    ...info,
    contents,
    kind: "stream",
    extension: "zip",
    contentType: "application/zip",
    initialState,
    async next(ctx, raw, options): Promise<StreamChunk> {
      const state = raw as ZipArchiveState;
      if (state.step > members.length) return { data: "", records: 0, state, done: true };
      const at = { offset: state.offset, modified: state.modified };
      if (state.step === members.length) {
        const bytes = centralDirectory(finishedEntries(state), at);
        return {
          data: bytes,
          records: 0,
          state: { ...state, step: state.step + 1, offset: state.offset + bytes.length },
          done: true,
        };
      }
      // pieces of a fixed number of keys, chosen once (a checkpoint without: one per batch)
      const pieceKeys = state.step === 0 && state.entry === null && state.offset === 0
        ? piecesOf(format, options.maxRecords ?? options.limit)
        : typeof state.pieceKeys === "number"
        ? state.pieceKeys
        : null;
      const member = members[state.step];
      const parts: Uint8Array[] = [];
      let offset = state.offset;
      let entry = state.entry;
      const closed: ZipEntry[] = [];
      const push = (bytes: Uint8Array): void => {
        parts.push(bytes);
        offset += bytes.length;
      };
      const write = (data: string | Uint8Array, compressed?: boolean): void => {
        const written = writeEntryData(entry!, bytesOf(data), { compressed });
        push(written.bytes);
        entry = written.entry;
      };
      const open = (name: string): void => {
        const begun = beginEntry(name, { offset, modified: state.modified });
        push(begun.bytes);
        entry = begun.entry;
      };
      const close = (): void => {
        const ended = endEntry(entry!);
        push(ended.bytes);
        closed.push(ended.entry);
        entry = null;
      };
      let read: TableRead | null = null;
      let finished: boolean;
      // a member's first chunk: its rows weigh nothing like the previous member's
      const opening = member.name !== null && entry === null;
      if (opening) {
        open(member.name!);
        if (member.head) write(await member.head(ctx, state));
        finished = member.batch === undefined;
      } else {
        // a phase of whole files (name null) opens an entry of its own for each
        const table = member.name !== null;
        read = await readTable(
          member,
          ctx,
          state,
          entry ?? beginEntry("", { offset: 0, modified: state.modified }).entry,
          { limit: options.limit, pieceKeys: table ? pieceKeys : null, untilId: null },
          (file) => {
            const inTable = entry;
            open(file.name);
            write(file.data, file.compressed);
            close();
            entry = inTable;
          },
        );
        for (const piece of read.pieces) push(piece);
        if (table) entry = read.entry;
        finished = read.finished;
      }
      if (finished && entry !== null) close();
      const moved = read?.state ?? state;
      // a checkpoint's listed entries are packed with the next finished one
      const { entries: _listed, ...kept } = moved as ListedState;
      const after: ZipArchiveState = {
        ...(closed.length === 0 ? moved : kept),
        ...(closed.length === 0 ? {} : {
          packedEntries: packEntries([...finishedEntries(state), ...closed]),
        }),
        step: finished ? state.step + 1 : state.step,
        entry,
        afterId: finished ? 0 : moved.afterId,
        offset,
        ...(pieceKeys === null ? {} : { pieceKeys }),
      };
      return {
        data: concat(parts),
        records: read?.records ?? 0,
        rows: read?.rows ?? 0,
        ...(read === null ? {} : { bytes: read.weight }),
        ...(opening && !finished ? { newTable: true } : {}),
        state: after,
        done: false,
      };
    },
  };
  // an archive shards when a member declares bounds; its tables then need pieces, else their
  // bytes would follow the batches
  if (!members.some((m) => m.shardBounds)) return whole;
  if (format.pieceKeys === undefined && members.some((m) => m.name !== null && m.batch)) {
    throw new Error(`${info.key}: an archive with tables shards only with pieceKeys`);
  }

  /**
   * The format's values the units `earlier` wrote (their `unit.json`), as the layout holds them
   * once past those units ({@link afterUnit}, from the initial state).
   */
  async function earlierValues(
    ctx: ExportQueryContext,
    earlier: readonly SideStore[],
  ): Promise<Record<string, StreamState>> {
    let state = initialState(ctx);
    const written = new Set<string>();
    for (const [k, side] of earlier.entries()) {
      const unit = await readUnitRecord(side, `${info.key}: earlier unit ${k}`);
      state = afterUnit(state, unit);
      for (const key of Object.keys(unit.extra)) written.add(key);
    }
    return Object.fromEntries([...written].map((key) => [key, state[key]]));
  }

  /**
   * The stream of one unit: `range.member`'s pieces for its keys in the range; a unit that
   * reads earlier units (`range.reads`) starts from their values (`earlier`: their side stores).
   */
  function unitStream(range: ShardRange, earlier: readonly SideStore[] = []): StreamExporter {
    const index = range.member!;
    const member = members[index];
    if (!member?.batch) throw new RangeError(`member ${index} of ${info.key} has no batches`);
    // a table's unit writes pieces of its one entry; a phase's unit whole entries of its own,
    // at offsets from the unit's start, listed in its state like an archive's
    const table = member.name !== null;
    // its batches see the values read from earlier units; the unit's state keeps them apart
    const viewing: ZipMember = {
      ...member,
      batch: (ctx, state, limit, untilId) => member.batch!(ctx, readView(state), limit, untilId),
    };
    const { shardUnits: _u, shardLayout: _l, shard: _s, ...rest } = sharded;
    return {
      ...rest,
      sideObjects: true,
      initialState: (ctx?: ExportQueryContext): StreamState => ({
        ...initialState(ctx),
        step: index,
        entry: table
          ? beginEntry(member.name!, { offset: 0, modified: "1980-01-01T00:00:00Z" }).entry
          : null,
        afterId: range.afterId ?? 0,
        ...(table ? { pieceKeys: piecesOf(format, range.batchRecords) } : {}),
      }),
      async next(ctx, raw, options): Promise<StreamChunk> {
        let state = readValuesApart(raw as ZipArchiveState);
        if (state.step !== index) return { data: "", records: 0, state, done: true };
        if ((range.reads?.length ?? 0) > 0 && state[READ_VALUES] === undefined) {
          // once, before the first batch: what the earlier units left (kept in the checkpoint)
          if (earlier.length !== range.reads!.length) {
            throw new Error(`${info.key}: unit of member ${index} needs the earlier units' stores`);
          }
          state = withReadValues(state, await earlierValues(ctx, earlier));
        }
        const parts: Uint8Array[] = [];
        let offset = state.offset;
        const closed: ZipEntry[] = [];
        const read = await readTable(
          viewing,
          ctx,
          state,
          state.entry ?? beginEntry("", { offset: 0, modified: state.modified }).entry,
          {
            limit: options.limit,
            pieceKeys: table ? state.pieceKeys as number : null,
            untilId: range.untilId,
          },
          (file) => {
            const begun = beginEntry(file.name, { offset, modified: state.modified });
            const written = writeEntryData(begun.entry, file.data, {
              compressed: file.compressed,
            });
            const ended = endEntry(written.entry);
            for (const bytes of [begun.bytes, written.bytes, ended.bytes]) {
              parts.push(bytes);
              offset += bytes.length;
            }
            closed.push(ended.entry);
          },
        );
        for (const piece of read.pieces) {
          parts.push(piece);
          offset += piece.length;
        }
        const after: ZipArchiveState = {
          ...read.state,
          entry: table ? read.entry : null,
          offset,
          ...(closed.length === 0 ? {} : {
            packedEntries: packEntries([...finishedEntries(state), ...closed]),
          }),
        };
        if (read.finished) {
          // the format's values this member wrote (the others' stay as they were); those it
          // read are kept apart, not among its own (the layout merges them from their units)
          const own: Record<string, StreamState> = {};
          for (const [key, initial] of Object.entries(extra ?? {})) {
            if (!(key in after)) continue;
            if (JSON.stringify(after[key]) !== JSON.stringify(initial)) own[key] = after[key];
          }
          const record: UnitRecord = {
            member: index,
            crc: table ? read.entry.crc : 0,
            size: table ? read.entry.size : 0,
            compressedSize: table ? read.entry.compressedSize : 0,
            records: after.records,
            extra: own,
            entries: after.packedEntries,
            pieceKeys: piecesOf(format, range.batchRecords),
          };
          if (!options.side) throw new Error(`${info.key}: a unit needs its side store`);
          // stored before the chunk that ends the unit is returned (SideStore's rule)
          await options.side.put(UNIT_OBJECT, encoder.encode(JSON.stringify(record)));
          after.step = index + 1;
        }
        return {
          data: concat(parts),
          records: read.records,
          rows: read.rows,
          bytes: read.weight,
          state: after,
          done: read.finished,
        };
      },
    };
  }

  const sharded: StreamExporter = {
    ...whole,
    // members refer to each other's rows (occurrence.txt to event.txt, observations to media)
    shardsReferAcross: true,
    async shardUnits(ctx, plan): Promise<ShardUnit[]> {
      const size = piecesOf(format, plan.maxRecords) ?? 1;
      const every = Math.ceil(plan.every / size) * size;
      const cutMembers = members.filter((m) => m.batch && m.shardBounds).length;
      const wholeMembers = members.filter((m) => m.batch && !m.shardBounds && !m.composed).length;
      const ranges = Math.max(
        1,
        Math.min(plan.wanted, Math.floor((MAX_UNITS - wholeMembers) / Math.max(1, cutMembers))),
      );
      const units: ShardUnit[] = [];
      let cut = false;
      for (const [index, member] of members.entries()) {
        if (!member.batch || member.composed) continue;
        if (member.readsEarlierUnits) {
          // one unit, after every unit before it
          units.push({
            member: index,
            afterId: null,
            untilId: null,
            records: member.holdsRecords ? plan.totalRecords : 0,
            reads: units.map((_, k) => k),
          });
          continue;
        }
        // the records' member drops a bound that would leave its last range empty; another
        // member's keys are not the records (an empty last range of it writes nothing)
        // a table's ranges start on its pieces; a phase's files land anywhere
        const bounds = member.shardBounds
          ? (await member.shardBounds(ctx, member.name === null ? plan.every : every))
            .filter((b) => !member.holdsRecords || b.records < plan.totalRecords)
            .slice(0, ranges - 1)
          : [];
        if (bounds.length > 0) cut = true;
        let before = 0;
        for (let k = 0; k <= bounds.length; k++) {
          const last = k === bounds.length;
          const upTo = last ? plan.totalRecords : bounds[k].records;
          units.push({
            member: index,
            afterId: k === 0 ? null : bounds[k - 1].id,
            untilId: last ? null : bounds[k].id,
            records: member.holdsRecords ? Math.max(0, upTo - before) : 0,
          });
          before = upTo;
        }
      }
      return cut ? units : [];
    },
    shard: unitStream,
    async shardLayout(ctx, units): Promise<(number | Uint8Array)[]> {
      const records: UnitRecord[] = [];
      for (const [k, unit] of units.entries()) {
        records.push(await readUnitRecord(unit.side, `${info.key}: unit ${k}`));
      }
      let state = initialState(ctx);
      if (!ctx.card) throw new Error(`${info.key}: a sharded archive needs the export's facts`);
      const layout: (number | Uint8Array)[] = [];
      let glue: Uint8Array[] = [];
      let offset = 0;
      const push = (bytes: Uint8Array): void => {
        glue.push(bytes);
        offset += bytes.length;
      };
      const flush = (): void => {
        if (glue.length > 0) layout.push(concat(glue));
        glue = [];
      };
      const entries: ZipEntry[] = [];
      for (const [index, member] of members.entries()) {
        if (member.name === null) {
          // a phase of whole files: each unit's entries, moved to where the unit lands
          for (const [k, unit] of records.entries()) {
            if (unit.member !== index) continue;
            flush();
            layout.push(k);
            for (const entry of unpackEntries(unit.entries ?? "")) {
              entries.push({ ...entry, offset: entry.offset + offset });
            }
            offset += units[k].bytes;
            state = afterUnit(state, unit);
          }
          continue;
        }
        const begun = beginEntry(member.name, { offset, modified: state.modified });
        push(begun.bytes);
        let entry = begun.entry;
        if (member.head) {
          const written = writeEntryData(entry, bytesOf(await member.head(ctx, state)));
          push(written.bytes);
          entry = written.entry;
        }
        for (const [k, unit] of records.entries()) {
          if (unit.member !== index) continue;
          flush();
          layout.push(k);
          offset += units[k].bytes;
          entry = appendEntryPiece(entry, unit);
          state = afterUnit(state, unit);
        }
        if (member.composed && member.batch) {
          // written here, from the state the units before it left
          const size = records.find((unit) => unit.pieceKeys)?.pieceKeys ??
            piecesOf(format, undefined);
          if (!size) throw new Error(`${info.key}: a composed member needs pieceKeys`);
          let current: ZipArchiveState = { ...state, afterId: 0 };
          for (let finished = false; !finished;) {
            const read = await readTable(member, ctx, current, entry, {
              limit: size,
              pieceKeys: size,
              untilId: null,
            }, () => {
              throw new Error(`${info.key}: a composed member cannot write whole files`);
            });
            for (const piece of read.pieces) push(piece);
            entry = read.entry;
            current = read.state;
            finished = read.finished;
          }
          state = { ...current, afterId: 0 };
        }
        const ended = endEntry(entry);
        push(ended.bytes);
        entries.push(ended.entry);
      }
      push(centralDirectory(entries, { offset, modified: state.modified }));
      flush();
      return layout;
    },
  };
  return sharded;
}

/**
 * At most this many units a sharded archive (`activities/shards.ts` `MAX_SHARDS`): each member
 * without bounds is one, the members with bounds share the rest.
 */
const MAX_UNITS = 64;
