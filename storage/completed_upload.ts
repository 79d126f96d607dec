/**
 * What `completeUpload` answers when the upload it was asked to complete is gone: an earlier
 * attempt may have completed it and crashed before recording that (both backends).
 */
import { UploadNotFoundError } from "./errors.ts";
import type { UploadState } from "./types.ts";

/**
 * The object an earlier attempt completed from `state`: `head` (what storage holds under
 * `state.key`, its size in bytes, or null) when it has exactly the upload's `state.bytes`.
 *
 * @throws UploadNotFoundError otherwise, its detail saying what is there instead
 *   (`object has <n> bytes, expected <bytes>` or `no object either`)
 */
export function completedEarlier(
  state: UploadState,
  head: { size: number } | null,
): { size: number } {
  if (head && head.size === state.bytes) return head;
  throw new UploadNotFoundError(
    state.key,
    state.uploadId,
    head ? `object has ${head.size} bytes, expected ${state.bytes}` : "no object either",
  );
}
