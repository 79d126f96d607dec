/**
 * Drives an exporter the way the export activity does (chunk after chunk, state round-tripped
 * through JSON as in a heartbeat checkpoint) and checks that resuming from every intermediate
 * state yields exactly the bytes of an uninterrupted run.
 */
import { asStream } from "../registry/stream.ts";
import type { Exporter, ExportQueryContext, SideStore, StreamState } from "../registry/types.ts";
import { concat } from "../storage/test_support.ts";
import { assert, assertEquals } from "./assert.ts";

const encoder = new TextEncoder();

/** The stream from `from` (default: the start) to its end. */
export async function drainStream(
  exporter: Exporter,
  ctx: ExportQueryContext,
  options: { limit: number; from?: StreamState; side?: SideStore; maxRecords?: number },
): Promise<
  { bytes: Uint8Array; records: number; rows: number; states: StreamState[]; chunks: Uint8Array[] }
> {
  const stream = asStream(exporter);
  let state: StreamState = options.from ?? JSON.parse(JSON.stringify(stream.initialState(ctx)));
  const states: StreamState[] = [state];
  const chunks: Uint8Array[] = [];
  let records = 0;
  let rows = 0; // what batch sizing sees: the rows each chunk's limit counted
  for (let done = false; !done;) {
    const chunk = await stream.next(ctx, state, {
      limit: options.limit,
      maxRecords: options.maxRecords,
      side: options.side,
    });
    assert(chunk.records <= options.limit, `chunk of ${chunk.records} over ${options.limit}`);
    const counted = chunk.rows ?? chunk.records;
    assert(counted <= options.limit, `chunk of ${counted} rows over ${options.limit}`);
    rows += counted;
    chunks.push(typeof chunk.data === "string" ? encoder.encode(chunk.data) : chunk.data);
    records += chunk.records;
    state = JSON.parse(JSON.stringify(chunk.state));
    states.push(state);
    done = chunk.done;
    assert(chunks.length < 100_000, "the stream does not end");
  }
  return { bytes: concat(...chunks), records, rows, states, chunks };
}

/**
 * Runs the whole stream, then resumes from the state after every chunk: each resumed run must
 * give the remaining bytes exactly. Returns the bytes and the record count of the full run.
 */
export async function assertResumable(
  exporter: Exporter,
  ctx: ExportQueryContext,
  limit: number,
): Promise<{ bytes: Uint8Array; records: number }> {
  const full = await drainStream(exporter, ctx, { limit });
  assert(full.chunks.length >= 3, `only ${full.chunks.length} chunks: nothing to resume`);
  for (let i = 1; i < full.states.length - 1; i++) {
    const rest = await drainStream(exporter, ctx, { limit, from: full.states[i] });
    const prefix = concat(...full.chunks.slice(0, i));
    assertEquals(
      concat(prefix, rest.bytes),
      full.bytes,
      `resuming after chunk ${i} changed the bytes`,
    );
  }
  return { bytes: full.bytes, records: full.records };
}

/**
 * The error message of draining `exporter` over `ctx` in batches of 50 (`""` when it ends
 * without one): what a refused export says.
 */
export async function refusalOf(exporter: Exporter, ctx: ExportQueryContext): Promise<string> {
  let refused = "";
  await drainStream(exporter, ctx, { limit: 50 }).catch((e) => (refused = String(e)));
  return refused;
}

/**
 * A side store in memory (`SideStore`, registry/types.ts), with its objects by name: what the
 * export activities keep in storage (activities/side_store.ts).
 */
export function memorySideStore(): SideStore & { objects: Map<string, Uint8Array> } {
  const objects = new Map<string, Uint8Array>();
  return {
    objects,
    put(name: string, data: Uint8Array): Promise<void> {
      objects.set(name, data.slice());
      return Promise.resolve();
    },
    get(name: string): Promise<Uint8Array | null> {
      return Promise.resolve(objects.get(name)?.slice() ?? null);
    },
  };
}
