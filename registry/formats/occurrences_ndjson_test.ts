import { assertEquals } from "../../tests/assert.ts";
import { assertResumable, drainStream } from "../../tests/stream_drain.ts";
import { occurrencesApiJson } from "./occurrences_api_json.ts";
import { occurrencesNdjson } from "./occurrences_ndjson.ts";
import { smallProjectTest } from "./test_support.ts";

const decoder = new TextDecoder();

smallProjectTest(
  "occurrences_ndjson: the occurrences_api_json objects, one per line",
  async ({ p, ctx }) => {
    const { bytes, records } = await assertResumable(occurrencesNdjson, ctx, 1);
    const text = decoder.decode(bytes);
    assertEquals(text.endsWith("\n"), true);
    const lines = text.slice(0, -1).split("\n").map((line) => JSON.parse(line));
    assertEquals(lines.map((o) => o.id), p.validIds);
    assertEquals(records, p.validIds.length);
    const array = JSON.parse(
      decoder.decode((await drainStream(occurrencesApiJson, ctx, { limit: 3 })).bytes),
    );
    assertEquals(lines, array);
    const none = await drainStream(occurrencesNdjson, {
      ...ctx,
      filters: { collection_id: p.emptyCollectionId },
    }, { limit: 3 });
    assertEquals(none.bytes.length, 0);
  },
);
