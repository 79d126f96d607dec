/**
 * Job-log lines for the impossible source times an export leaves empty (issue 23, kind 6;
 * rules in `registry/time_sql.ts`). A format that writes session intervals, durations or
 * capture / detection / occurrence times declares `impossibleTimes` (one count statement over
 * the very records it writes, after one project-wide check that proves most counts 0 without
 * it: `countImpossibleTimes` in `registry/time_sql.ts`); the export's activities call
 * {@link impossibleTimeLogLines} once and append each line to the job log.
 */
import { getExporter } from "./mod.ts";
import type { ExportQueryContext, ImpossibleTimeCount, ImpossibleTimeKind } from "./types.ts";

/** What one of each kind is called, singular and plural. */
const NOUNS: Record<ImpossibleTimeKind, [string, string]> = {
  session_interval: [
    "session with an end before its start (or an infinite bound)",
    "sessions with an end before their start (or an infinite bound)",
  ],
  capture_time: [
    "capture more than a day outside its session",
    "captures more than a day outside their session",
  ],
  detection_time: [
    "detection more than a day outside its session",
    "detections more than a day outside their session",
  ],
  occurrence_time: [
    "occurrence with a time more than a day outside its session",
    "occurrences with a time more than a day outside their session",
  ],
};

/**
 * One line per kind with a count above zero:
 * `3 sessions with an end before their start: eventDate and sampleSizeValue left empty`.
 */
export function impossibleTimeLines(counts: readonly ImpossibleTimeCount[]): string[] {
  return counts.filter((c) => c.count > 0).map((c) => {
    const [one, many] = NOUNS[c.kind];
    return `${c.count} ${c.count === 1 ? one : many}: ${c.effect}`;
  });
}

/**
 * The job-log lines of an export of `format` with the query context `ctx` (the one its
 * `count` gets): the format's `impossibleTimes` statements (at most two) when it declares
 * them, none otherwise (then `[]`, as for an unknown format). Lines as {@link impossibleTimeLines}.
 */
export async function impossibleTimeLogLines(
  format: string,
  ctx: ExportQueryContext,
): Promise<string[]> {
  const exporter = getExporter(format);
  if (exporter?.impossibleTimes === undefined) return [];
  return impossibleTimeLines(await exporter.impossibleTimes(ctx));
}
