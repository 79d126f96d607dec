import { assertEquals } from "../tests/assert.ts";
import { serviceTest, testDatabase } from "../tests/support.ts";
import { impossibleTimeLines } from "./impossible_times.ts";
import { countImpossibleTimes, possibleInterval, sessionTime, withinSession } from "./time_sql.ts";

Deno.test({
  name: "time_sql: a possible interval is finite with end ≥ start",
  ...serviceTest,
  async fn() {
    const sql = testDatabase(1);
    try {
      const cases: [string, string, boolean][] = [
        ["2023-05-03T20:06:00-05:00", "2023-05-03T23:06:00-05:00", true],
        ["2023-05-03T20:06:00-05:00", "2023-05-03T20:06:00-05:00", true], // zero length
        // the issue's session: the end three hours before the start (−180 minutes)
        ["2023-05-03T20:06:00-05:00", "2023-05-03T17:06:00-05:00", false],
        ["2023-05-03T20:06:00.000001Z", "2023-05-03T20:06:00Z", false], // one µs back
        ["2023-05-03T20:06:00Z", "infinity", false],
        ["-infinity", "2023-05-03T20:06:00Z", false],
      ];
      for (const [start, end, expected] of cases) {
        const [row] = await sql<{ ok: boolean }[]>`select ${
          possibleInterval(sql, sql`${start}::text::timestamptz`, sql`${end}::text::timestamptz`)
        } as ok`;
        assertEquals(row.ok, expected, `${start}/${end}`);
      }
      const [nulls] = await sql<{ ok: boolean }[]>`
        select ${possibleInterval(sql, sql`null::timestamptz`, sql`now()`)} as ok`;
      assertEquals(nulls.ok, false);
    } finally {
      await sql.end();
    }
  },
});

Deno.test({
  name: "time_sql: a time is within a day of its session, in either order of its bounds",
  ...serviceTest,
  async fn() {
    const sql = testDatabase(1);
    try {
      let projectId: number | undefined;
      try {
        [{ id: projectId }] = await sql<{ id: number }[]>`
          insert into projects (name, slug) values ('time_sql', ${crypto.randomUUID()})
          returning id`;
        const [{ id: station }] = await sql<{ id: number }[]>`
          insert into deployments (project_id, name) values (${projectId}, 'A') returning id`;
        const [{ id: good }] = await sql<{ id: string }[]>`
          insert into events (project_id, deployment_id, start, "end")
          values (${projectId}, ${station}, '2024-06-01T21:00Z', '2024-06-02T05:00Z')
          returning id::text`;
        const [{ id: reversed }] = await sql<{ id: string }[]>`
          insert into events (project_id, deployment_id, start, "end")
          values (${projectId}, ${station}, '2024-06-02T05:00Z', '2024-06-01T21:00Z')
          returning id::text`;
        const cases: [string, string | null, boolean][] = [
          ["2024-06-01T22:00Z", good, true],
          ["2024-05-31T21:00Z", good, true], // start − 1 day exactly
          ["2024-05-31T20:59:59.999999Z", good, false], // one µs earlier
          ["2024-06-03T05:00Z", good, true], // end + 1 day exactly
          ["2024-06-03T05:00:00.000001Z", good, false],
          ["2024-06-10T00:00Z", good, false],
          ["2024-06-03T05:00Z", reversed, true], // bounds taken in either order
          ["2024-05-31T20:00Z", reversed, false],
          ["1999-01-01T00:00Z", null, true], // no session: nothing to be outside of
          ["infinity", null, false], // but never an infinite instant
          ["-infinity", good, false],
        ];
        for (const [t, event, expected] of cases) {
          const [row] = await sql<{ ok: boolean; kept: string | null }[]>`select
            ${withinSession(sql, sql`${t}::text::timestamptz`, sql`${event}::bigint`)} as ok,
            ${sessionTime(sql, sql`${t}::text::timestamptz`, sql`${event}::bigint`)}::text as kept`;
          assertEquals(row.ok, expected, `${t} in ${event}`);
          assertEquals(row.kept !== null, expected, `${t} kept in ${event}`);
        }
        const counts = await countImpossibleTimes(sql, [{
          kind: "session_interval",
          effect: "eventDate and duration left empty",
          rows: sql`select not ${possibleInterval(sql, sql`e.start`, sql`e."end"`)} as bad
            from events e where e.project_id = ${projectId}`,
        }, {
          kind: "capture_time",
          effect: "timestamp left empty",
          rows: sql`select false as bad`,
        }]);
        assertEquals(counts, [
          { kind: "session_interval", count: 1, effect: "eventDate and duration left empty" },
          { kind: "capture_time", count: 0, effect: "timestamp left empty" },
        ]);
        // zero counts make no line; one is singular
        assertEquals(impossibleTimeLines(counts), [
          "1 session with an end before its start (or an infinite bound): eventDate and " +
          "duration left empty",
        ]);
      } finally {
        if (projectId !== undefined) await sql`delete from projects where id = ${projectId}`;
      }
    } finally {
      await sql.end();
    }
  },
});

Deno.test("impossible_times: one line per kind with a count, plural above one", () => {
  assertEquals(
    impossibleTimeLines([
      { kind: "session_interval", count: 3, effect: "eventDate and duration left empty" },
      { kind: "capture_time", count: 2, effect: "timestamp left empty" },
      { kind: "detection_time", count: 0, effect: "timestamp left empty" },
      { kind: "occurrence_time", count: 1, effect: "left out" },
    ]),
    [
      "3 sessions with an end before their start (or an infinite bound): eventDate and " +
      "duration left empty",
      "2 captures more than a day outside their session: timestamp left empty",
      "1 occurrence with a time more than a day outside its session: left out",
    ],
  );
});
