/**
 * The occurrence record formats (`occurrences_simple_csv`, `occurrences_api_json`,
 * `occurrences_ndjson`): one record per valid occurrence in id order, every occurrence filter,
 * the shared count and shard bounds (`registry/filters.ts`; README, Sharded exports). A format
 * declares only its bytes: what comes before the first record, its batches, what comes after.
 */
import { countOccurrences, occurrenceFilterKeys, occurrenceShardBounds } from "./filters.ts";
import type { ExporterInfo, RecordExporter } from "./types.ts";

/** What an occurrence record format declares. */
export interface OccurrenceRecordFormat extends Omit<ExporterInfo, "acceptedFilters" | "count"> {
  /** Bytes before the first record (CSV header, `[`). */
  prologue: string;
  /** Bytes after the last record (`]`). */
  epilogue: string;
  fetchBatch: RecordExporter["fetchBatch"];
}

/** The record exporter of an occurrence record format (shardable). */
export function occurrenceRecords(format: OccurrenceRecordFormat): RecordExporter {
  const { prologue, epilogue, ...info } = format;
  return {
    ...info,
    acceptedFilters: occurrenceFilterKeys,
    count: countOccurrences,
    shardBounds: occurrenceShardBounds,
    prologue: (): string => prologue,
    epilogue: (): string => epilogue,
  };
}
