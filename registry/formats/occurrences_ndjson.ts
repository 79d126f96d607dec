/**
 * `occurrences_ndjson`: the objects of `occurrences_api_json`, one per line (newline-delimited
 * JSON), easy to stream into other tools. Same SQL, same filters, same count.
 */
import { countOccurrences, occurrenceFilterKeys } from "../filters.ts";
import type { EncodedBatch, ExportQueryContext, RecordExporter } from "../types.ts";
import { occurrenceDocuments } from "./occurrences_api_json.ts";

async function fetchBatch(
  ctx: ExportQueryContext,
  cursor: { afterId: number | null; limit: number; recordsBefore: number },
): Promise<EncodedBatch> {
  const rows = await occurrenceDocuments(ctx, cursor);
  if (rows.length === 0) return { records: 0, lastId: null, text: "" };
  return {
    records: rows.length,
    lastId: Number(rows[rows.length - 1].id),
    text: rows.map((row) => row.doc + "\n").join(""),
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
  prologue(): string {
    return "";
  },
  fetchBatch,
  epilogue(): string {
    return "";
  },
};
