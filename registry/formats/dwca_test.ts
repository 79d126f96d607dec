/**
 * The Darwin Core Archive against the database: resumable byte for byte, a valid zip (`unzip -t`,
 * Python's zipfile), meta.xml and EML well formed, row counts equal to SQL, every extension row
 * linked to a core row, and readable by python-dwca-reader (installed into `.tools/venv`).
 */
import type { Sql } from "../../db/client.ts";
import { seedDemo } from "../../db/seed_demo.ts";
import { assert, assertEquals } from "../../tests/assert.ts";
import { checkDwca, unzipText } from "../../tests/dwca.ts";
import { assertResumable, drainStream } from "../../tests/stream_drain.ts";
import { serviceTest, testDatabase } from "../../tests/support.ts";
import type { ExportFilters } from "../types.ts";
import { dwca } from "./dwca.ts";
import { assertArchiveShardsCompose, exportCard, smallProjectTest } from "./test_support.ts";

/** Counts by independent SQL: occurrences with an event, their events, their media. */
async function expectedCounts(
  sql: Sql,
  projectId: number,
  filters: { verified?: boolean } = {},
): Promise<{ events: number; occurrences: number; media: number }> {
  const [row] = await sql<{ events: number; occurrences: number; media: number }[]>`
    with exported as (
      select o.id, o.event_id from occurrences o
      where o.project_id = ${projectId} and o.determination_id is not null
        and o.event_id is not null
        and o.id in (select occurrence_id from detections where bbox is not null)
        and (${filters.verified ?? null}::boolean is null
          or ${filters.verified ?? null}::boolean = (o.id in (
            select occurrence_id from identifications where not withdrawn)))
    ), best as (
      select distinct on (d.occurrence_id) d.occurrence_id, d.path
      from detections d join exported x on x.id = d.occurrence_id
      left join lateral (
        select max(score) as score from classifications c where c.detection_id = d.id and c.terminal
      ) s on true
      where d.bbox is not null
      order by d.occurrence_id, s.score desc nulls last, d.id
    )
    select
      (select count(distinct event_id) from exported)::int as events,
      (select count(*) from exported)::int as occurrences,
      (select count(*) + count(path) from best)::int as media`;
  return row;
}

smallProjectTest(
  "dwca: small project, resumable from every chunk, valid archive, linked rows",
  async ({ p, ctx }) => {
    const { bytes, records } = await assertResumable(dwca, ctx, 1);
    const { rich, agreesWithPrediction, machineOnly } = p.occurrences;
    assertEquals(records, 3);
    assertEquals(Number(await dwca.count(ctx)), 3);
    const report = await checkDwca(bytes);
    assertEquals(report.testzip, null);
    assertEquals(report.names, [
      "event.txt",
      "occurrence.txt",
      "multimedia.txt",
      "meta.xml",
      "eml.xml",
      "README.md",
    ]);
    assertEquals(report.files["event.txt"].rows, 2);
    assertEquals(report.files["occurrence.txt"].rows, 3);
    // rich: crop + capture; agreesWithPrediction: no crop; machineOnly: crop + capture
    assertEquals(report.files["multimedia.txt"].rows, 5);
    for (const f of Object.values(report.files)) assertEquals(f.dangling, 0);
    assertEquals(report.eml_root, "{https://eml.ecoinformatics.org/eml-2.2.0}eml");
    assertEquals(report.eml_title, p.projectName);
    assertEquals(report.eml_dates, ["2024-06-01", "2024-06-03"]);
    assert(report.eml_license.includes("CC-BY-4.0"), report.eml_license);
    assertEquals(report.reader.core_type, "http://rs.tdwg.org/dwc/terms/Event");
    assertEquals(report.reader.core_rows, 2);
    assertEquals(report.reader.extensions["http://rs.tdwg.org/dwc/terms/Occurrence"], {
      rows: 3,
      linked: 3,
    });
    assertEquals(report.reader.extensions["http://rs.gbif.org/terms/1.0/Multimedia"], {
      rows: 5,
      linked: 5,
    });

    const occurrences = (await unzipText(bytes, "occurrence.txt")).trimEnd().split("\n")
      .map((line) => line.split("\t"));
    assertEquals(occurrences.slice(1).map((r) => Number(r[1])), [
      rich,
      agreesWithPrediction,
      machineOnly,
    ]);
    const byId = new Map(
      occurrences.slice(1).map((r) => [
        Number(r[1]),
        Object.fromEntries(occurrences[0].map((h, i) => [h, r[i]])),
      ]),
    );
    assertEquals(byId.get(rich)!.basisOfRecord, "HumanObservation");
    assertEquals(byId.get(rich)!.eventID, String(p.events.night1));
    assertEquals(byId.get(rich)!.family, "Noctuidae");
    assertEquals(byId.get(rich)!.identificationVerificationStatus, "verified");
    assertEquals(byId.get(machineOnly)!.basisOfRecord, "MachineObservation");
    assertEquals(byId.get(machineOnly)!.identifiedBy, "Order classifier");
    const events = (await unzipText(bytes, "event.txt")).trimEnd().split("\n");
    assertEquals(events[1].split("\t").slice(0, 2), [
      String(p.events.night1),
      "2024-06-01T21:00:00Z/2024-06-02T05:00:00Z",
    ]);

    // no occurrence at all: still a valid archive with empty data files
    const none = await drainStream(dwca, {
      ...ctx,
      filters: { collection_id: p.emptyCollectionId },
    }, { limit: 10 });
    const empty = await checkDwca(none.bytes);
    assertEquals(empty.testzip, null);
    assertEquals(empty.reader.core_rows, 0);
    assertEquals(empty.files["occurrence.txt"].rows, 0);
  },
);

Deno.test({
  name: "dwca: demo project, counts equal SQL with and without a filter",
  ...serviceTest,
  async fn() {
    const sql = testDatabase();
    try {
      const seed = await seedDemo(sql, { occurrences: 1200, seed: 31 });
      const cases: ExportFilters[] = [{}, { verified: true }];
      for (const filters of cases) {
        const ctx = { sql, projectId: seed.project_id, filters };
        const want = await expectedCounts(sql, seed.project_id, filters);
        assert(want.occurrences > 0 && want.events > 0, JSON.stringify(want));
        const { bytes, records } = await drainStream(dwca, ctx, { limit: 250 });
        assertEquals(records, want.occurrences);
        assertEquals(Number(await dwca.count(ctx)), want.occurrences);
        const report = await checkDwca(bytes);
        assertEquals(report.testzip, null);
        assertEquals(report.files["event.txt"].rows, want.events);
        assertEquals(report.files["occurrence.txt"].rows, want.occurrences);
        assertEquals(report.files["multimedia.txt"].rows, want.media);
        assertEquals(report.duplicate_core_ids, 0);
        for (const f of Object.values(report.files)) assertEquals(f.dangling, 0);
        const reader = report.reader.extensions;
        assertEquals(reader["http://rs.tdwg.org/dwc/terms/Occurrence"].linked, want.occurrences);
        assertEquals(reader["http://rs.gbif.org/terms/1.0/Multimedia"].linked, want.media);
        assert(report.eml_bounds !== null, "demo stations have coordinates");
        assert(
          report.eml_bounds.westBoundingCoordinate <= report.eml_bounds.eastBoundingCoordinate,
        );
      }
    } finally {
      await sql.end();
    }
  },
});

Deno.test({
  name: "dwca sharded member by member: the units and shardLayout make the unsharded bytes",
  ...serviceTest,
  async fn() {
    const sql = testDatabase();
    try {
      const seed = await seedDemo(sql, { occurrences: 900, seed: 47 });
      const card = exportCard(1, "2026-12-07T00:00:00.000Z");
      const ctx = { sql, projectId: seed.project_id, filters: {}, card };
      const total = Number(await dwca.count(ctx));
      const { file, units } = await assertArchiveShardsCompose(dwca, ctx, {
        batchRecords: 40,
        every: 200,
        wanted: 5,
      });
      // event.txt whole, occurrence.txt and multimedia.txt in ranges on piece boundaries
      assertEquals(units.filter((u) => u.member === 0).length, 1);
      const ranges = units.filter((u) => u.member === 1).length;
      assert(ranges >= 3, `${ranges} ranges`);
      assertEquals(units.filter((u) => u.member === 2).length, ranges);
      const report = await checkDwca(file);
      assertEquals(report.testzip, null);
      assertEquals(report.files["occurrence.txt"].rows, total);
    } finally {
      await sql.end();
    }
  },
});
