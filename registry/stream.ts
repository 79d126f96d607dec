/** Adapts any exporter to the resumable stream form the export activity consumes. */
import { UTF8_BOM } from "./encoding.ts";
import type {
  Exporter,
  ExportQueryContext,
  RecordId,
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
  const records = exporter;
  return {
    ...records,
    kind: "stream",
    initialState(): StreamState {
      return { phase: "prologue", afterId: null, records: 0 } satisfies RecordStreamState;
    },
    async next(
      ctx: ExportQueryContext,
      raw: StreamState,
      options: { limit: number },
    ): Promise<StreamChunk> {
      const state = raw as RecordStreamState;
      if (state.phase === "prologue") {
        return {
          data: records.prologue(),
          records: 0,
          state: { ...state, phase: "records" },
          done: false,
        };
      }
      if (state.phase === "done") return { data: "", records: 0, state, done: true };
      const batch = await records.fetchBatch(ctx, {
        afterId: state.afterId,
        limit: options.limit,
        recordsBefore: state.records,
      });
      if (batch.records < options.limit) {
        return {
          data: batch.text + records.epilogue(),
          records: batch.records,
          state: {
            phase: "done",
            afterId: batch.lastId ?? state.afterId,
            records: state.records + batch.records,
          },
          done: true,
        };
      }
      return {
        data: batch.text,
        records: batch.records,
        state: { phase: "records", afterId: batch.lastId, records: state.records + batch.records },
        done: false,
      };
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
    async next(
      ctx: ExportQueryContext,
      raw: StreamState,
      options: { limit: number },
    ): Promise<StreamChunk> {
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
