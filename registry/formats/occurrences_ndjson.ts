/**
 * `occurrences_ndjson`: the objects of `occurrences_api_json`, one per line (newline-delimited
 * JSON), easy to stream into other tools. Same SQL, same filters, same count. Raw U+0085,
 * U+2028 and U+2029 are escaped (`jsonLineSafe`) so that every reader sees one record per line.
 */
import { jsonLineSafe } from "../encoding.ts";
import { occurrenceRecords } from "../occurrence_records.ts";
import { documentBatch, occurrenceObjectContents } from "./occurrences_api_json.ts";

/** Occurrences as newline-delimited JSON (`occurrences_ndjson`). */
export const occurrencesNdjson = occurrenceRecords({
  key: "occurrences_ndjson",
  label: "Occurrences (NDJSON)",
  contents: occurrenceObjectContents,
  description: "The occurrence objects of occurrences_api_json, one JSON object per line",
  extension: "ndjson",
  contentType: "application/x-ndjson",
  prologue: "",
  // one record per line, also for readers that split on U+2028, U+2029 or U+0085
  fetchBatch: (ctx, cursor) =>
    documentBatch(ctx, cursor, (docs) => docs.map((doc) => jsonLineSafe(doc) + "\n").join("")),
  epilogue: "",
});
