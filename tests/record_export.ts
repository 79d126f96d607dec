/** Drives a record exporter batch by batch, as the export activity does, checking the contract. */
import type { ExportQueryContext, RecordExporter, RecordId } from "../registry/types.ts";
import { assert, assertEquals } from "./assert.ts";

/** The whole file of `exporter` in batches of `limit`, with the record and batch counts. */
export async function exportAllBatches(
  exporter: RecordExporter,
  ctx: ExportQueryContext,
  limit: number,
): Promise<{ text: string; records: number; batches: number }> {
  let text = exporter.prologue();
  let afterId: RecordId | null = null;
  let records = 0;
  let batches = 0;
  for (;;) {
    const batch = await exporter.fetchBatch(ctx, { afterId, limit, recordsBefore: records });
    if (batch.records === 0) {
      assertEquals(batch.text, "");
      break;
    }
    assert(batch.records <= limit, `batch of ${batch.records} over the limit ${limit}`);
    assert(
      batch.lastId !== null && (afterId === null || BigInt(batch.lastId) > BigInt(afterId)),
    );
    text += batch.text;
    records += batch.records;
    afterId = batch.lastId;
    batches++;
  }
  return { text: text + exporter.epilogue(), records, batches };
}
