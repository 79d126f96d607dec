/**
 * The exporter contract. An export format is one file in `registry/formats/` that builds an
 * {@link Exporter} and registers it in `registry/mod.ts`.
 */
import type { Sql } from "../db/client.ts";

/** Filters an export may carry; each exporter declares which ones it accepts. */
export interface ExportFilters {
  collection_id?: number;
}

/** Names of the filters (keys of {@link ExportFilters}). */
export type FilterKey = keyof ExportFilters;

/** What an exporter needs to query its records. */
export interface ExportQueryContext {
  sql: Sql;
  projectId: number;
  filters: ExportFilters;
}

/** One batch of encoded records, in id order. */
export interface EncodedBatch {
  /** Records in this batch (0 means the export has no more records). */
  records: number;
  /** Id of the last record in the batch: the keyset cursor for the next one. */
  lastId: number | null;
  /** The encoded bytes of these records, ready to append to the file. */
  text: string;
}

/** A registered export format. */
export interface Exporter {
  key: string;
  label: string;
  description: string;
  /** File extension without the dot. */
  extension: string;
  contentType: string;
  acceptedFilters: readonly FilterKey[];
  /** Number of records the export will contain (one statement). */
  count(ctx: ExportQueryContext): Promise<number>;
  /** Bytes before the first record (CSV header, `[`). */
  prologue(): string;
  /**
   * The next batch after `afterId` (null: from the start), at most `limit` records, encoded.
   * `recordsBefore` lets formats place separators (`,` between JSON array items).
   * Must run a constant number of statements, whatever the batch size.
   */
  fetchBatch(
    ctx: ExportQueryContext,
    cursor: { afterId: number | null; limit: number; recordsBefore: number },
  ): Promise<EncodedBatch>;
  /** Bytes after the last record (`]`). */
  epilogue(): string;
}
