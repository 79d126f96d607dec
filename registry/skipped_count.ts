/** How many images an image format's stream state says it left out. */
import type { StreamState } from "./types.ts";

/**
 * The images (crops, frames) an image format has left out so far: the length of the `skipped`
 * list (`[id, reason]` pairs) its zip state carries, so a resumed export counts from its
 * checkpoint exactly; null for a state without that list (formats that fetch no images).
 */
export function skippedCount(state: StreamState): number | null {
  if (state === null || typeof state !== "object" || Array.isArray(state)) return null;
  const skipped = (state as Record<string, unknown>).skipped;
  return Array.isArray(skipped) ? skipped.length : null;
}
