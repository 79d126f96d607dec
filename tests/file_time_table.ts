/** The test runner's per-file time table (`deno task test` prints it before its summary). */

/** What one test file did: its wall time in seconds, its lane, its counts. */
export interface FileOutcome {
  seconds: number;
  lane: number;
  passed: number;
  failed: number;
  crashed?: string;
}

/**
 * The per-file time table printed before the summary line: one row per file, slowest first,
 * with its seconds, lane and counts, and a last row with the sum of the files' times.
 */
export function fileTimeTable(outcomes: Map<string, FileOutcome>): string {
  const rows = [...outcomes].sort(([, a], [, b]) => b.seconds - a.seconds);
  const width = Math.max(4, ...rows.map(([file]) => file.length));
  const lines = [
    "",
    `${"file".padEnd(width)}  ${"seconds".padStart(7)}  lane  passed  failed`,
    ...rows.map(([file, o]) =>
      `${file.padEnd(width)}  ${o.seconds.toFixed(0).padStart(7)}  ${String(o.lane).padStart(4)}  ${
        String(o.passed).padStart(6)
      }  ${String(o.failed + (o.crashed ? 1 : 0)).padStart(6)}${o.crashed ? "  crashed" : ""}`
    ),
    `${"(sum of file times)".padEnd(width)}  ${
      rows.reduce((sum, [, o]) => sum + o.seconds, 0).toFixed(0).padStart(7)
    }`,
  ];
  return lines.join("\n");
}
