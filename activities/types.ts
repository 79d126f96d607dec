/** Inputs and outputs of the export activities; workflows import these as types only. */
import type { RecordId, StreamState } from "../registry/types.ts";
import type { UploadState } from "../storage/types.ts";
import type { SourceVersions } from "../db/snapshot.ts";
import type { UploadRef } from "../storage/types.ts";

/** What the workflow needs to know about the exporter (no functions: it crosses Temporal). */
export interface ResolvedExport {
  exportId: number;
  /** The export's project (search attribute `ProjectId`). */
  projectId: number;
  /** The requesting user's e-mail, or `user <id>` / `nobody` (search attribute `RequestedBy`). */
  requestedBy: string;
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

/** The readable head of `exportRecords` heartbeat details (what an operator reads first). */
export interface HeartbeatProgress {
  /** Records produced so far (durable or still buffered). */
  records: number;
  /** Records the export will hold (countRecords). */
  total: number;
  /** records / total in percent, one decimal (100 when total is 0). */
  percent: number;
  /** Records per second in this attempt since it started (or resumed). */
  rowsPerSecond: number;
  /** Bytes produced so far (durable or still buffered). */
  bytes: number;
  /** Images (crops, frames) left out so far, as in skipped.csv; absent for formats without images. */
  skipped?: number;
}

/**
 * The form of the checkpoints this code writes ({@link CompactCheckpoint.form}). Raise it when a
 * checkpoint's meaning changes so that the previous release would resume it to other bytes (a
 * state field read differently, a unit's values kept apart): that release cannot know, so this
 * number tells it. Every release still resumes checkpoints of every lower form (and of none,
 * written before forms existed); a worker given a checkpoint of a higher form hands it back
 * (a retryable failure, {@link checkpointFormProblem}) for a newer worker to resume, which is
 * what happens mid-rolling deployment (docs/deployment.md, "Upgrading").
 */
export const CHECKPOINT_FORM = 1;

/**
 * Why this worker must not resume `checkpoint`: it was written in a form newer than
 * {@link CHECKPOINT_FORM}; undefined when it may (its form is known, or absent: form 1).
 */
export function checkpointFormProblem(checkpoint: object): string | undefined {
  const form = "form" in checkpoint ? checkpoint.form : 1;
  if (typeof form === "number" && Number.isInteger(form) && form <= CHECKPOINT_FORM) {
    return undefined;
  }
  return `the checkpoint is of form ${JSON.stringify(form)}, written by a newer worker; this ` +
    `worker resumes forms up to ${CHECKPOINT_FORM}: left for a newer worker to resume ` +
    `(a rolling deployment in progress?)`;
}

/**
 * The checkpoint as heartbeats carry it: small whatever the export's size. The upload is an
 * {@link UploadRef} (part count, bytes, parts digest); the part list is recovered from storage
 * (S3 ListParts) on resume.
 */
export interface CompactCheckpoint {
  /** {@link CHECKPOINT_FORM} of the worker that wrote it; absent before forms existed (form 1). */
  form?: number;
  state: StreamState;
  records: number;
  upload: UploadRef;
  /** Serialized SHA-256 state over the durable bytes (base64, ~150 characters). */
  hashState: string;
  /** As in {@link ExportCheckpoint}: the record limit of the next batch. */
  batchLimit?: number;
  /**
   * The snapshot the durable bytes were read in: its change markers and the records it holds.
   * A retried attempt resumes only in a snapshot with equal markers (the same data); absent in
   * checkpoints written before snapshots, which start over.
   */
  snapshot?: { versions: SourceVersions; total: number };
}

/**
 * Heartbeat details of `exportRecords`, as seen in the Temporal UI: the readable progress first,
 * then the checkpoint a retried attempt resumes from.
 */
export interface ExportHeartbeat {
  progress: HeartbeatProgress;
  checkpoint: CompactCheckpoint;
}

/**
 * Heartbeat details written by workers before issue 14 (the full part list in the checkpoint);
 * an attempt started by a newer worker still resumes from them.
 */
export interface LegacyExportHeartbeat {
  checkpoint: ExportCheckpoint;
}

/** Result of `exportRecords`: every byte is uploaded, the object is not yet published. */
export interface ExportedFile {
  records: number;
  bytes: number;
  checksum: string;
  upload: UploadState;
}

/**
 * One shard of a sharded export (see `planShards`): the records `afterId` < id ≤ `untilId` in
 * id order, written to the object `key` under the export's `<file_uuid>/shards/`.
 */
export interface ShardSpec {
  /** 0-based position of the shard in the file. */
  index: number;
  key: string;
  /** null: from the first record. */
  afterId: RecordId | null;
  /** null: to the last record. */
  untilId: RecordId | null;
  /** Records of the export before this shard (the JSON array places its `,` by it). */
  recordsBefore: number;
  /** Records the plan expects in the shard (progress only; the data may have changed). */
  records: number;
  /** The first shard writes the prologue, the last the epilogue. */
  first: boolean;
  last: boolean;
  /**
   * The planner's `EXPORT_BATCH_SIZE`, for formats whose batch boundaries are in the file
   * (Parquet's row groups; absent in plans made before it: the worker's).
   */
  batchRecords?: number;
  /** A unit of an archive sharded member by member (`shardUnits`): the member it writes. */
  member?: number;
  /**
   * A unit that starts from what other units left (`ShardUnit.reads`): their indices, all
   * lower; the workflow starts it once they ended.
   */
  reads?: number[];
}

/** Result of `planShards`; no shards: export unsharded. */
export interface ShardPlan {
  /** `<STORAGE_PREFIX>exports/<file_uuid>/shards/`. */
  prefix: string;
  shards: ShardSpec[];
}

/** Result of `exportShard`: the shard object is published at `key`. */
export interface ExportedShard {
  index: number;
  key: string;
  /** Size of the shard object in bytes. */
  bytes: number;
  records: number;
}

/** What one housekeeping sweep removed. */
export interface HousekeepingReport {
  /** Incomplete uploads aborted: no running export owns them. */
  abortedUploads: { key: string; uploadId: string }[];
  /** Published files removed: their export row no longer exists. */
  removedFiles: string[];
  /** SUCCESS exports whose retention ended: file deleted, now EXPIRED (docs/retention.md). */
  expiredExports?: { id: number; key: string | null }[];
  /** PENDING or STARTED exports whose workflow was gone, now FAILURE (activities/lost_exports.ts). */
  lostExports?: number[];
}
