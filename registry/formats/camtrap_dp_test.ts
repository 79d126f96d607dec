import { assert, assertEquals } from "../../tests/assert.ts";
import { readCamtrap } from "../../tests/camtrap.ts";
import { assertResumable, drainStream } from "../../tests/stream_drain.ts";
import { camtrapDp } from "./camtrap_dp.ts";
import { seedDemo } from "../../db/seed_demo.ts";
import { serviceTest, testDatabase } from "../../tests/support.ts";
import { assertArchiveShardsCompose, exportCard, smallProjectTest } from "./test_support.ts";

smallProjectTest(
  "camtrap_dp: frictionless validates it (0 errors); links and counts match SQL; resume",
  async ({ sql, p, ctx }) => {
    // north gets coordinates and a zone; south has none: its occurrences are left out
    await sql`update deployments set latitude = 45.5, longitude = -73.25,
    time_zone = 'America/Toronto' where id = ${p.deployments.north}`;
    // a detection time with microseconds: Camtrap DP datetimes have none (truncated)
    await sql`update detections set timestamp = '2024-06-01T22:15:03.654321Z'
    where id = ${p.detections.a1}`;
    const { bytes, records } = await assertResumable(camtrapDp, ctx, 1);
    const report = await readCamtrap(bytes);
    assertEquals(report.errors, []);
    assertEquals(report.profile_errors, []);
    assertEquals(report.dangling, {
      "media.deploymentID": 0,
      "observations.deploymentID": 0,
      "observations.mediaID": 0,
    });

    // counts against SQL: valid occurrences of the station with coordinates, their boxed
    // detections on captures of that station, and those captures
    const [expected] = await sql<{ occ: number; dets: number; media: number }[]>`
    select count(distinct o.id)::int as occ,
      count(d.id) filter (where array_length(d.bbox, 1) = 4 and s.deployment_id = o.deployment_id)::int as dets,
      count(distinct s.id) filter (where array_length(d.bbox, 1) = 4 and s.deployment_id = o.deployment_id)::int as media
    from occurrences o
    left join detections d on d.occurrence_id = o.id
    left join source_images s on s.id = d.source_image_id
    where o.id = any(${p.validIds}::bigint[]) and o.deployment_id = ${p.deployments.north}`;
    assert(expected.occ > 0 && expected.occ < p.validIds.length, JSON.stringify(expected));
    assertEquals(records, expected.occ);
    assertEquals(Number(await camtrapDp.count(ctx)), expected.occ);
    assertEquals(report.levels, { event: expected.occ, media: expected.dets });
    assertEquals(report.rows, {
      deployments: 1,
      media: expected.media,
      observations: expected.occ + expected.dets,
    });
    // every table row a chunk's limit counted is reported to batch sizing (activities/
    // batch_size.ts), else the stations and captures phases keep the first batch's limit
    const drained = await drainStream(camtrapDp, ctx, { limit: 1 });
    assertEquals(drained.rows, 1 + expected.media + expected.occ);

    const [deployment] = report.tables.deployments;
    assertEquals(
      [deployment.deploymentID, deployment.latitude, deployment.longitude],
      [String(p.deployments.north), "45.5", "-73.25"],
    );
    // the first capture or session of the station, in its zone (EDT), whole seconds
    assertEquals(deployment.deploymentStart, "2024-06-01T17:00:00-04:00");
    const rich = report.tables.observations.filter((o) => o.eventID === String(p.occurrences.rich));
    assertEquals(rich[0].observationLevel, "event");
    assertEquals(rich[0].eventStart, "2024-06-01T18:15:03-04:00"); // .654321 truncated
    assertEquals(rich[0].scientificName, "Agrotis ipsilon");
    // a2: [5.5, 6, 55.5, 106] on a 4096 × 2160 capture, normalised
    const a2 = rich.find((o) => o.observationID === `detection-${p.detections.a2}`)!;
    assertEquals(a2.mediaID, String(p.images.s4));
    assertEquals(
      [a2.bboxX, a2.bboxY, a2.bboxWidth, a2.bboxHeight].map(Number),
      [5.5 / 4096, 6 / 2160, 50 / 4096, 100 / 2160].map((v) => Number(v.toPrecision(15))),
    );
    const descriptor = report.descriptor as {
      spatial: { type: string; coordinates: number[] };
      temporal: { start: string; end: string };
      taxonomic: { scientificName: string }[];
      contributors: { role: string }[];
    };
    assertEquals(descriptor.spatial, { type: "Point", coordinates: [-73.25, 45.5] });
    assertEquals(descriptor.temporal.start, "2024-06-01");
    assertEquals(descriptor.contributors[0].role, "contact");

    // nothing exportable: still a valid package
    const none = { ...ctx, filters: { deployment_ids: [p.deployments.south] } };
    const empty = await readCamtrap((await drainStream(camtrapDp, none, { limit: 2 })).bytes);
    assertEquals([empty.errors, empty.profile_errors], [[], []]);
    assertEquals(empty.rows, { deployments: 0, media: 0, observations: 0 });
  },
);

Deno.test({
  name: "camtrap_dp sharded member by member: the units and shardLayout make the unsharded bytes",
  ...serviceTest,
  async fn() {
    const sql = testDatabase();
    try {
      const seed = await seedDemo(sql, { occurrences: 900, seed: 53 });
      const card = exportCard(2, "2026-12-07T01:00:00.000Z");
      const ctx = { sql, projectId: seed.project_id, filters: {}, card };
      const { file, units } = await assertArchiveShardsCompose(camtrapDp, ctx, {
        batchRecords: 40,
        every: 200,
        wanted: 5,
      });
      // deployments.csv whole; media.csv by capture and observations.csv by occurrence, cut
      assertEquals(units.filter((u) => u.member === 0).length, 1);
      assert(units.filter((u) => u.member === 1).length >= 2, "media.csv not cut");
      assert(units.filter((u) => u.member === 2).length >= 3, "observations.csv not cut");
      const report = await readCamtrap(file);
      assertEquals([report.errors, report.profile_errors], [[], []]);
      assertEquals(report.rows.observations > 0 && report.rows.media > 0, true);
    } finally {
      await sql.end();
    }
  },
});
