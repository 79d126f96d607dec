/**
 * Batch sizing by bytes: a batch holds at most `maxRecords` records and about `targetBytes`
 * bytes, so memory stays flat whether a record is a 400-byte CSV row or a 4 KB JSON document
 * with its detections. Record formats produce the same bytes whatever the batch boundaries, so
 * resizing between batches never changes the file.
 */

/** The record limit of the next batch, from what the last batch weighed. */
export function nextBatchLimit(
  last: { records: number; bytes: number },
  options: { maxRecords: number; targetBytes: number },
): number {
  if (last.records === 0 || last.bytes === 0) return options.maxRecords;
  const perRecord = last.bytes / last.records;
  const fits = Math.floor(options.targetBytes / perRecord);
  return Math.max(1, Math.min(options.maxRecords, fits));
}
