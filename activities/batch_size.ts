/**
 * Batch sizing by bytes: a batch holds at most `maxRecords` records and about `targetBytes`
 * bytes, so memory stays flat whether a record is a 400-byte CSV row or a 4 KB JSON document
 * with its detections. Record formats produce the same bytes whatever the batch boundaries, so
 * resizing between batches never changes the file.
 */

/**
 * The record limit of the next batch, from what the last batch weighed. A chunk without records
 * (a header, a prologue) or without bytes tells nothing: the limit stays `current` (so a JSON
 * export's `[` does not open the way to a 5,000-document batch).
 */
export function nextBatchLimit(
  last: { records: number; bytes: number },
  options: { maxRecords: number; targetBytes: number; current: number },
): number {
  if (last.records === 0 || last.bytes === 0) return options.current;
  const perRecord = last.bytes / last.records;
  const fits = Math.floor(options.targetBytes / perRecord);
  return Math.max(1, Math.min(options.maxRecords, fits));
}

/**
 * Records in the first batch of an export, before any batch has been weighed: small, so that
 * the first batch stays within `EXPORT_BATCH_MB` for every format (an API JSON document is
 * ~17 KB since antenna-compat, so 5,000 of them were an 85 MB string; issue 15, point 3 and
 * shared/notes/deno-http2-goaway-crash.md §7.3). The second batch is sized by bytes.
 */
export const FIRST_BATCH_RECORDS = 50;

/** The record limit of an export's first batch (see {@link FIRST_BATCH_RECORDS}). */
export function firstBatchLimit(options: { maxRecords: number }): number {
  return Math.max(1, Math.min(options.maxRecords, FIRST_BATCH_RECORDS));
}
