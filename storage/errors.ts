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
