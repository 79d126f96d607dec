import { assertEquals } from "../../tests/assert.ts";
import { assertResumable, drainStream } from "../../tests/stream_drain.ts";
import { deploymentsCsv, deploymentsCsvColumns } from "./deployments_csv.ts";
import { csvTable, smallProjectTest } from "./test_support.ts";

smallProjectTest(
  "deployments_csv: every station, empty ones too, place, effort, counts, filter, resume",
  async ({ sql, p, ctx }) => {
    await sql`update deployments set latitude = 45.5, longitude = -73.25, country_code = 'CA',
      time_zone = 'America/Toronto' where id = ${p.deployments.south}`;
    const [{ id: empty }] = await sql<{ id: number }[]>`
      insert into deployments (project_id, name, latitude, longitude)
      values (${p.projectId}, '=cmd', 91, 10) returning id`;
    // a session that ends before it starts gives no dates (issue 23)
    await sql`insert into events (project_id, deployment_id, start, "end")
      values (${p.projectId}, ${empty}, '2024-07-02T00:00:00Z', '2024-07-01T00:00:00Z')`;
    const { bytes, records } = await assertResumable(deploymentsCsv, ctx, 1);
    const rows = await csvTable(bytes, deploymentsCsvColumns);
    assertEquals(records, 3);
    assertEquals(Number(await deploymentsCsv.count(ctx)), 3);
    // the counts, by independent SQL over the station's captures and valid occurrences
    const expected = await sql<Record<string, string>[]>`
      select d.id::text as deployment_id,
        (select count(*) from events e where e.deployment_id = d.id)::text as sessions_count,
        (select count(*) from source_images s where s.deployment_id = d.id)::text as captures_count,
        (select count(*) from source_images s join detections x on x.source_image_id = s.id
          where s.deployment_id = d.id)::text as detections_count
      from deployments d where d.project_id = ${p.projectId} order by d.id`;
    assertEquals(
      rows.map((r) => ({
        deployment_id: r.deployment_id,
        sessions_count: r.sessions_count,
        captures_count: r.captures_count,
        detections_count: r.detections_count,
      })),
      expected.map((r) => ({ ...r })),
    );
    const [north, south, last] = rows;
    assertEquals(north.deployment_name, p.deploymentNames.north);
    assertEquals([north.latitude, north.time_zone], ["", "UTC"]);
    assertEquals([north.first_session_date, north.last_session_date], ["2024-06-01", "2024-06-02"]);
    // rich and agreesWithPrediction (Agrotis ipsilon); noEvent and machineOnly: see below
    assertEquals(
      [south.latitude, south.longitude, south.country_code, south.time_zone],
      ["45.5", "-73.25", "CA", "America/Toronto"],
    );
    // station-local dates (Toronto, UTC−4 in June)
    assertEquals(south.first_session_date, "2024-06-03");
    // an impossible latitude is no place; a text cell is formula-guarded; no valid session
    assertEquals([last.deployment_name, last.latitude, last.longitude], ["'=cmd", "", ""]);
    assertEquals([last.sessions_count, last.first_session_date, last.occurrences_count], [
      "1",
      "",
      "0",
    ]);
    const valid = new Set(p.validIds);
    const perStation = await sql<{ deployment_id: string; n: number }[]>`
      select deployment_id::text, count(*)::int as n from occurrences
      where id = any(${[...valid]}::bigint[]) group by deployment_id`;
    for (const row of rows) {
      const n = perStation.find((s) => s.deployment_id === row.deployment_id)?.n ?? 0;
      assertEquals(Number(row.occurrences_count), n, `occurrences of ${row.deployment_id}`);
    }
    assertEquals(await deploymentsCsv.impossibleTimes?.(ctx), [
      {
        kind: "session_interval",
        count: 1,
        effect: "left out of first_session_date and last_session_date",
      },
    ]);

    const filtered = { ...ctx, filters: { deployment_ids: [p.deployments.south, empty] } };
    const two = await csvTable(
      (await drainStream(deploymentsCsv, filtered, { limit: 10 })).bytes,
      deploymentsCsvColumns,
    );
    assertEquals(two.map((r) => Number(r.deployment_id)), [p.deployments.south, empty]);
    assertEquals(Number(await deploymentsCsv.count(filtered)), 2);
  },
);
