/**
 * The object-storage contract shared by the S3 and filesystem backends.
 *
 * Uploads are resumable: an {@link UploadState} holds only what is already durable (uploaded S3
 * parts, an fsynced file length), so a retried activity can continue from any checkpoint it
 * received through a heartbeat, and re-upload later parts under the same part numbers.
 */

/** One durable part of a multipart upload. */
export interface UploadedPart {
  partNumber: number;
  etag: string;
  size: number;
}

/** Serializable state of an upload in progress; lives in heartbeat checkpoints. */
export interface UploadState {
  backend: "s3" | "fs";
  key: string;
  contentType: string;
  /** S3 multipart upload id, or the temp file name for the filesystem backend. */
  uploadId: string;
  parts: UploadedPart[];
  /** Durable bytes written so far (the sum of the part sizes). */
  bytes: number;
}

/**
 * An upload as a checkpoint names it (issue 14): the part count, the durable bytes and a digest of
 * the parts instead of every part; `recoverUpload` rebuilds the part list (upload_ref.ts).
 */
export interface UploadRef {
  backend: "s3" | "fs";
  key: string;
  contentType: string;
  uploadId: string;
  /** Parts 1..partCount are durable (S3); the filesystem backend ignores it. */
  partCount: number;
  /** Durable bytes: the sum of the part sizes / the fsynced file length. */
  bytes: number;
  /** `partsDigest` (upload_ref.ts) of parts 1..partCount (S3). */
  partsDigest: string;
}

/** An incomplete upload found in storage (for the housekeeping sweep). */
export interface IncompleteUpload {
  key: string;
  uploadId: string;
  initiated?: Date;
}

/** Object storage used by exports. */
export interface ObjectStorage {
  readonly backend: "s3" | "fs";
  /** Makes sure the bucket / directory exists. Idempotent. */
  ensureReady(): Promise<void>;
  /** Starts an upload for `key` (nothing is visible at `key` until completed). */
  beginUpload(key: string, contentType: string): Promise<UploadState>;
  /** Durably appends `chunk` as the next part; returns the new state. */
  appendPart(state: UploadState, chunk: Uint8Array): Promise<UploadState>;
  /**
   * Prepares to continue an upload from a checkpointed state (the filesystem backend truncates
   * bytes written after the checkpoint). Throws if the upload no longer exists.
   */
  resumeUpload(state: UploadState): Promise<UploadState>;
  /**
   * Like {@link ObjectStorage.resumeUpload} from a compact checkpoint: rebuilds the durable part
   * list from storage (S3 ListParts: parts 1..partCount, which must match the ref's byte count
   * and digest, else an error saying the upload "does not match the checkpoint"). Throws
   * `UploadNotFoundError` when the upload no longer exists.
   */
  recoverUpload(ref: UploadRef): Promise<UploadState>;
  /** Publishes the object at `state.key`; returns its size. Idempotent once completed. */
  completeUpload(state: UploadState): Promise<{ size: number }>;
  /** Discards an incomplete upload and every part of it. Idempotent. */
  abortUpload(state: Pick<UploadState, "key" | "uploadId">): Promise<void>;
  /**
   * Publishes at `key` the concatenation of the published objects `sources` (each with its size
   * in bytes, which must match) in order, and returns the size. S3 composes server-side
   * (`UploadPartCopy`, small sources merged first: see `storage/compose.ts`); the filesystem
   * backend concatenates into an fsynced temp file renamed into place. Nothing is visible at
   * `key` until it is complete; the sources are left as they are. Throws when a source is
   * missing or of another size; a failed attempt leaves at most an incomplete upload at `key`.
   */
  composeObject(
    key: string,
    contentType: string,
    sources: readonly { key: string; size: number }[],
  ): Promise<{ size: number }>;
  /**
   * The bytes of a published object as a stream (flat memory), or only those of `range`
   * (`[start, end)`, byte offsets, non-empty). Rejects when the object does not exist.
   */
  readObject(
    key: string,
    range?: { start: number; end: number },
  ): Promise<ReadableStream<Uint8Array>>;
  /** Size of a published object, or null when there is none. */
  headObject(key: string): Promise<{ size: number } | null>;
  /** Deletes a published object; no error if it is missing. */
  deleteObject(key: string): Promise<void>;
  /** A short-lived URL that downloads the object (presigned for S3, signed for fs). */
  downloadUrl(
    key: string,
    options: { expiresInSeconds: number; filename?: string },
  ): Promise<string>;
  /** Published object keys under `prefix`. */
  listObjects(prefix: string): Promise<string[]>;
  /** Uploads begun under `prefix` but never completed nor aborted. */
  listIncompleteUploads(prefix: string): Promise<IncompleteUpload[]>;
}
