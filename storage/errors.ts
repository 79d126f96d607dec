/** Errors shared by the storage backends, so callers can react to them whatever the backend. */

/**
 * The upload a checkpoint refers to is gone (aborted, expired, swept, or its temp file lost).
 * Resuming is impossible; the caller has to start the export's upload again from scratch.
 */
export class UploadNotFoundError extends Error {
  constructor(readonly key: string, readonly uploadId: string, detail?: string) {
    super(`upload no longer exists: ${key} (${uploadId})${detail ? `: ${detail}` : ""}`);
    this.name = "UploadNotFoundError";
  }
}

/** An object key that is empty, absolute, or escapes the storage root. */
export class InvalidKeyError extends Error {
  constructor(readonly key: string, reason: string) {
    super(`invalid object key: ${JSON.stringify(key)}: ${reason}`);
    this.name = "InvalidKeyError";
  }
}

/**
 * The storage service did not answer (connection refused, DNS, timeout, 5xx after the SDK's
 * retries). Transient: the caller retries; the message names the storage so that an export
 * that fails after its retries says where its file could not go.
 */
export class StorageUnavailableError extends Error {
  constructor(readonly storage: string, cause: unknown) {
    // no `cause`: Temporal reports an activity failure by its innermost cause's message, and
    // that must be the sentence naming the storage
    super(`storage unreachable: ${storage}: ${cause instanceof Error ? cause.message : cause}`);
    this.name = "StorageUnavailableError";
  }
}
