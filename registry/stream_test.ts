import { assertEquals } from "../tests/assert.ts";
import { asStream, shardStream } from "./stream.ts";
import type { ExportQueryContext, RecordExporter, StreamState } from "./types.ts";

/** A record exporter over an in-memory list of ids (pure: no database). */
function listExporter(ids: number[]): RecordExporter {
  return {
    key: "list",
    label: "List",
    description: "ids",
    extension: "txt",
    contentType: "text/plain",
    acceptedFilters: [],
    count: () => Promise.resolve(ids.length),
    prologue: () => "<",
    epilogue: () => ">",
    fetchBatch(_ctx, { afterId, limit, recordsBefore, untilId }) {
      const batch = ids.filter((id) =>
        (afterId === null || id > Number(afterId)) && (untilId == null || id <= Number(untilId))
      ).slice(0, limit);
      const text = batch.map((id, i) => (recordsBefore + i > 0 ? "," : "") + id).join("");
      return Promise.resolve({ records: batch.length, lastId: batch.at(-1) ?? null, text });
    },
  };
}

const ctx = {} as ExportQueryContext;

async function drain(
  ids: number[],
  limit: number,
  from?: StreamState,
): Promise<{ text: string; states: StreamState[] }> {
  const stream = asStream(listExporter(ids));
  let state = from ?? stream.initialState(ctx);
  let text = "";
  const states: StreamState[] = [];
  for (let done = false; !done;) {
    const chunk = await stream.next(ctx, state, { limit });
    text += chunk.data;
    state = chunk.state;
    states.push(state);
    done = chunk.done;
  }
  return { text, states };
}

Deno.test("asStream: prologue, batches with separators, epilogue", async () => {
  assertEquals((await drain([1, 2, 3, 5, 8], 2)).text, "<1,2,3,5,8>");
  assertEquals((await drain([1, 2, 3, 4], 2)).text, "<1,2,3,4>");
  assertEquals((await drain([], 2)).text, "<>");
});

Deno.test("asStream: resuming from any intermediate state gives the same remaining bytes", async () => {
  const ids = [3, 4, 9, 10, 11, 20, 21];
  const full = await drain(ids, 2);
  let prefix = "";
  const stream = asStream(listExporter(ids));
  let state = stream.initialState(ctx);
  for (const saved of full.states) {
    const rest = await drain(ids, 2, state);
    assertEquals(prefix + rest.text, full.text);
    const chunk = await stream.next(ctx, state, { limit: 2 });
    prefix += chunk.data;
    state = saved;
  }
});

Deno.test("shardStream: shards cut at any ids concatenate to the unsharded bytes", async () => {
  const ids = [3, 4, 9, 10, 11, 20, 21, 30];
  for (const limit of [1, 2, 3, 100]) {
    const whole = (await drain(ids, limit)).text;
    for (const bounds of [[4], [9, 20], [3, 4, 9, 10, 11, 20, 21], [11]]) {
      let text = "";
      for (let k = 0; k <= bounds.length; k++) {
        const afterId = k === 0 ? null : bounds[k - 1];
        const stream = shardStream(listExporter(ids), {
          afterId,
          untilId: k === bounds.length ? null : bounds[k],
          recordsBefore: afterId === null ? 0 : ids.indexOf(afterId) + 1,
          first: k === 0,
          last: k === bounds.length,
        });
        let state = stream.initialState(ctx);
        for (let done = false; !done;) {
          const chunk = await stream.next(ctx, state, { limit });
          text += chunk.data;
          state = chunk.state;
          done = chunk.done;
        }
      }
      assertEquals(text, whole, `limit ${limit}, bounds ${bounds}`);
    }
  }
});
