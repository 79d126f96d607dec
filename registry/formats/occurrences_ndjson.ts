/**
 * `occurrences_ndjson`: the objects of `occurrences_api_json`, one per line (newline-delimited
 * JSON), easy to stream into other tools. Same SQL, same filters, same count. Raw U+0085,
 * U+2028 and U+2029 are escaped (`jsonLineSafe`) so that every reader sees one record per line.
 */
import { jsonLineSafe } from "../encoding.ts";
import { countOccurrences, occurrenceFilterKeys, occurrenceShardBounds } from "../filters.ts";
import {
  type EncodedBatch,
  type ExportQueryContext,
  type RecordExporter,
  type RecordId,
  recordId,
} from "../types.ts";
import { occurrenceDocuments } from "./occurrences_api_json.ts";

async function fetchBatch(
  ctx: ExportQueryContext,
  cursor: {
    afterId: RecordId | null;
    limit: number;
    recordsBefore: number;
    untilId?: RecordId | null;
  },
): Promise<EncodedBatch> {
  const rows = await occurrenceDocuments(ctx, cursor);
  if (rows.length === 0) return { records: 0, lastId: null, text: "" };
  return {
    records: rows.length,
    lastId: recordId(rows[rows.length - 1].id),
    // one record per line, also for readers that split on U+2028, U+2029 or U+0085
    text: rows.map((row) => jsonLineSafe(row.doc) + "\n").join(""),
  };
}

/** Occurrences as newline-delimited JSON (`occurrences_ndjson`). */
export const occurrencesNdjson: RecordExporter = {
  key: "occurrences_ndjson",
  label: "Occurrences (NDJSON)",
  description: "The occurrence objects of occurrences_api_json, one JSON object per line",
  extension: "ndjson",
  contentType: "application/x-ndjson",
  acceptedFilters: occurrenceFilterKeys,
  count: countOccurrences,
  shardBounds: occurrenceShardBounds,
  prologue(): string {
    return "";
  },
  fetchBatch,
  epilogue(): string {
    return "";
  },
};
