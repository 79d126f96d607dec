/**
 * The JSON-sections driver: a JSON format whose file is one object, a few leading members
 * written at once (`"info": {…}`), then arrays written in keyset batches (`"images": […]`),
 * declares its sections ({@link JsonSection}); {@link jsonSections} owns the object's
 * punctuation (the braces, each `"name":[`, the commas between elements and batches), the
 * cursor and its state, and resume. Every element is a JSON text the database built, so ids
 * past 2^53 stay exact.
 *
 * State (a checkpoint; JSON): `{section, …cursor, started, records}`: `section` −1 before the
 * leading members, then the index of the array being written, `sections.length` once done;
 * the cursor fields (ids, 0 at the start of each array); `started` once the array holds an
 * element (the next one needs a comma).
 *
 * Sharding (docs/architecture.md, Sharded exports): a format that declares
 * {@link JsonSectionsFormat.shardKeys} is cut in its last section, the records', by the
 * cursor's first field. Shard 0 writes the leading members, every earlier section and its part
 * of the last; shard k > 0 starts in the last section after every element of its `afterId`,
 * with a comma before its first element when records precede it; only the last shard closes
 * the array and the object. Concatenated, the shards are the unsharded file.
 */
import { keyShardBounds } from "./filters.ts";
import { AFTER_EVERY_ID } from "./keyset_csv.ts";
import type { Fragment } from "./occurrence_sql.ts";
import {
  type ExporterInfo,
  type ExportQueryContext,
  type RecordId,
  type ShardBound,
  type ShardRange,
  type StreamExporter,
  type StreamState,
} from "./types.ts";

/** A row of a section's batch: the element's JSON text, and the cursor's columns. */
export interface JsonElement {
  json: string;
}

/** One array member of the object, written in keyset batches. */
export interface JsonSection<Row extends JsonElement = JsonElement & Record<string, unknown>> {
  name: string;
  /**
   * One statement: at most `limit` elements after the cursor `after`, in cursor order; the
   * records' section of a sharded format only those whose first cursor field is ≤ `until`
   * (null: no upper bound).
   */
  rows(
    ctx: ExportQueryContext,
    after: Readonly<Record<string, RecordId>>,
    limit: number,
    until?: RecordId | null,
  ): Promise<Row[]>;
  /** The cursor fields after `row` (fields left out keep their value). */
  cursor(row: Row): Record<string, RecordId>;
  /** True when the elements are the export's records (what the count counts). */
  records?: boolean;
  /**
   * False for a row read but not written (absent: every row is written); the cursor and the end
   * of the section still follow every row read.
   */
  keep?(row: Row): boolean;
}

/** What a JSON-sections format declares; the driver adds extension and content type. */
export interface JsonSectionsFormat extends Omit<ExporterInfo, "extension" | "contentType"> {
  /** The object's leading members as JSON text without the braces (`"info":{…}`). */
  leading(ctx: ExportQueryContext): Promise<string>;
  // deno-lint-ignore no-explicit-any
  sections: readonly JsonSection<any>[];
  /** The cursor's state fields, in order (each an id, 0 at the start of every array). */
  cursor: readonly string[];
  /**
   * Makes the format shard: one statement selecting, as `id`, the first cursor field of each
   * element of the last section (the records: one row per record, the export's very
   * predicate). The last section must be the records' and keep every row it reads.
   */
  shardKeys?(ctx: ExportQueryContext): Fragment;
}

interface SectionsState {
  [key: string]: StreamState;
  section: number;
  started: boolean;
  records: number;
}

/**
 * The exporter of a JSON-sections declaration: `{` + the leading members, then each section
 * as `"name":[…]` (a batch of fewer than `limit` elements closes it), then `}` and a newline.
 */
export function jsonSections(format: JsonSectionsFormat): StreamExporter {
  const { leading, sections, cursor, shardKeys, ...info } = format;
  const start = Object.fromEntries(cursor.map((field) => [field, 0]));
  const open = (i: number): string => `"${sections[i].name}":[`;
  const lastSection = sections.length - 1;
  if (shardKeys && (!sections[lastSection].records || sections[lastSection].keep)) {
    throw new Error(`${format.key}: only a last section of records that keeps every row shards`);
  }
  const streamOf = (range: ShardRange): StreamExporter => ({
    ...info,
    kind: "stream",
    extension: "json",
    contentType: "application/json",
    ...(shardKeys === undefined ? {} : {
      shardBounds: (ctx: ExportQueryContext, every: number): Promise<ShardBound[]> =>
        keyShardBounds(ctx, shardKeys(ctx), every),
      shard: streamOf,
    }),
    initialState(): StreamState {
      if (range.first) {
        return { section: -1, ...start, started: false, records: 0 } satisfies SectionsState;
      }
      // after every element of the shard's `afterId`: the cursor's other fields at their end
      const after = Object.fromEntries(
        cursor.map((field, i) => [field, i === 0 ? range.afterId! : AFTER_EVERY_ID]),
      );
      return {
        section: lastSection,
        ...after,
        started: range.recordsBefore > 0,
        records: range.recordsBefore,
      } satisfies SectionsState;
    },
    async next(ctx, raw, options) {
      const state = raw as SectionsState;
      if (state.section >= sections.length) return { data: "", records: 0, state, done: true };
      if (state.section < 0) {
        const members = await leading(ctx);
        const data = "{" + members + (members === "" ? "" : ",") + open(0);
        return { data, records: 0, state: { ...state, section: 0 }, done: false };
      }
      const section = sections[state.section];
      const after = Object.fromEntries(cursor.map((field) => [field, state[field] as RecordId]));
      const until = state.section === lastSection ? range.untilId : null;
      const rows = await section.rows(ctx, after, options.limit, until);
      const last = rows.at(-1);
      const kept = section.keep ? rows.filter((row) => section.keep!(row)) : rows;
      const records = section.records ? kept.length : 0;
      let next: SectionsState = {
        ...state,
        ...(last === undefined ? {} : section.cursor(last)),
        records: state.records + records,
      };
      let data = (state.started && kept.length > 0 ? "," : "") + kept.map((r) => r.json).join(",");
      next.started = state.started || kept.length > 0;
      if (rows.length < options.limit) {
        // the section is complete: close it, open the next one or end the object (a shard
        // but the last ends in the middle of the last array)
        const following = state.section + 1;
        if (following < sections.length) data += "]," + open(following);
        else if (range.last) data += "]}\n";
        next = { ...next, section: following, ...start, started: false };
      }
      return {
        data,
        records,
        rows: rows.length,
        state: next,
        done: next.section >= sections.length,
      };
    },
  });
  // the whole export is its only shard: the states and bytes of an unsharded export
  return streamOf({ afterId: null, untilId: null, recordsBefore: 0, first: true, last: true });
}
