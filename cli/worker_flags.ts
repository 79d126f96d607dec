/**
 * The V8 flags of the worker tasks (`deno task worker`, `worker:streaming`, `worker:workflows`;
 * the bench starts its workers with the same). `cli/worker_flags_test.ts` checks that
 * `deno.json` passes exactly these.
 *
 * A streaming worker's live heap stays at ~40 MB during an export; without a cap V8 lets the
 * garbage of batch strings grow to several hundred MB between full collections. The old-space
 * cap makes it collect early; a 1 MB semi-space keeps the young generation small (each batch's
 * strings are promoted or large objects anyway).
 */
export const STREAMING_V8_FLAGS = "--max-old-space-size=96,--max-semi-space-size=1";

/** The workflows worker holds two isolates (main and workflow thread); both take these flags. */
export const WORKFLOWS_V8_FLAGS = "--max-semi-space-size=1";

/**
 * The default worker (`WORKER_ROLE=all`, `deno task worker`, what `deno task start` runs) streams
 * exports like a streaming worker, so its main isolate takes the same cap. Its workflow thread
 * (a second isolate) is capped alike, and the SDK sizes its workflow cache by the heap: 10
 * cached workflows (its minimum) instead of ~2,300 uncapped; a workflow evicted from the cache is
 * replayed from its history at its next task (docs/architecture.md, Worker roles and memory).
 */
export const ALL_V8_FLAGS = STREAMING_V8_FLAGS;

/**
 * glibc malloc settings of the workers (`deno task worker`, `worker:streaming` and
 * `worker:workflows` set them): two arenas instead of one per thread, and buffers above 128 KiB
 * always mapped and unmapped, never kept in the heap (glibc otherwise raises its mmap threshold
 * after the first freed part buffer and keeps later ones resident). Measured: −20…−30 MB peak.
 */
export const WORKER_MALLOC_ENV: Record<string, string> = {
  MALLOC_ARENA_MAX: "2",
  MALLOC_MMAP_THRESHOLD_: "131072",
  MALLOC_TRIM_THRESHOLD_: "131072",
};
