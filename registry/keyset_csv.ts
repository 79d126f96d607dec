/**
 * The keyset-CSV driver: a CSV format declares its columns, its count statement and its one
 * batch statement ({@link KeysetCsvFormat}); {@link keysetCsv} turns that into an exporter
 * that writes the header, then batches of rows by a keyset cursor of one or more keys, then
 * stops after the first short batch. The driver owns what every CSV format shares: the dialect
 * ({@link csvDialect}: RFC 4180 with CRLF, the OWASP formula guard), the `excel_compatible`
 * option (the byte order mark itself is written by `withByteOrderMark`, `registry/stream.ts`),
 * the cursor and its checkpoint state, and resume (STYLE.md, "Formats as declarations"); and,
 * for a format whose first key is an id and that declares it for each of its rows
 * ({@link KeysetCsvFormat.keys}), sharding: the count and the shard bounds come from that one
 * statement (a format keyed by one id: each batch's ids too).
 */
import { stringify } from "csv-stringify/sync";
import { csvFormulaGuard } from "./encoding.ts";
import { keyShardBounds, occurrencePredicate } from "./filters.ts";
import { type Fragment, realBox } from "./occurrence_sql.ts";
import { upToShardEnd } from "./batch_sql.ts";
import {
  countImpossibleTimes,
  type ImpossibleTimeScope,
  possibleInterval,
  withinSession,
} from "./time_sql.ts";
import {
  type ColumnMeaning,
  type ContentEntry,
  type EncodedBatch,
  type ExporterInfo,
  type ExportQueryContext,
  type ImpossibleTimeCount,
  type RecordExporter,
  type RecordId,
  recordId,
  type ShardBound,
  type ShardRange,
  type StreamChunk,
  type StreamExporter,
  type StreamState,
} from "./types.ts";
import { columnMeanings } from "./column_meanings.ts";

/**
 * The CSV dialect of every CSV format: RFC 4180 records ended by CRLF, a field quoted when it
 * holds a delimiter, a quote or a line break, booleans as `true` / `false`, and text cells
 * guarded against formula injection (OWASP "CSV Injection", {@link csvFormulaGuard}).
 */
export const csvDialect = {
  record_delimiter: "\r\n",
  quoted_match: /[\r\n]/,
  cast: {
    boolean: (value: boolean): string => (value ? "true" : "false"),
    string: csvFormulaGuard,
  },
};

/** The header record of `columns` (CRLF-terminated). */
export function csvHeader(columns: readonly string[]): string {
  return stringify([[...columns]], csvDialect);
}

/** `rows` as CSV records, the cells in `columns` order (empty for no rows). */
export function csvRecords(
  rows: readonly Record<string, unknown>[],
  columns: readonly string[],
): string {
  return rows.length === 0 ? "" : stringify([...rows], { ...csvDialect, columns: [...columns] });
}

/**
 * One key of a keyset cursor: the batch statement's output `column` it is read from, the
 * checkpoint field it is kept in (`state`), and its value before the first row: ids start at
 * 0 and are read with {@link recordId}; a key with a text `start` (`-infinity`) is kept as the
 * exact text the statement returns.
 */
export interface CursorKey {
  column: string;
  /** The checkpoint field; camelCase of `column` when absent (`occurrence_id` → `occurrenceId`). */
  state?: string;
  /** The value before the first row: text keys only (ids start at 0). */
  start?: string;
  /**
   * The value after every row (a shard starts after every row of its first key's `afterId`:
   * the next keys at their end): text keys only, required of a text key of a format that
   * declares {@link KeysetCsvFormat.keys} (`"infinity"` for a timestamp; ids end at the largest
   * `bigint`).
   */
  end?: string;
}

/** The cursor values a batch starts after, by {@link CursorKey.column}. */
export type CursorValues = Readonly<Record<string, RecordId | string>>;

/** A rule counting impossible source times (issue 23): `registry/time_sql.ts`. */
export interface ImpossibleTimeRule extends Omit<ImpossibleTimeScope, "rows"> {
  /** One row per value of the export, with `bad` true for the impossible ones. */
  rows(ctx: ExportQueryContext): Fragment;
}

/** What a keyset CSV format declares; the driver adds extension, content type and options. */
export interface KeysetCsvFormat extends
  Omit<
    ExporterInfo,
    | "extension"
    | "contentType"
    | "acceptedOptions"
    | "count"
    | "impossibleTimes"
    | "contents"
    | "withColumns"
  > {
  /** The header, in file order; the batch statement selects these columns. */
  columns: readonly string[];
  /**
   * What each column means (every column of the format, no other name): the data card and the
   * column list of docs/formats.md are made from it (`domain/datacard.ts`). Default: the
   * format's entry in `formats/column_meanings.json` ({@link columnMeanings}).
   */
  meanings?: Readonly<Record<string, ColumnMeaning>>;
  /**
   * The keyset, in `order by` order. One id key: a record format (`RecordExporter`, its
   * checkpoint `{phase, afterId, records}`); more keys: a stream whose checkpoint is
   * `{phase: "header" | "rows" | "done", …keys, records}`.
   */
  cursor: readonly CursorKey[];
  /**
   * One statement: one row whose `n` is the number of rows the file will hold. Default (with
   * {@link KeysetCsvFormat.keys}): the number of rows `keys` selects.
   */
  count?(ctx: ExportQueryContext): Fragment;
  /**
   * A first key that is an id (other text keys declare their {@link CursorKey.end}) only: one
   * statement selecting, for every row the file holds, its first cursor key as `id`
   * (`select s.id from source_images s where …`; `detections_csv`, `tracks_csv`: the occurrence
   * id of each detection; `taxon_counts_csv`: the session of each (session, taxon) group): the
   * export's one predicate. When present the format shards
   * (docs/architecture.md, Sharded exports) by its first key: its shard bounds are the keys of
   * every n-th row ({@link keyShardBounds}); a format keyed by one id pages through these ids
   * with {@link keysetPage}, which honours the shard's `until`.
   */
  keys?(ctx: ExportQueryContext): Fragment;
  /**
   * One statement: at most `limit` rows after `after` in cursor order, selecting the columns
   * and the cursor's columns; a format with {@link KeysetCsvFormat.keys}: none whose first key
   * is past `until` (null: no upper bound; the end of a shard).
   */
  batch(
    ctx: ExportQueryContext,
    after: CursorValues,
    limit: number,
    until: RecordId | null,
  ): Fragment;
  /** Cells the database cannot write as the file wants them (applied to each row). */
  encode?(row: Record<string, unknown>): Record<string, unknown>;
  /** The impossible times the file meets (the job log reports them). */
  impossibleTimes?: readonly ImpossibleTimeRule[];
}

/**
 * The ids of a batch of a format that declares {@link KeysetCsvFormat.keys}: of the ids `keys`
 * selects, at most `limit` after `after` and none past `until` (null: no upper bound), in id
 * order; `with batch as (${keysetPage(…)})`. A plain subquery: the planner flattens it into
 * the same scan as the predicate written in place.
 */
export function keysetPage(
  sql: ExportQueryContext["sql"],
  keys: Fragment,
  after: RecordId | string,
  until: RecordId | null,
  limit: number,
): Fragment {
  return sql`select k.id from (${keys}) k where k.id > ${after}
    ${upToShardEnd(sql, sql`k.id`, until)} order by k.id limit ${limit}`;
}

/** A rule counting the rows `from` selects whose value is impossible (`possible` false). */
function impossibleRule(
  kind: ImpossibleTimeRule["kind"],
  effect: string,
  possible: (sql: ExportQueryContext["sql"]) => Fragment,
  from: (ctx: ExportQueryContext) => Fragment,
  universe?: ImpossibleTimeRule["universe"],
): ImpossibleTimeRule {
  return {
    kind,
    effect,
    ...(universe === undefined ? {} : { universe }),
    rows: (ctx: ExportQueryContext): Fragment =>
      ctx.sql`select not ${possible(ctx.sql)} as bad ${from(ctx)}`,
  };
}

/**
 * The rule of the formats that write (or aggregate) the detections of the exported
 * occurrences: detections more than a day outside their occurrence's session (issue 23),
 * `boxed`: only those with a real box (antenna-compat §4.1).
 */
export function detectionTimes(
  effect: string,
  options: { boxed?: boolean } = {},
): ImpossibleTimeRule {
  return impossibleRule(
    "detection_time",
    effect,
    (sql) => withinSession(sql, sql`d.timestamp`, sql`o.event_id`),
    ({ sql, ...ctx }) =>
      sql`from occurrences o join detections d on d.occurrence_id = o.id
        where ${occurrencePredicate({ sql, ...ctx })}
          ${options.boxed ? sql`and ${realBox(sql, sql`d.bbox`)}` : sql``}`,
    "detections",
  );
}

/**
 * The rule of the formats that write session intervals: sessions `e` (the events `from`
 * selects, a `from events e …` clause) whose end precedes their start (issue 23).
 */
export function sessionIntervals(
  effect: string,
  from: (ctx: ExportQueryContext) => Fragment,
): ImpossibleTimeRule {
  return impossibleRule(
    "session_interval",
    effect,
    (sql) => possibleInterval(sql, sql`e.start`, sql`e."end"`),
    from,
  );
}

/**
 * The {@link ContentEntry} of each of `columns`, from `meanings`; a column without a meaning,
 * or a meaning of no column, is a programming error of the format's declaration.
 */
export function columnContents(
  key: string,
  columns: readonly string[],
  meanings: Readonly<Record<string, ColumnMeaning>>,
): ContentEntry[] {
  const missing = columns.filter((c) => !Object.hasOwn(meanings, c));
  const extra = Object.keys(meanings).filter((c) => !columns.includes(c));
  if (missing.length > 0 || extra.length > 0) {
    throw new Error(
      `format ${key}: columns without a meaning: ${missing.join(", ") || "none"}; ` +
        `meanings of no column: ${extra.join(", ") || "none"}`,
    );
  }
  return columns.map((name) => ({ name, ...meanings[name] }));
}

/** Greater than every id (the largest `bigint`): a cursor after every row of its first key. */
/** Past every id (bigint's maximum): a cursor key that starts after every row of a first key. */
export const AFTER_EVERY_ID = "9223372036854775807";

/** `occurrence_id` → `occurrenceId`. */
function camelCase(column: string): string {
  return column.replace(/_([a-z])/g, (_, ch: string) => ch.toUpperCase());
}

/** The keys' values in `row` (or their starts when there is no row). */
function cursorOf(
  keys: readonly CursorKey[],
  row: Record<string, unknown> | undefined,
): Record<string, RecordId | string> {
  return Object.fromEntries(keys.map((k) => {
    if (row === undefined) return [k.column, k.start ?? 0];
    const value = row[k.column];
    return [k.column, k.start === undefined ? recordId(value) : String(value)];
  }));
}

interface KeysetState {
  [key: string]: StreamState;
  phase: "header" | "rows" | "done";
  records: number;
}

/**
 * The exporter of a keyset CSV declaration. Rows are encoded in the {@link csvDialect}; every
 * format accepts `excel_compatible` and `columns` (the same declaration over the chosen columns:
 * the header and each row's cells are the full file's, projected, since every cell is encoded on
 * its own and the cursor reads the row, not the written cells). A batch of fewer than `limit` rows ends the file.
 */
export function keysetCsv(format: KeysetCsvFormat): RecordExporter | StreamExporter {
  const { columns, cursor: keys } = format;
  const meanings = format.meanings ?? columnMeanings(format.key);
  const contents = columnContents(format.key, columns, meanings);
  const { keys: keysOf } = format;
  if (
    keysOf !== undefined &&
    (keys[0].start !== undefined || keys.some((k) => k.start !== undefined && k.end === undefined))
  ) {
    throw new Error(
      `format ${format.key}: only a format whose first key is an id and whose text keys ` +
        "declare their end declares keys",
    );
  }
  const countOf = format.count ??
    (keysOf && ((ctx) => ctx.sql`select count(*)::bigint as n from (${keysOf(ctx)}) k`));
  if (countOf === undefined) throw new Error(`format ${format.key}: no count and no keys`);
  const rows = async (
    ctx: ExportQueryContext,
    after: CursorValues,
    limit: number,
    until: RecordId | null = null,
  ): Promise<Record<string, unknown>[]> => {
    const found = await format.batch(ctx, after, limit, until) as Record<string, unknown>[];
    return format.encode ? found.map(format.encode) : found;
  };
  const info = {
    key: format.key,
    label: format.label,
    description: format.description,
    extension: "csv",
    contentType: "text/csv",
    acceptedFilters: format.acceptedFilters,
    acceptedOptions: ["excel_compatible", "columns"] as const,
    columns,
    contents,
    withColumns: (chosen: readonly string[]): RecordExporter | StreamExporter =>
      keysetCsv({
        ...format,
        columns: chosen,
        meanings: Object.fromEntries(chosen.map((c) => [c, meanings[c]])),
      }),
    ...(format.revision === undefined ? {} : { revision: format.revision }),
    async count(ctx: ExportQueryContext): Promise<number> {
      const [row] = await countOf(ctx);
      return Number(row.n);
    },
    ...(format.impossibleTimes === undefined ? {} : {
      async impossibleTimes(ctx: ExportQueryContext): Promise<ImpossibleTimeCount[]> {
        return await countImpossibleTimes(
          ctx.sql,
          (format.impossibleTimes ?? []).map((r) => ({ ...r, rows: r.rows(ctx) })),
          ctx.projectId,
        );
      },
    }),
  };
  if (keys.length === 1 && keys[0].start === undefined) {
    const column = keys[0].column;
    return {
      ...info,
      prologue: (): string => csvHeader(columns),
      ...(keysOf === undefined ? {} : {
        shardBounds: async (ctx: ExportQueryContext, every: number): Promise<RecordId[]> =>
          (await keyShardBounds(ctx, keysOf(ctx), every)).map((bound) => bound.id),
      }),
      async fetchBatch(ctx, cursor): Promise<EncodedBatch> {
        const after = { [column]: cursor.afterId ?? 0 };
        const found = await rows(ctx, after, cursor.limit, cursor.untilId ?? null);
        const last = found.at(-1);
        return {
          records: found.length,
          lastId: last === undefined ? null : recordId(last[column]),
          text: csvRecords(found, columns),
        };
      },
      epilogue: (): string => "",
    };
  }
  const field = (k: CursorKey): string => k.state ?? camelCase(k.column);
  const stateOf = (phase: KeysetState["phase"], at: CursorValues, records: number): KeysetState =>
    ({
      phase,
      ...Object.fromEntries(keys.map((k) => [field(k), at[k.column]])),
      records,
    }) as KeysetState;
  // a shard starts after every row of its first key's `afterId`: the next keys at their end
  const shardStart = (afterId: RecordId | null): CursorValues =>
    afterId === null ? cursorOf(keys, undefined) : Object.fromEntries(
      keys.map((k, i) => [k.column, i === 0 ? afterId : k.end ?? AFTER_EVERY_ID]),
    );
  const streamOf = (range: ShardRange): StreamExporter => ({
    ...info,
    kind: "stream",
    initialState: (): StreamState =>
      stateOf(range.first ? "header" : "rows", shardStart(range.afterId), range.recordsBefore),
    ...(keysOf === undefined ? {} : {
      shardBounds: (ctx: ExportQueryContext, every: number): Promise<ShardBound[]> =>
        keyShardBounds(ctx, keysOf(ctx), every),
      shard: streamOf,
    }),
    async next(ctx, raw, options): Promise<StreamChunk> {
      const state = raw as KeysetState;
      if (state.phase === "header") {
        return {
          data: csvHeader(columns),
          records: 0,
          state: { ...state, phase: "rows" },
          done: false,
        };
      }
      if (state.phase === "done") return { data: "", records: 0, state, done: true };
      const at = Object.fromEntries(keys.map((k) => [k.column, state[field(k)] as RecordId]));
      const found = await rows(ctx, at, options.limit, range.untilId);
      const done = found.length < options.limit;
      const next = found.length === 0 ? at : cursorOf(keys, found.at(-1));
      return {
        data: csvRecords(found, columns),
        records: found.length,
        state: stateOf(done ? "done" : "rows", next, state.records + found.length),
        done,
      };
    },
  });
  // the whole export is its only shard: the states and bytes of an unsharded export
  return streamOf({ afterId: null, untilId: null, recordsBefore: 0, first: true, last: true });
}
