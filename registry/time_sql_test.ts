import { assertEquals } from "../tests/assert.ts";
import { serviceTest, testDatabase } from "../tests/support.ts";
import { impossibleTimeLines } from "./impossible_times.ts";
import {
  countImpossibleTimes,
  type ImpossibleTimeUniverse,
  possibleInterval,
  sessionTime,
  withinSession,
} from "./time_sql.ts";

/**
 * A project with a station and two sessions: `good` (2024-06-01 21:00 → 06-02 05:00 UTC) and
 * `reversed` (the same bounds swapped); ids of the sessions as text.
 */
async function sessionsFixture(
  sql: ReturnType<typeof testDatabase>,
  name: string,
): Promise<{ projectId: number; station: number; good: string; reversed: string }> {
  const [{ id: projectId }] = await sql<{ id: number }[]>`
    insert into projects (name, slug) values (${name}, ${crypto.randomUUID()}) returning id`;
  const [{ id: station }] = await sql<{ id: number }[]>`
    insert into deployments (project_id, name) values (${projectId}, 'A') returning id`;
  const session = async (start: string, end: string): Promise<string> => {
    const [{ id }] = await sql<{ id: string }[]>`
      insert into events (project_id, deployment_id, start, "end")
      values (${projectId}, ${station}, ${start}::text::timestamptz, ${end}::text::timestamptz)
      returning id::text`;
    return id;
  };
  return {
    projectId,
    station,
    good: await session("2024-06-01T21:00Z", "2024-06-02T05:00Z"),
    reversed: await session("2024-06-02T05:00Z", "2024-06-01T21:00Z"),
  };
}

/** `[time, session, within]`: the edges of {@link withinSession} for the two fixture sessions. */
function withinCases(good: string, reversed: string): [string, string | null, boolean][] {
  return [
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
}

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
        const { good, reversed, ...fixture } = await sessionsFixture(sql, "time_sql");
        projectId = fixture.projectId;
        const cases = withinCases(good, reversed);
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

Deno.test({
  name:
    "time_sql: a project-wide set without an impossible time skips its count, with one it counts",
  ...serviceTest,
  async fn() {
    const sql = testDatabase(1);
    let projectId: number | undefined;
    try {
      const { station, good, reversed, ...fixture } = await sessionsFixture(
        sql,
        "time_sql universes",
      );
      projectId = fixture.projectId;
      // `rows` that always count 1: a 1 says the set was found holding an impossible time
      const probe = (universe: ImpossibleTimeUniverse) =>
        countImpossibleTimes(sql, [{
          kind: "capture_time",
          effect: "timestamp left empty",
          universe,
          rows: sql`select true as bad`,
        }], projectId);
      const found = async (universe: ImpossibleTimeUniverse) => (await probe(universe))[0].count;
      // the rule of withinSession, case by case, for a capture and for a detection
      const cases = withinCases(good, reversed);
      for (const [t, event, within] of cases) {
        await sql`delete from source_images where project_id = ${projectId}`;
        await sql`delete from occurrences where project_id = ${projectId}`;
        const [{ id: capture }] = await sql<{ id: number }[]>`
          insert into source_images (project_id, deployment_id, event_id, path, public_base_url,
            timestamp)
          values (${projectId}, ${station}, ${event}::bigint, 'c.jpg', 'https://x.example/',
            ${t}::text::timestamptz)
          returning id`;
        assertEquals(await found("captures"), within ? 0 : 1, `capture at ${t} in ${event}`);
        assertEquals(await found("detections"), 0, "no detection yet");
        // a detection at t of an occurrence of the session, on a capture kept in its session
        await sql`update source_images set timestamp = '2024-06-01T22:00Z', event_id = ${good}
          where id = ${capture}`;
        const [{ id: occurrence }] = await sql<{ id: number }[]>`
          insert into occurrences (project_id, deployment_id, event_id)
          values (${projectId}, ${station}, ${event}::bigint) returning id`;
        await sql`insert into detections (occurrence_id, source_image_id, timestamp)
          values (${occurrence}, ${capture}, ${t}::text::timestamptz)`;
        assertEquals(await found("detections"), within ? 0 : 1, `detection at ${t} in ${event}`);
        assertEquals(await found("occurrences"), within ? 0 : 1, `occurrence at ${t}`);
        assertEquals(await found("detection_captures"), 0, "the capture is within its session");
      }
      // an occurrence without a detection: its times are all missing
      await sql`insert into occurrences (project_id, deployment_id) values (${projectId}, ${station})`;
      assertEquals(await found("occurrences"), 1, "an occurrence without a detection");
      // a detection's capture in another project, outside its session: only detection_captures
      const [{ id: other }] = await sql<{ id: number }[]>`
        insert into projects (name, slug) values ('time_sql other', ${crypto.randomUUID()})
        returning id`;
      try {
        const [{ id: elsewhere }] = await sql<{ id: number }[]>`
          insert into source_images (project_id, deployment_id, event_id, path, public_base_url,
            timestamp)
          values (${other}, ${station}, ${good}, 'e.jpg', 'https://x.example/', '2030-01-01Z')
          returning id`;
        await sql`update detections set source_image_id = ${elsewhere}
          where occurrence_id in (select id from occurrences where project_id = ${projectId})`;
        assertEquals(await found("captures"), 0, "the project's own captures are fine");
        assertEquals(await found("detection_captures"), 1, "its detection's capture is not");
      } finally {
        await sql`delete from projects where id = ${other}`;
      }
      // without a universe the statement runs whatever the project holds
      assertEquals(
        (await countImpossibleTimes(sql, [{
          kind: "capture_time",
          effect: "timestamp left empty",
          rows: sql`select true as bad`,
        }]))[0].count,
        1,
      );
    } finally {
      if (projectId !== undefined) await sql`delete from projects where id = ${projectId}`;
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
