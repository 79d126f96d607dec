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

/**
 * An object key that is empty, absolute, or escapes the storage root. The message quotes at most
 * the key's first 120 characters (then `…`), so a huge key cannot make a huge log line or
 * Temporal failure; `key` holds it whole.
 */
export class InvalidKeyError extends Error {
  constructor(readonly key: string, reason: string) {
    super(`invalid object key: ${quoteKey(key)}: ${reason}`);
    this.name = "InvalidKeyError";
  }
}

/**
 * A key beyond the byte bounds of storage (storage/key_bounds.ts): longer than S3's 1,024 bytes
 * of UTF-8, a path segment longer than NAME_MAX (255 bytes) or a path longer than PATH_MAX
 * (4,095 bytes), or not well-formed Unicode. Storage refuses to create such a key, so nothing
 * can exist under it: looking one up finds nothing and deleting one is a no-op.
 */
export class KeyOutOfBoundsError extends InvalidKeyError {
  constructor(key: string, reason: string) {
    super(key, reason);
    this.name = "KeyOutOfBoundsError";
  }
}

/** `key` as JSON, cut to its first 120 characters (whole code points) with its length. */
function quoteKey(key: string): string {
  if (typeof key !== "string" || key.length <= 120) return JSON.stringify(key);
  let head = "";
  for (const codePoint of key) {
    if (head.length >= 120) break;
    head += codePoint;
  }
  return `${JSON.stringify(head)}… (${key.length} characters)`;
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
