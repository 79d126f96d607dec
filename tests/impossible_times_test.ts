/**
 * Issue 23, kind 6: impossible source times are not published as valid standard values. A
 * fixture project holds a session whose end is three hours before its start (the issue's
 * `2023-05-03T20:06:00-05:00/2023-05-03T17:06:00-05:00`, −180 minutes), a session with an
 * infinite end, captures and detections more than a day outside their session (after it, before
 * it), one exactly a day minus an hour after it (kept), a capture without a session (kept) and
 * an occurrence whose only detection is outside its session. Every format that writes those
 * values is exported through the API, a real worker and storage (EXPORT_BATCH_SIZE=1, so the
 * archives' coverage crosses checkpoints), read back by independent readers (Python's csv,
 * python-dwca-reader, frictionless, pyarrow and DuckDB, pycocotools), and the job-log lines of
 * `impossibleTimeLogLines` are checked per format.
 */
import type { Sql } from "../db/client.ts";
import { jobLogs } from "../db/exports.ts";
import { impossibleTimeLogLines } from "../registry/impossible_times.ts";
import { assertEquals } from "./assert.ts";
import { readCamtrap } from "./camtrap.ts";
import { checkDwca, unzipText } from "./dwca.ts";
import { createUser } from "./fixtures/access.ts";
import { type Harness, startHarness } from "./harness.ts";
import { asCsvRows, readParquet } from "./parquet.ts";
import { EML_XSD, readWith, runPythonReader } from "./readers.ts";
import { serviceTest } from "./support.ts";

interface Fixture {
  projectId: number;
  token: string;
  station: string;
  /** S1 fine, S2 reversed (the issue's), S3 fine, S4 with an infinite end. */
  sessions: Record<"s1" | "s2" | "s3" | "s4", string>;
  captures: Record<"c1" | "c1late" | "c1far" | "c1early" | "c2" | "c3far" | "c4" | "c5", string>;
  detections: Record<"d1" | "d1late" | "d1far" | "d2" | "d3" | "d4", string>;
  occurrences: Record<"o1" | "o2" | "o3" | "o4", string>;
}

async function createFixture(sql: Sql): Promise<Fixture> {
  const tag = crypto.randomUUID().slice(0, 8);
  const [ownerId, token] = await createUser(sql, `times-${tag}`);
  const insert = async (table: string, row: Record<string, unknown>): Promise<string> => {
    const [{ id }] = await sql<{ id: number | string }[]>`
      insert into ${sql(table)} ${sql(row)} returning id`;
    return String(id);
  };
  const projectId = Number(
    await insert("projects", { name: "Impossible times", slug: `times-${tag}`, owner_id: ownerId }),
  );
  const station = await insert("deployments", {
    project_id: projectId,
    name: "Station A",
    latitude: 45.5,
    longitude: -73.25,
  });
  await sql`update deployments set time_zone = 'America/Chicago' where id = ${station}`;
  const taxon = await insert("taxa", { name: `Noctua ${tag}`, rank: "SPECIES" });
  const algorithm = await insert("algorithms", { name: "Moth classifier", key: `m-${tag}` });
  // as text: postgres.js would serialize a timestamptz parameter through a JS Date
  const session = async (start: string, end: string): Promise<string> => {
    const [{ id }] = await sql<{ id: string }[]>`
      insert into events (project_id, deployment_id, start, "end")
      values (${projectId}, ${station}, ${start}::text::timestamptz, ${end}::text::timestamptz)
      returning id::text`;
    return id;
  };
  const sessions = {
    s1: await session("2024-06-01T21:00:00Z", "2024-06-02T05:00:00Z"),
    // the issue's: 2023-05-03T20:06:00-05:00 to 17:06:00-05:00, −180 minutes
    s2: await session("2023-05-04T01:06:00Z", "2023-05-03T22:06:00Z"),
    s3: await session("2024-07-01T21:00:00Z", "2024-07-02T05:00:00Z"),
    s4: await session("2024-08-01T21:00:00Z", "infinity"),
  };
  const capture = (event: string | null, timestamp: string, n: string): Promise<string> =>
    insert("source_images", {
      project_id: projectId,
      deployment_id: station,
      event_id: event,
      path: `captures/${n}.jpg`,
      public_base_url: "https://cdn.example.org/",
      timestamp,
      width: 100,
      height: 100,
    });
  const captures = {
    c1: await capture(sessions.s1, "2024-06-01T22:00:00Z", "c1"),
    c1late: await capture(sessions.s1, "2024-06-03T04:00:00Z", "c1late"), // end + 23 h: kept
    c1far: await capture(sessions.s1, "2024-06-10T00:00:00Z", "c1far"), // 8 days after
    c1early: await capture(sessions.s1, "2024-05-30T20:59:00Z", "c1early"), // 2 days before
    c2: await capture(sessions.s2, "2023-05-03T23:00:00Z", "c2"), // between the reversed bounds
    c3far: await capture(sessions.s3, "2024-09-01T00:00:00Z", "c3far"), // two months after
    c4: await capture(sessions.s4, "2024-08-01T22:00:00Z", "c4"),
    c5: await capture(null, "2020-01-01T00:00:00Z", "c5"), // no session: kept
  };
  const occurrence = (event: string): Promise<string> =>
    insert("occurrences", {
      project_id: projectId,
      deployment_id: station,
      event_id: event,
      determination_id: taxon,
      determination_score: 0.8,
    });
  const occurrences = {
    o1: await occurrence(sessions.s1),
    o2: await occurrence(sessions.s2),
    o3: await occurrence(sessions.s3),
    o4: await occurrence(sessions.s4),
  };
  const detection = async (
    o: string,
    c: keyof typeof captures,
    timestamp: string,
    score: number,
  ): Promise<string> => {
    const id = await insert("detections", {
      occurrence_id: o,
      source_image_id: captures[c],
      bbox: [10, 10, 50, 50],
      timestamp,
      path: `crops/${c}.jpg`,
    });
    await insert("classifications", {
      detection_id: id,
      taxon_id: taxon,
      algorithm_id: algorithm,
      score,
      terminal: true,
    });
    return id;
  };
  const detections = {
    d1: await detection(occurrences.o1, "c1", "2024-06-01T22:00:00Z", 0.5),
    d1late: await detection(occurrences.o1, "c1late", "2024-06-03T04:00:00Z", 0.4),
    // the best detection of o1 (highest score): its multimedia dates are left empty
    d1far: await detection(occurrences.o1, "c1far", "2024-06-10T00:00:00Z", 0.9),
    d2: await detection(occurrences.o2, "c2", "2023-05-03T23:00:00Z", 0.7),
    d3: await detection(occurrences.o3, "c3far", "2024-09-01T00:00:00Z", 0.7),
    d4: await detection(occurrences.o4, "c4", "2024-08-01T22:00:00Z", 0.7),
  };
  return {
    projectId,
    token,
    station,
    sessions,
    captures,
    detections,
    occurrences,
  };
}

async function exportFile(
  h: Harness,
  f: Fixture,
  format: string,
): Promise<{ done: Record<string, unknown>; bytes: Uint8Array }> {
  const res = await h.api("POST", "/api/v2/exports/", {
    token: f.token,
    body: { project: f.projectId, format, filters: {}, force: true },
  });
  const created = await res.json();
  assertEquals(res.status, 201, JSON.stringify(created));
  const done = await h.waitForExport(created.id as number, f.token, 120_000);
  assertEquals(done.status, "SUCCESS", JSON.stringify(done));
  const bytes = await h.download(done.file_url as string);
  // the export's own job log carries the counts, once each
  const ctx = { sql: h.sql, projectId: f.projectId, filters: {}, settings: h.config.formats };
  const warnings = (await jobLogs(h.sql, created.id as number))
    .filter((l) => l.level === "warning").map((l) => l.message);
  assertEquals(warnings, await impossibleTimeLogLines(format, ctx), `${format} job log`);
  return { done, bytes };
}

/** Rows of a CSV or TSV text as objects by header (Python's csv). */
async function records(
  kind: "csv" | "tsv",
  data: Uint8Array | string,
): Promise<Record<string, string>[]> {
  const read = await readWith(kind, data) as { rows: string[][] };
  const [header, ...rows] = read.rows;
  return rows.map((r) => Object.fromEntries(header.map((name, i) => [name, r[i]])));
}

/** `rows` keyed by the column `key`, each reduced to `columns`. */
function pick(
  rows: Record<string, string>[],
  key: string,
  columns: string[],
): Record<string, string[]> {
  return Object.fromEntries(rows.map((r) => [r[key], columns.map((c) => r[c])]));
}

Deno.test({
  name: "issue 23 kind 6: impossible times are left empty in every format, and counted",
  ...serviceTest,
  async fn(t) {
    const h = await startHarness({ storage: "fs", batchSize: 1 });
    try {
      const f = await createFixture(h.sql);
      const { sessions: s, captures: c, detections: d, occurrences: o } = f;
      const ctx = { sql: h.sql, projectId: f.projectId, filters: {} };

      await t.step("dwca: eventDate, sampleSize, multimedia dates, EML coverage", async () => {
        const { done, bytes } = await exportFile(h, f, "dwca");
        const report = await checkDwca(bytes);
        assertEquals(report.testzip, null);
        assertEquals(done.record_count, 4);
        assertEquals(report.reader.core_rows, 4);
        for (const ext of Object.values(report.reader.extensions)) {
          assertEquals(ext.rows, ext.linked);
        }
        const events = pick(
          await records("tsv", await unzipText(bytes, "event.txt")),
          "eventID",
          ["eventDate", "sampleSizeValue", "sampleSizeUnit"],
        );
        assertEquals(events, {
          [s.s1]: ["2024-06-01T16:00:00-05:00/2024-06-02T00:00:00-05:00", "480", "minutes"],
          [s.s2]: ["", "", ""], // the issue's session: no interval, no −180
          [s.s3]: ["2024-07-01T16:00:00-05:00/2024-07-02T00:00:00-05:00", "480", "minutes"],
          [s.s4]: ["", "", ""], // an infinite end
        });
        const media = await records("tsv", await unzipText(bytes, "multimedia.txt"));
        const created = Object.fromEntries(media.map((r) => [r.identifier, r.created]));
        assertEquals(created, {
          "https://cdn.example.org/crops/c1far.jpg": "", // o1's best detection: 8 days after
          "https://cdn.example.org/captures/c1far.jpg": "",
          "https://cdn.example.org/crops/c2.jpg": "2023-05-03T18:00:00-05:00",
          "https://cdn.example.org/captures/c2.jpg": "2023-05-03T18:00:00-05:00",
          "https://cdn.example.org/crops/c3far.jpg": "",
          "https://cdn.example.org/captures/c3far.jpg": "",
          "https://cdn.example.org/crops/c4.jpg": "2024-08-01T17:00:00-05:00",
          "https://cdn.example.org/captures/c4.jpg": "2024-08-01T17:00:00-05:00",
        });
        // temporal coverage from the possible sessions only (not 2023, not infinity)
        assertEquals(report.eml_dates, ["2024-06-01", "2024-07-02"]);
        const eml = await readWith("xml", await unzipText(bytes, "eml.xml"), {
          xsd: EML_XSD,
        }) as { valid: boolean; errors: string[] };
        assertEquals(eml.errors, []);
        assertEquals(await impossibleTimeLogLines("dwca", ctx), [
          "2 sessions with an end before their start (or an infinite bound): eventDate, " +
          "sampleSizeValue and sampleSizeUnit left empty in event.txt, and out of the EML " +
          "temporal coverage",
          "2 detections more than a day outside their session: created of the crop left empty " +
          "in multimedia.txt",
          "2 captures more than a day outside their session: created of the capture image left " +
          "empty in multimedia.txt",
        ]);
      });

      await t.step("sessions_csv: the whole interval and its duration", async () => {
        const { done, bytes } = await exportFile(h, f, "sessions_csv");
        assertEquals(done.record_count, 4);
        const cols = ["start_date", "start_time", "end_date", "end_time", "duration_seconds"];
        assertEquals(pick(await records("csv", bytes), "event_id", cols), {
          [s.s1]: ["2024-06-01", "16:00:00", "2024-06-02", "00:00:00", "28800"],
          [s.s2]: ["", "", "", "", ""],
          [s.s3]: ["2024-07-01", "16:00:00", "2024-07-02", "00:00:00", "28800"],
          [s.s4]: ["", "", "", "", ""],
        });
        assertEquals(await impossibleTimeLogLines("sessions_csv", ctx), [
          "2 sessions with an end before their start (or an infinite bound): start_date, " +
          "start_time, end_date, end_time and duration_seconds left empty",
        ]);
      });

      await t.step("captures_csv: timestamps outside their session, before or after", async () => {
        const { done, bytes } = await exportFile(h, f, "captures_csv");
        assertEquals(done.record_count, 8);
        assertEquals(pick(await records("csv", bytes), "capture_id", ["timestamp"]), {
          [c.c1]: ["2024-06-01T17:00:00-05:00"],
          [c.c1late]: ["2024-06-02T23:00:00-05:00"],
          [c.c1far]: [""],
          [c.c1early]: [""],
          [c.c2]: ["2023-05-03T18:00:00-05:00"],
          [c.c3far]: [""],
          [c.c4]: ["2024-08-01T17:00:00-05:00"],
          [c.c5]: ["2019-12-31T18:00:00-06:00"],
        });
        assertEquals(await impossibleTimeLogLines("captures_csv", ctx), [
          "3 captures more than a day outside their session: timestamp left empty",
        ]);
      });

      await t.step("detections_csv and tracks_csv: detection timestamps", async () => {
        const expected = {
          [d.d1]: ["2024-06-01T17:00:00-05:00"],
          [d.d1late]: ["2024-06-02T23:00:00-05:00"],
          [d.d1far]: [""],
          [d.d2]: ["2023-05-03T18:00:00-05:00"],
          [d.d3]: [""],
          [d.d4]: ["2024-08-01T17:00:00-05:00"],
        };
        for (const format of ["detections_csv", "tracks_csv"]) {
          const { done, bytes } = await exportFile(h, f, format);
          assertEquals(done.record_count, 6, format);
          const rows = await records("csv", bytes);
          assertEquals(pick(rows, "detection_id", ["timestamp"]), expected, format);
          assertEquals(await impossibleTimeLogLines(format, ctx), [
            "2 detections more than a day outside their session: timestamp left empty",
          ]);
        }
      });

      await t.step("detections_coco: date_captured null, pycocotools still loads", async () => {
        const { bytes } = await exportFile(h, f, "detections_coco");
        const coco = await runPythonReader("coco_check.py", [bytes], {
          modules: ["pycocotools"],
          packages: ["pycocotools"],
          suffix: ".json",
        }) as { images: string; annotations: string };
        assertEquals([coco.images, coco.annotations], ["6", "6"]); // integers as text
        const json = await readWith("json", bytes) as {
          images: { id: string; date_captured: string | null }[];
        };
        assertEquals(
          Object.fromEntries(json.images.map((i) => [String(i.id), i.date_captured])),
          {
            [c.c1]: "2024-06-01 17:00:00",
            [c.c1late]: "2024-06-02 23:00:00",
            [c.c1far]: null,
            [c.c2]: "2023-05-03 18:00:00",
            [c.c3far]: null,
            [c.c4]: "2024-08-01 17:00:00",
          },
        );
        assertEquals(await impossibleTimeLogLines("detections_coco", ctx), [
          "2 captures more than a day outside their session: date_captured of the image null",
        ]);
      });

      await t.step("taxa_list_csv and taxon_counts_csv: seen dates, start dates", async () => {
        const taxa = await records("csv", (await exportFile(h, f, "taxa_list_csv")).bytes);
        // d3 (2024-09-01) is the latest detection, but two months after its session
        assertEquals(
          taxa.map((r) => [r.first_seen, r.last_seen]),
          [["2023-05-03T23:00:00Z", "2024-08-01T22:00:00Z"]],
        );
        assertEquals(await impossibleTimeLogLines("taxa_list_csv", ctx), [
          "2 detections more than a day outside their session: left out of first_seen and " +
          "last_seen",
        ]);
        const counts = await records("csv", (await exportFile(h, f, "taxon_counts_csv")).bytes);
        assertEquals(pick(counts, "event_id", ["start_date"]), {
          [s.s1]: ["2024-06-01"],
          [s.s2]: [""],
          [s.s3]: ["2024-07-01"],
          [s.s4]: [""],
        });
        assertEquals(await impossibleTimeLogLines("taxon_counts_csv", ctx), [
          "2 sessions with an end before their start (or an infinite bound): start_date left " +
          "empty",
        ]);
      });

      await t.step(
        "occurrences_parquet: first/last/duration; the original's CSV keeps them",
        async () => {
          const { bytes } = await exportFile(h, f, "occurrences_parquet");
          const read = await readParquet(bytes);
          const cols = ["first_appearance_timestamp", "last_appearance_timestamp", "duration"];
          const csv = await records(
            "csv",
            (await exportFile(h, f, "occurrences_simple_csv")).bytes,
          );
          for (const rows of [read.pyarrow.rows, read.duckdb.rows]) {
            // the readers show the instants in UTC (the CSV in the station's wall clock)
            assertEquals(pick(rows, "id", cols), {
              [o.o1]: ["2024-06-01 22:00:00", "", ""], // d1 kept; d1far 8 days after: no last
              [o.o2]: ["2023-05-03 23:00:00", "2023-05-03 23:00:00", "0:00:00"],
              [o.o3]: ["", "", ""], // its only detection is two months after its session
              [o.o4]: ["2024-08-01 22:00:00", "2024-08-01 22:00:00", "0:00:00"],
            });
            // every other cell is the simple CSV's
            const rest = (r: Record<string, string>): Record<string, string> =>
              Object.fromEntries(Object.entries(r).filter(([k]) => !cols.includes(k)));
            assertEquals(asCsvRows(rows).map(rest), csv.map(rest));
          }
          // the simple CSV is the original's (antenna-compat): its values stay as they were
          assertEquals(pick(csv, "id", ["last_appearance_timestamp", "duration"])[o.o1], [
            "2024-06-09 19:00:00",
            "8 days, 2:00:00",
          ]);
          assertEquals(await impossibleTimeLogLines("occurrences_parquet", ctx), [
            "2 occurrences with a time more than a day outside their session: that " +
            "first_appearance_timestamp or last_appearance_timestamp null, and duration null",
          ]);
          // the original's formats carry no session interval or negative duration: no lines
          for (const format of ["occurrences_simple_csv", "occurrences_api_json"]) {
            assertEquals(await impossibleTimeLogLines(format, ctx), []);
          }
        },
      );

      await t.step("camtrap_dp: frictionless-valid; spans, media and events", async () => {
        const { done, bytes } = await exportFile(h, f, "camtrap_dp");
        const report = await readCamtrap(bytes);
        assertEquals(report.errors, []);
        assertEquals(report.profile_errors, []);
        assertEquals(done.record_count, 3); // o3 has no possible time: left out
        const [deployment] = report.tables.deployments;
        assertEquals(
          [deployment.deploymentStart, deployment.deploymentEnd, deployment.timestampIssues],
          // c5 has no session, so nothing to be outside of: it opens the span
          ["2019-12-31T18:00:00-06:00", "2024-08-01T17:00:00-05:00", "true"],
        );
        assertEquals(
          report.tables.media.map((m) => m.mediaID).sort(),
          [c.c1, c.c1late, c.c2, c.c4].sort(),
        );
        const events = report.tables.observations.filter((x) => x.observationLevel === "event");
        assertEquals(pick(events, "eventID", ["eventStart", "eventEnd"]), {
          [o.o1]: ["2024-06-01T17:00:00-05:00", "2024-06-02T23:00:00-05:00"],
          [o.o2]: ["2023-05-03T18:00:00-05:00", "2023-05-03T18:00:00-05:00"],
          [o.o4]: ["2024-08-01T17:00:00-05:00", "2024-08-01T17:00:00-05:00"],
        });
        const frames = report.tables.observations.filter((x) => x.observationLevel === "media");
        assertEquals(
          frames.map((x) => x.observationID).sort(),
          [d.d1, d.d1late, d.d2, d.d4].map((id) => `detection-${id}`).sort(),
        );
        const descriptor = report.descriptor as { temporal: { start: string; end: string } };
        assertEquals(descriptor.temporal, { start: "2019-12-31", end: "2024-08-01" });
        assertEquals(await impossibleTimeLogLines("camtrap_dp", ctx), [
          "2 sessions with an end before their start (or an infinite bound): left out of " +
          "deploymentStart and deploymentEnd, timestampIssues true",
          "3 captures more than a day outside their session: media rows and their media " +
          "observations left out, out of deploymentStart and deploymentEnd, timestampIssues true",
          "1 detection more than a day outside its session: left out of their occurrence's " +
          "eventStart and eventEnd",
          "1 occurrence with a time more than a day outside its session: left out (no " +
          "detection within a day of its session: eventStart is required)",
        ]);
      });
    } finally {
      await h.close();
    }
  },
});
