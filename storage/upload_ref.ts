/**
 * The compact form of an upload in heartbeat checkpoints (issue 14): instead of every part
 * (~12 KB for a large S3 export), the part count, the durable byte count and a digest of the
 * parts; `ObjectStorage.recoverUpload` rebuilds the part list from storage (S3 ListParts) and
 * checks it against the digest, so a resume after kill -9 stays exact.
 */
import { createHash } from "node:crypto";
import type { UploadedPart, UploadRef, UploadState } from "./types.ts";

const digests = new WeakMap<UploadedPart[], string>();

/**
 * Hex SHA-256 (first 32 digits) over `number:etag:size` of each part, ETags without quotes:
 * equal only when storage holds exactly the parts the checkpoint was taken after.
 */
export function partsDigest(parts: UploadedPart[]): string {
  const known = digests.get(parts);
  if (known) return known;
  const hash = createHash("sha256");
  for (const part of parts) {
    hash.update(`${part.partNumber}:${part.etag.replace(/^"|"$/g, "")}:${part.size}\n`);
  }
  const digest = hash.digest("hex").slice(0, 32);
  digests.set(parts, digest);
  return digest;
}

/** The compact {@link UploadRef} of an upload state. */
export function uploadRef(state: UploadState): UploadRef {
  return {
    backend: state.backend,
    key: state.key,
    contentType: state.contentType,
    uploadId: state.uploadId,
    partCount: state.parts.length,
    bytes: state.bytes,
    partsDigest: partsDigest(state.parts),
  };
}
