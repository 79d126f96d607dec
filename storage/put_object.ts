/** One small object written whole through the resumable-upload contract of both backends. */
import type { ObjectStorage } from "./types.ts";

/**
 * Publishes `bytes` at `key` (one part: S3 accepts a last part of any size), replacing what was
 * there; returns the size in bytes. An upload that fails is aborted, and the error rethrown.
 */
export async function putObject(
  storage: ObjectStorage,
  key: string,
  options: { bytes: Uint8Array; contentType: string },
): Promise<number> {
  let state = await storage.beginUpload(key, options.contentType);
  try {
    state = await storage.appendPart(state, options.bytes);
    return (await storage.completeUpload(state)).size;
  } catch (error) {
    await storage.abortUpload(state).catch(() => {});
    throw error;
  }
}
