/** Inputs and outputs of the export activities; workflows import these as types only. */
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
  /** Keyset cursor: id of the last record inside the durable bytes (null: none yet). */
  afterId: number | null;
  /** Records inside the durable bytes. */
  records: number;
  /** Whether the prologue (CSV header, `[`) is inside the durable bytes. */
  prologueWritten: boolean;
  upload: UploadState;
  /** Serialized SHA-256 state over the durable bytes (base64), so the checksum survives resume. */
  hashState: string;
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
