import { assert, assertEquals } from "../../tests/assert.ts";
import { assertResumable, drainStream } from "../../tests/stream_drain.ts";
import { sessionsCsv, sessionsCsvColumns } from "./sessions_csv.ts";
import { assertShardsAgree, csvTable, smallProjectTest } from "./test_support.ts";

/** The file as Python's csv module reads it, one object per row. */
function table(bytes: Uint8Array): Promise<Record<string, string>[]> {
  return csvTable(bytes, sessionsCsvColumns);
}

smallProjectTest(
  "sessions_csv: every session, empty ones too, local times, counts, filters, resume",
  async ({ sql, p, ctx }) => {
    await sql`update deployments set latitude = 45.5, longitude = -73.25,
    time_zone = 'America/Toronto' where id = ${p.deployments.south}`;
    const [{ id: empty }] = await sql<{ id: number }[]>`
    insert into events (project_id, deployment_id, start, "end")
    values (${p.projectId}, ${p.deployments.north}, '2024-06-10T21:00:00.5Z',
      '2024-06-11T04:30:00Z') returning id`;
    const { bytes, records } = await assertResumable(sessionsCsv, ctx, 1);
    const rows = await table(bytes);
    assertEquals(records, 3);
    assertEquals(Number(await sessionsCsv.count(ctx)), 3);
    assertEquals(rows.map((r) => Number(r.event_id)), [p.events.night1, p.events.night2, empty]);
    assertEquals(rows[0], {
      event_id: String(p.events.night1),
      deployment_id: String(p.deployments.north),
      deployment_name: p.deploymentNames.north,
      latitude: "",
      longitude: "",
      time_zone: "UTC",
      start_date: "2024-06-01",
      start_time: "21:00:00",
      end_date: "2024-06-02",
      end_time: "05:00:00",
      duration_seconds: "28800",
      // s1, s2, s4; their six detections (bbox-less and undetermined ones included)
      captures_count: "3",
      detections_count: "6",
      // rich and agreesWithPrediction, both Agrotis ipsilon
      occurrences_count: "2",
      taxa_count: "1",
    });
    // station-local (Toronto, UTC−4 in June)
    assertEquals(
      [rows[1].start_date, rows[1].start_time, rows[1].end_time, rows[1].latitude],
      ["2024-06-03", "17:00:00", "19:30:00", "45.5"],
    );
    assertEquals([rows[1].captures_count, rows[1].detections_count], ["1", "2"]);
    assertEquals([rows[1].occurrences_count, rows[1].taxa_count], ["1", "1"]);
    assertEquals(
      [rows[2].start_time, rows[2].duration_seconds, rows[2].captures_count, rows[2].taxa_count],
      ["21:00:00.500000", "26999.5", "0", "0"],
    );

    const filtered = { ...ctx, filters: { deployment_ids: [p.deployments.north] } };
    const north = await table((await drainStream(sessionsCsv, filtered, { limit: 10 })).bytes);
    assertEquals(north.map((r) => Number(r.event_id)), [p.events.night1, empty]);
    const dated = { ...ctx, filters: { date_start: "2024-06-02", date_end: "2024-06-03" } };
    const june = await table((await drainStream(sessionsCsv, dated, { limit: 10 })).bytes);
    assertEquals(june.map((r) => Number(r.event_id)), [p.events.night2]);
    assertEquals(Number(await sessionsCsv.count(dated)), 1);
  },
);

smallProjectTest(
  "sessions_csv shards by event id: every n-th key, shards concatenate to the file, filters too",
  async ({ p, ctx, filtered }) => {
    for (const every of [1, 2]) {
      assert((await assertShardsAgree(sessionsCsv, ctx, every, "event_id")) >= 2);
    }
    const north = filtered({ deployment_ids: [p.deployments.north] });
    await assertShardsAgree(sessionsCsv, north, 1, "event_id");
  },
);
