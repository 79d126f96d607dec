/**
 * Compatibility with the original platform (Antenna): `occurrences_simple_csv`,
 * `occurrences_api_json` and `occurrences_ndjson` exported through the real pipeline (API →
 * workflow → worker → storage → download) with `TIME_ZONE=America/New_York` equal the files the
 * original wrote for `shared/antenna-compat/cases.sql` (README §1: CSV byte for byte, JSON value
 * for value with types). A second project holds our own cases for the branches the spec names
 * without a handed-over case (README §9.2), checked against the values the spec's rules give.
 */
import { parse } from "csv-parse/sync";
import { hashToken } from "../domain/users.ts";
import { createDatabase, dropDatabase, withDatabase } from "../cli/dev_services.ts";
import { connectDatabase } from "../db/client.ts";
import { migrate } from "../db/migrate.ts";
import { assertEquals } from "./assert.ts";
import { type Harness, startHarness } from "./harness.ts";
import { requireEnv, serviceTest } from "./support.ts";

/** A copy of `shared/antenna-compat/` (the spec's cases and files), so a clone tests alone. */
const SPEC = new URL("./fixtures/antenna_compat/", import.meta.url);

/** Our own cases (README §9.2 branches), project 2; ids clear of cases.sql's. */
const EXTRA_CASES = `
insert into projects (id, name, slug, owner_id) values (2, 'Extra cases', 'extra-cases', 1);
insert into deployments (id, project_id, name, time_zone) values
  (21, 2, 'Berlin roof', 'Europe/Berlin'),
  (22, 2, 'Zone-less station', null);
insert into events (id, project_id, deployment_id, start, "end") values
  -- Tue 2023-07-04 01:00-05:00 New York (TIME_ZONE): within one day
  (21, 2, 22, '2023-07-04 05:00+00', '2023-07-04 09:00+00'),
  -- Sun 2024-06-30 21:00 -> Mon 2024-07-01 05:00 Berlin: crosses a month (deviation d)
  (22, 2, 21, '2024-06-30 19:00+00', '2024-07-01 03:00+00'),
  -- Sun 2023-12-31 17:00 -> Mon 2024-01-01 01:00 New York: crosses a year
  (23, 2, 22, '2023-12-31 22:00+00', '2024-01-01 06:00+00');
insert into source_images (id, project_id, deployment_id, event_id, path, public_base_url, timestamp) values
  (21, 2, 21, 22, 'cap/21.jpg', 'https://cdn.example.net/photos', '2024-06-30 20:00+00'),
  (22, 2, 22, 21, '/cap/22.jpg', 'https://bucket.example.org/', '2023-07-04 06:00+00'),
  (23, 2, 22, 23, 'cap/23.jpg', 'https://bucket.example.org/', '2024-01-01 03:00+00');
insert into occurrences (id, project_id, deployment_id, event_id, determination_id, determination_score) values
  (201, 2, 22, 21, 4, 0.5),     -- one-day event; duration under a minute; unclassified detection
  (202, 2, 21, 22, 4, 0.42),    -- month-crossing event in Berlin; duration over a day; URL forms
  (203, 2, 22, 23, 4, 1e16),    -- year-crossing event; no classification at all
  (204, 2, 22, null, 4, 0.3),   -- no event
  (205, 2, null, null, 4, 1),   -- no deployment (TIME_ZONE applies)
  (206, 2, 22, 21, 4, 0.6),     -- its only identification is withdrawn
  (207, 2, 22, 21, 4, 0.6),     -- ties: identifications and best detection
  (208, 2, 22, 21, 4, 0.6),     -- no real box: {} (deviation f)
  (209, 2, 22, 21, 4, 0.6),     -- no real box: NaN element
  (210, 2, 22, 21, 4, 0.6);     -- no real box: NULL element
insert into detections (id, occurrence_id, source_image_id, bbox, timestamp, path) values
  (2011, 201, 22, '{0,0,10,10}', '2023-07-04 06:00:00+00', 'crops/2011.jpg'),
  (2012, 201, 22, '{0,0,10,10}', '2023-07-04 06:00:30+00', 'crops/2012.jpg'),
  (2021, 202, 21, '{0,0,10,10}', '2024-06-30 20:00+00', 'https://cdn.example.net/c/1.jpg'),
  (2022, 202, 21, '{3383,1045.5,1e-05,1e16}', '2024-07-02 23:00+00', 'crops/a b#1?.jpg'),
  (2031, 203, 23, '{0,0,10,10}', '2024-01-01 03:00+00', ''),
  (2041, 204, 22, '{0,0,10,10}', '2023-07-04 06:00+00', 'crops/2041.jpg'),
  (2051, 205, 22, '{0,0,10,10}', '2023-07-04 06:00+00', '\\crops\\Æ%20.jpg'),
  (2061, 206, 22, '{0,0,10,10}', '2023-07-04 06:00+00', 'crops/2061.jpg'),
  (2071, 207, 22, '{0,0,10,10}', '2023-07-04 06:00+00', 'crops/2071.jpg'),
  (2072, 207, 22, '{0,0,30,30}', '2023-07-04 06:00+00', 'crops/2072.jpg'),
  (2081, 208, 22, '{}', '2023-07-04 06:00+00', 'crops/2081.jpg'),
  (2091, 209, 22, '{0,0,NaN,10}', '2023-07-04 06:00+00', 'crops/2091.jpg'),
  (2101, 210, 22, '{0,NULL,10,10}', '2023-07-04 06:00+00', 'crops/2101.jpg');
insert into classifications (id, detection_id, taxon_id, algorithm_id, score, terminal, created_at) values
  (20111, 2011, 4, 2, 0.5, true, '2023-07-05 12:00+00'),
  (20221, 2022, 4, 2, 0.42, true, '2023-07-05 12:00+00'),
  (20411, 2041, 4, 2, 0.3, true, '2023-07-05 12:00+00'),
  (20511, 2051, 4, 2, 1.0, true, '2023-07-05 12:00+00'),
  (20611, 2061, 4, 2, 0.6, true, '2023-07-05 12:00+00'),
  (20711, 2071, 4, 2, 0.6, true, '2023-07-05 12:00+00'),
  (20721, 2072, 5, 2, 0.6, true, '2023-07-05 12:00+00');
insert into identifications (id, occurrence_id, user_id, taxon_id, withdrawn, created_at) values
  (2061, 206, 1, 4, true, '2023-07-06 12:00+00'),
  (2072, 207, 2, 4, false, '2023-07-06 12:00+00'),
  (2071, 207, 1, 4, false, '2023-07-06 12:00+00');
`;

async function text(url: URL): Promise<string> {
  return await Deno.readTextFile(url);
}

/** Runs one export through the API and returns the downloaded file and the record count. */
async function exportFile(
  h: Harness,
  token: string,
  project: number,
  format: string,
  filters: Record<string, unknown> = {},
): Promise<{ body: string; records: number }> {
  const res = await h.api("POST", "/api/v2/exports/", {
    token,
    body: { project, format, filters, force: true }, // each call checks a fresh export
  });
  const created = await res.json();
  assertEquals(res.status, 201, JSON.stringify(created));
  const done = await h.waitForExport(created.id, token);
  assertEquals(done.status, "SUCCESS", JSON.stringify(done));
  const body = new TextDecoder().decode(await h.download(done.file_url as string));
  return { body, records: done.record_count as number };
}

/** CSV rows as objects keyed by the header. */
function csvRecords(body: string): Record<string, string>[] {
  const [header, ...rows]: string[][] = parse(body);
  return rows.map((row) => Object.fromEntries(header.map((name, i) => [name, row[i]])));
}

Deno.test({
  name: "antenna-compat: the original's files for cases.sql, and the spec's rules on our cases",
  ...serviceTest,
  async fn(t) {
    const adminUrl = requireEnv("TEST_ADMIN_DATABASE_URL");
    const name = `ami_exports_compat_${Date.now()}`;
    await createDatabase(adminUrl, name);
    const url = withDatabase(adminUrl, name);
    const setup = connectDatabase(url, { max: 2 });
    let h: Harness | undefined;
    try {
      await migrate(setup);
      await setup.end();
      // cases.sql holds its own begin/commit: one connection
      const loader = connectDatabase(url, { max: 1 });
      await loader.file(new URL("cases.sql", SPEC).pathname);
      await loader.unsafe(EXTRA_CASES);
      const token = crypto.randomUUID().replaceAll("-", "");
      await loader`insert into api_tokens (user_id, token_hash, name)
        values (1, ${await hashToken(token)}, 'compat')`;
      await loader`analyze`;
      await loader.end();

      Deno.env.set("TEST_DATABASE_URL", url);
      h = await startHarness({
        storage: "fs",
        batchSize: 4,
        env: {
          TIME_ZONE: "America/New_York",
          MEDIA_URL: "/media/",
          PLATFORM_URL: "http://localhost:8000",
        },
      });
      const harness = h;

      await t.step("occurrences_simple_csv equals the original's file byte for byte", async () => {
        const { body, records } = await exportFile(harness, token, 1, "occurrences_simple_csv");
        assertEquals(body, await text(new URL("expected/occurrences_simple_csv.csv", SPEC)));
        assertEquals(records, 10);
      });

      await t.step("occurrences_simple_csv with collection_id=1 byte for byte", async () => {
        const { body, records } = await exportFile(harness, token, 1, "occurrences_simple_csv", {
          collection_id: 1,
        });
        assertEquals(
          body,
          await text(new URL("expected/occurrences_simple_csv_collection.csv", SPEC)),
        );
        assertEquals(records, 10);
      });

      const expectedJson = JSON.parse(
        await text(new URL("expected/occurrences_api_json.json", SPEC)),
      );

      await t.step("occurrences_api_json equals the original's array value for value", async () => {
        const { body, records } = await exportFile(harness, token, 1, "occurrences_api_json");
        assertEquals(JSON.parse(body), expectedJson);
        assertEquals(records, 10);
      });

      await t.step("occurrences_ndjson: line i is element i of the expected array", async () => {
        const { body, records } = await exportFile(harness, token, 1, "occurrences_ndjson");
        assertEquals(body.endsWith("\n"), true);
        assertEquals(body.slice(0, -1).split("\n").map((line) => JSON.parse(line)), expectedJson);
        assertEquals(records, 10);
      });

      await t.step("our cases: CSV cells by the spec's rules (§3-§5, §8, §9.2)", async () => {
        const { body, records } = await exportFile(harness, token, 2, "occurrences_simple_csv");
        const rows = csvRecords(body);
        // §4.1, deviation f: {} / NaN / NULL-element boxes are no box
        assertEquals(rows.map((r) => r.id), ["201", "202", "203", "204", "205", "206", "207"]);
        assertEquals(records, 7);
        const row = (id: number) => rows.find((r) => r.id === String(id))!;
        // event within one day; duration under a minute; unclassified detection after classified
        assertEquals(row(201).event_name, "Tuesday, Jul 4 2023");
        assertEquals(row(201).first_appearance_timestamp, "2023-07-04 02:00:00");
        assertEquals(row(201).last_appearance_timestamp, "2023-07-04 02:00:30");
        assertEquals(row(201).duration, "0:00:30");
        assertEquals(row(201).best_detection_url, "/media/crops/2011.jpg");
        assertEquals(row(201).best_detection_capture_url, "https://bucket.example.org/cap/22.jpg");
        // month-crossing event in the station's own zone; over a day; URL and float forms
        assertEquals(row(202).event_name, "Sunday, Jun 30-Jul 1 2024");
        assertEquals(row(202).first_appearance_timestamp, "2024-06-30 22:00:00");
        assertEquals(row(202).last_appearance_timestamp, "2024-07-03 01:00:00");
        assertEquals(row(202).duration, "2 days, 3:00:00");
        assertEquals(body.includes(`,"2 days, 3:00:00",`), true);
        assertEquals(row(202).best_detection_url, "/media/crops/a%20b%231%3F.jpg");
        assertEquals(row(202).best_detection_bbox, "[3383, 1045.5, 1e-05, 10000000000000000]");
        assertEquals(row(202).best_detection_width, "3382.99999");
        assertEquals(row(202).best_detection_height, "9999999999998954.0");
        assertEquals(
          row(202).best_detection_capture_url,
          "https://cdn.example.net/photos/cap/21.jpg",
        );
        // year-crossing event; no classification at all; empty crop path
        assertEquals(row(203).event_name, "Sunday, Dec 31 2023-Jan 1 2024");
        assertEquals(row(203).determination_score, "1e+16");
        assertEquals(row(203).best_machine_prediction_name, "");
        assertEquals(row(203).best_machine_prediction_score, "");
        assertEquals(row(203).determination_matches_machine_prediction, "");
        assertEquals(row(203).best_detection_url, "");
        // no event
        assertEquals([row(204).event_id, row(204).event_name], ["", ""]);
        assertEquals(row(204).deployment_name, "Zone-less station");
        // no deployment: TIME_ZONE applies
        assertEquals([row(205).deployment_id, row(205).deployment_name], ["", ""]);
        assertEquals(row(205).first_appearance_timestamp, "2023-07-04 02:00:00");
        assertEquals(row(205).determination_score, "1.0");
        assertEquals(row(205).best_detection_url, "/media/crops/%C3%86%2520.jpg");
        // withdrawn identification
        assertEquals(row(206).verification_status, "False");
        assertEquals(row(206).participant_count, "0");
        assertEquals(row(206).verified_by, "");
        // ties: equal created_at → highest id; equal score → lowest detection id
        assertEquals(row(207).verified_by, "Jonas Berg");
        assertEquals(row(207).participant_count, "2");
        assertEquals(row(207).verification_status, "True");
        assertEquals(row(207).best_detection_url, "/media/crops/2071.jpg");
        assertEquals(row(207).best_machine_prediction_name, "Noctua comes");
        assertEquals(row(207).determination_matches_machine_prediction, "False");
      });

      await t.step("our cases: JSON values by the spec's rules (§3, §4, §6, §8)", async () => {
        const { body } = await exportFile(harness, token, 2, "occurrences_api_json");
        const docs: Record<string, unknown>[] = JSON.parse(body);
        // deno-lint-ignore no-explicit-any
        const doc = (id: number): any => docs.find((d) => d.id === id);
        assertEquals(docs.map((d) => d.id), [201, 202, 203, 204, 205, 206, 207]);
        assertEquals(doc(201).event.date_label, "Jul 4 2023");
        assertEquals(doc(201).duration, "P0DT00H00M30S");
        assertEquals(doc(201).duration_label, "0 minutes");
        assertEquals(doc(201).detections.map((d: { id: number }) => d.id), [2012, 2011]);
        assertEquals(doc(202).event.name, "Sunday, Jun 30-Jul 1 2024");
        assertEquals(doc(202).event.date_label, "Jun 30-Jul 1 2024");
        assertEquals(doc(202).first_appearance_timestamp, "2024-06-30T22:00:00");
        assertEquals(doc(202).first_appearance_time, "22:00:00");
        assertEquals(doc(202).duration, "P2DT03H00M00S");
        assertEquals(doc(202).duration_label, "2 days 3 hours");
        assertEquals(doc(202).detection_images, [
          "https://cdn.example.net/c/1.jpg",
          "/media/crops/a%20b%231%3F.jpg",
        ]);
        assertEquals(doc(202).detections[1].timestamp, "2024-06-30T22:00:00");
        assertEquals(
          doc(202).detections[0].capture.url,
          "https://cdn.example.net/photos/cap/21.jpg",
        );
        assertEquals(doc(202).detections[0].bbox, [3383, 1045.5, 1e-05, 1e16]);
        assertEquals(doc(203).event.date_label, "Dec 31 2023-Jan 1 2024");
        assertEquals(doc(203).best_machine_prediction, null);
        assertEquals(doc(203).predictions, []);
        assertEquals(doc(203).determination_details.prediction, null);
        assertEquals(doc(203).detections[0].url, null);
        assertEquals(doc(203).detection_images, ["/media/"]);
        assertEquals(doc(204).event, null);
        assertEquals(doc(205).deployment, null);
        assertEquals(doc(205).first_appearance_timestamp, "2023-07-04T02:00:00");
        assertEquals(doc(206).identifications.length, 1);
        assertEquals(doc(206).identifications[0].withdrawn, true);
        assertEquals(doc(206).determination_details.identification, null);
        assertEquals(doc(206).determination_details.prediction.id, 20611);
        assertEquals(doc(207).identifications.map((i: { id: number }) => i.id), [2071, 2072]);
        assertEquals(doc(207).determination_details.identification.id, 2072);
        assertEquals(doc(207).determination_details.prediction, null);
        assertEquals(doc(207).predictions.map((c: { id: number }) => c.id), [20711, 20721]);
        assertEquals(doc(207).best_machine_prediction.taxon.name, "Noctua comes");
        assertEquals(doc(207).best_machine_prediction.algorithm.version, 1);
      });
    } finally {
      await h?.close();
      await setup.end().catch(() => {});
      await dropDatabase(adminUrl, name);
    }
  },
});
