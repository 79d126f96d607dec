/** Inputs and outputs of the export activities; workflows import these as types only. */
import type { StreamState } from "../registry/types.ts";
import type { UploadState } from "../storage/types.ts";

/** What the workflow needs to know about the exporter (no functions: it crosses Temporal). */
export interface ResolvedExport {
  exportId: number;
  format: string;
  extension: string;
  contentType: string;
  fileKey: string;
}

/**
 * A heartbeat checkpoint of `exportRecords`: only state that is already durable in storage, so a
 * retried attempt can resume exactly from it.
 */
export interface ExportCheckpoint {
  /**
   * The exporter's stream state after the durable bytes (for record formats: the keyset cursor
   * `afterId`, the id of the last record written).
   */
  state: StreamState;
  /** Records inside the durable bytes. */
  records: number;
  upload: UploadState;
  /** Serialized SHA-256 state over the durable bytes (base64), so the checksum survives resume. */
  hashState: string;
  /**
   * Record limit of the batch after the durable bytes, so a resumed attempt cuts the same
   * batches as an uninterrupted one: formats whose bytes depend on batch boundaries (Parquet row
   * groups, per-chunk compression in zip formats) then stay byte-identical. Absent in
   * checkpoints written before it existed (the first-batch limit is used then).
   */
  batchLimit?: number;
}

/** Heartbeat details of `exportRecords`, as seen in the Temporal UI. */
export interface ExportHeartbeat {
  checkpoint: ExportCheckpoint;
  /** Records produced so far in this attempt, durable or still buffered. */
  recordsExported: number;
  totalRecords: number;
}

/** Result of `exportRecords`: every byte is uploaded, the object is not yet published. */
export interface ExportedFile {
  records: number;
  bytes: number;
  checksum: string;
  upload: UploadState;
}

/** What one housekeeping sweep removed. */
export interface HousekeepingReport {
  /** Incomplete uploads aborted: no running export owns them. */
  abortedUploads: { key: string; uploadId: string }[];
  /** Published files removed: their export row no longer exists. */
  removedFiles: string[];
}
