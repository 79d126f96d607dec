/** Adapts any exporter to the resumable stream form the export activity consumes. */
import { UTF8_BOM } from "./encoding.ts";
import type {
  Exporter,
  ExportQueryContext,
  RecordExporter,
  RecordId,
  ShardRange,
  StreamChunk,
  StreamExporter,
  StreamState,
} from "./types.ts";

interface RecordStreamState {
  [key: string]: StreamState;
  phase: "prologue" | "records" | "done";
  afterId: RecordId | null;
  records: number;
}

/** The exporter as a stream; record exporters become prologue → batches → epilogue. */
export function asStream(exporter: Exporter): StreamExporter {
  if (exporter.kind === "stream") return exporter;
  // the whole export is its only shard: same states, same bytes
  return shardStream(exporter, WHOLE_EXPORT);
}

export type { ShardRange } from "./types.ts";

/** The shard that is the whole export (what {@link asStream} streams). */
const WHOLE_EXPORT: ShardRange = {
  afterId: null,
  untilId: null,
  recordsBefore: 0,
  first: true,
  last: true,
};

/**
 * One shard of a record export as a stream: the prologue when it is the first, the records in
 * `(afterId, untilId]` in keyset batches, the epilogue when it is the last. The shards' bytes
 * concatenated in order are the bytes of the whole export ({@link asStream}), because a record's
 * bytes depend only on the record and on how many precede it. Its state (`phase`, `afterId`,
 * `records`: of the whole export, this shard's included) is what a checkpoint stores.
 */
export function shardStream(exporter: RecordExporter, shard: ShardRange): StreamExporter {
  const finish = (state: RecordStreamState, data: string): StreamChunk => ({
    data: shard.last ? data + exporter.epilogue() : data,
    records: 0,
    state: { ...state, phase: "done" },
    done: true,
  });
  // a shard's stream is not cut again (a stream's shard bounds have another shape)
  const { shardBounds: _bounds, ...info } = exporter;
  return {
    ...info,
    kind: "stream",
    initialState(): StreamState {
      return {
        phase: "prologue",
        afterId: shard.afterId,
        records: shard.recordsBefore,
      } satisfies RecordStreamState;
    },
    async next(ctx, raw, options): Promise<StreamChunk> {
      const state = raw as RecordStreamState;
      if (state.phase === "prologue") {
        return {
          data: shard.first ? exporter.prologue() : "",
          records: 0,
          state: { ...state, phase: "records" },
          done: false,
        };
      }
      if (state.phase === "done") return { data: "", records: 0, state, done: true };
      const batch = await exporter.fetchBatch(ctx, {
        afterId: state.afterId,
        limit: options.limit,
        recordsBefore: state.records,
        untilId: shard.untilId,
      });
      const after: RecordStreamState = {
        phase: "records",
        afterId: batch.lastId ?? state.afterId,
        records: state.records + batch.records,
      };
      if (batch.records < options.limit) {
        return { ...finish(after, batch.text), records: batch.records };
      }
      return { data: batch.text, records: batch.records, state: after, done: false };
    },
  };
}

interface BomState {
  [key: string]: StreamState;
  /** True until the first chunk (which gets the byte order mark) is written. */
  bom: boolean;
  inner: StreamState;
}

/**
 * The stream with a UTF-8 byte order mark before its first byte (the `excel_compatible`
 * option of the CSV formats; Unicode §23.8 allows a BOM as a UTF-8 signature and Excel needs it
 * to read CSV as UTF-8). Its state wraps the inner one, so a resumed export writes the mark
 * exactly once.
 */
export function withByteOrderMark(stream: StreamExporter): StreamExporter {
  return {
    ...stream,
    initialState(ctx: ExportQueryContext): StreamState {
      return { bom: true, inner: stream.initialState(ctx) } satisfies BomState;
    },
    async next(ctx, raw, options): Promise<StreamChunk> {
      const state = raw as BomState;
      const chunk = await stream.next(ctx, state.inner, options);
      const data = !state.bom
        ? chunk.data
        : typeof chunk.data === "string"
        ? UTF8_BOM + chunk.data
        : new Uint8Array([...new TextEncoder().encode(UTF8_BOM), ...chunk.data]);
      return { ...chunk, data, state: { bom: false, inner: chunk.state } satisfies BomState };
    },
  };
}
