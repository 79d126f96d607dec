import { assertEquals } from "../tests/assert.ts";
import { FIRST_BATCH_RECORDS, firstBatchLimit, nextBatchLimit } from "./batch_size.ts";

const options = { maxRecords: 5000, targetBytes: 4 * 1024 * 1024, current: 50 };

Deno.test("small records keep the configured batch size", () => {
  assertEquals(nextBatchLimit({ records: 5000, bytes: 5000 * 450 }, options), 5000);
});

Deno.test("large records shrink the batch to about the target bytes", () => {
  const limit = nextBatchLimit({ records: 5000, bytes: 5000 * 3800 }, options);
  assertEquals(limit, Math.floor(options.targetBytes / 3800));
  assertEquals(limit * 3800 <= options.targetBytes, true);
});

Deno.test("a chunk without records keeps the current limit; never below one record", () => {
  assertEquals(nextBatchLimit({ records: 0, bytes: 0 }, options), 50);
  assertEquals(nextBatchLimit({ records: 0, bytes: 120 }, options), 50);
  assertEquals(nextBatchLimit({ records: 2, bytes: 100 * 1024 * 1024 }, options), 1);
});

Deno.test("firstBatchLimit: a small first batch, never above EXPORT_BATCH_SIZE", () => {
  assertEquals(firstBatchLimit({ maxRecords: 5000 }), FIRST_BATCH_RECORDS);
  assertEquals(firstBatchLimit({ maxRecords: 10 }), 10);
  assertEquals(firstBatchLimit({ maxRecords: 0 }), 1);
});
