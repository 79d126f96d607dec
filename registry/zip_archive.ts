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
import { settingsOf } from "./occurrence_sql.ts";
import { exportSettingsKey } from "./settings_key.ts";
import {
  type ContentEntry,
  type ExporterInfo,
  type ExportQueryContext,
  type RecordId,
  type StreamChunk,
  type StreamExporter,
  type StreamState,
} from "./types.ts";
import {
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
   * member whose `name` is null (a member that is a set of files, not one file).
   */
  files?: readonly { name: string; data: string | Uint8Array }[];
}

/** A member of the archive (or, with a null `name`, a phase writing whole files). */
export interface ZipMember {
  /** The file name in the archive; null for a phase whose batches write whole `files`. */
  name: string | null;
  /** The member's first bytes: a table's header; without `batch`, the whole member. */
  head?(ctx: ExportQueryContext, state: ZipArchiveState): string | Promise<string>;
  /** The next batch after `afterId` (one statement), at most about `limit` rows. */
  batch?(
    ctx: ExportQueryContext,
    state: ZipArchiveState,
    limit: number,
  ): Promise<MemberBatch>;
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

/**
 * The exporter of a zip declaration. A chunk is at most one batch of one member: the first
 * chunk of a member opens its entry and writes its head; a member without `batch` ends there;
 * a batch of fewer than `limit` rows ends its member. Entries are deflated piece by piece
 * (`registry/zip.ts`), so no compressor state outlives a chunk.
 */
export function zipArchive(format: ZipArchiveFormat): StreamExporter {
  const { members: declared, extra, dataCard, ...info } = format;
  const contents = dataCard ? [...(info.contents ?? []), README_ENTRY] : info.contents;
  const members: readonly ZipMember[] = dataCard
    ? [...declared, {
      name: README_ENTRY.name,
      head: (ctx: ExportQueryContext, state: ZipArchiveState) =>
        archiveReadme({ ...info, contents }, ctx, state),
    }]
    : declared;
  return {
    ...info,
    contents,
    kind: "stream",
    extension: "zip",
    contentType: "application/zip",
    initialState(): StreamState {
      return {
        modified: new Date().toISOString(),
        step: 0,
        entry: null,
        afterId: 0,
        offset: 0,
        packedEntries: "",
        records: 0,
        ...extra,
      } satisfies ZipArchiveState;
    },
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
      const member = members[state.step];
      const parts: Uint8Array[] = [];
      let offset = state.offset;
      let entry = state.entry;
      const closed: ZipEntry[] = [];
      const push = (bytes: Uint8Array): void => {
        parts.push(bytes);
        offset += bytes.length;
      };
      const write = (data: string | Uint8Array): void => {
        const written = writeEntryData(entry!, bytesOf(data));
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
      let batch: MemberBatch | null = null;
      // what the batch weighed before deflating: the batch sizing's measure (the rows the
      // worker holds are the uncompressed ones, up to ~10× the deflated bytes for CSV tables)
      let weight: number | undefined;
      let finished: boolean;
      // a member's first chunk: its rows weigh nothing like the previous member's
      const opening = member.name !== null && entry === null;
      if (opening) {
        open(member.name!);
        if (member.head) write(await member.head(ctx, state));
        finished = member.batch === undefined;
      } else {
        batch = await member.batch!(ctx, state, options.limit);
        weight = 0;
        for (const file of batch.files ?? []) {
          open(file.name);
          const data = bytesOf(file.data);
          weight += data.length;
          write(data);
          close();
        }
        const data = bytesOf(batch.data);
        weight += data.length;
        if (data.length > 0) write(data);
        finished = batch.rows < options.limit && !batch.more;
      }
      if (finished && entry !== null) close();
      const records = batch?.records ?? 0;
      const { entries: _listed, ...kept } = state as ListedState;
      const after: ZipArchiveState = {
        ...(closed.length === 0 ? state : kept),
        ...(closed.length === 0 ? {} : {
          packedEntries: packEntries([...finishedEntries(state), ...closed]),
        }),
        step: finished ? state.step + 1 : state.step,
        entry,
        afterId: finished ? 0 : batch?.lastId ?? state.afterId,
        offset,
        records: state.records + records,
        ...batch?.extra,
      };
      return {
        data: concat(parts),
        records,
        rows: batch?.rows ?? 0,
        ...(weight === undefined ? {} : { bytes: weight }),
        ...(opening && !finished ? { newTable: true } : {}),
        state: after,
        done: false,
      };
    },
  };
}
