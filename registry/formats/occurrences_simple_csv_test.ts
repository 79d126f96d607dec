import { parse } from "csv-parse/sync";
import { assert, assertEquals } from "../../tests/assert.ts";
import { createSmallProject } from "../../tests/fixtures/small_project.ts";
import {
  assertBatchingAgrees,
  assertCountsAgree,
  batchesOf,
  smallProjectTest,
  statementCountTest,
} from "./test_support.ts";
import type { RecordExporter } from "../types.ts";
import { occurrenceCsvColumns, occurrencesSimpleCsv } from "./occurrences_simple_csv.ts";

const exporter: RecordExporter = occurrencesSimpleCsv;

const exportAll = batchesOf(exporter);

/** The header line of the original platform's simple CSV (the antenna-compat expected file). */
async function antennaHeader(): Promise<string[]> {
  const url = new URL(
    "../../tests/fixtures/antenna_compat/expected/occurrences_simple_csv.csv",
    import.meta.url,
  );
  return (await Deno.readTextFile(url)).split(/\r?\n/)[0].replace(/^\uFEFF/, "").split(",");
}

function rows(text: string): Record<string, string>[] {
  return parse(text, { columns: true }) as Record<string, string>[];
}

smallProjectTest(
  "occurrences_simple_csv: exact header, then the project's valid occurrences in id order",
  async ({ p, filtered: ctx }) => {
    // a second project in the same database must not leak into the first one's file
    const other = await createSmallProject(ctx().sql);
    const { text } = await exportAll(ctx(), 100);
    const table = parse(text) as string[][];
    // the header of the original platform's own file (../shared/antenna-compat/expected/)
    assertEquals(table[0], await antennaHeader());
    assertEquals(table[0], [...occurrenceCsvColumns]);
    assertEquals(table.slice(1).map((r) => Number(r[0])), p.validIds);
    assert(!table.slice(1).some((r) => other.validIds.includes(Number(r[0]))));
  },
);

smallProjectTest(
  "occurrences_simple_csv: the values of every case",
  async ({ p, filtered: ctx }) => {
    const { text } = await exportAll(ctx(), 100);
    const byId = new Map(rows(text).map((r) => [Number(r.id), r]));
    const common = {
      project_id: String(p.projectId),
      project_name: "Night moths\nsurvey",
    };
    const north = {
      event_id: String(p.events.night1),
      event_name: "Saturday, Jun 1-2 2024", // §4.7 (TIME_ZONE UTC here)
      deployment_id: String(p.deployments.north),
      deployment_name: `North "Field", plot 2`,
    };
    // best prediction from a bbox-less detection; best detection by any classification, the
    // non-terminal 0.99 included (§4.5); latest standing identification is Carol's (Bob's later
    // one is withdrawn); agreed_with_user is the e-mail (§5.2)
    assertEquals(byId.get(p.occurrences.rich), {
      id: String(p.occurrences.rich),
      ...north,
      ...common,
      determination_id: String(p.taxa.agrotis),
      determination_name: "Agrotis ipsilon",
      determination_score: "0.91",
      verification_status: "True",
      best_machine_prediction_name: "Agrotis ipsilon",
      best_machine_prediction_algorithm: "Moth classifier",
      best_machine_prediction_score: "0.97",
      verified_by: "Carol Example",
      participant_count: "2",
      agreed_with_algorithm: "",
      agreed_with_user: byId.get(p.occurrences.rich)!.agreed_with_user,
      determination_matches_machine_prediction: "True",
      detections_count: "3",
      first_appearance_timestamp: "2024-06-01 22:15:03",
      last_appearance_timestamp: "2024-06-01 22:20:03",
      duration: "0:05:00",
      best_detection_url: "/media/crops/a1.jpg",
      best_detection_bbox: "[10, 20, 110, 220]",
      best_detection_width: "100.0",
      best_detection_height: "200.0",
      best_detection_capture_url: "https://cdn.example.org/ami/captures/s1.jpg",
    });
    // agrees with a prediction; the user has no name (no e-mail fallback); no crop: no URL
    assertEquals(byId.get(p.occurrences.agreesWithPrediction), {
      id: String(p.occurrences.agreesWithPrediction),
      ...north,
      ...common,
      determination_id: String(p.taxa.agrotis),
      determination_name: "Agrotis ipsilon",
      determination_score: "1.0",
      verification_status: "True",
      best_machine_prediction_name: "Agrotis ipsilon",
      best_machine_prediction_algorithm: "Moth classifier",
      best_machine_prediction_score: "0.7",
      verified_by: "",
      participant_count: "1",
      agreed_with_algorithm: "Moth classifier",
      agreed_with_user: "",
      determination_matches_machine_prediction: "True",
      detections_count: "1",
      first_appearance_timestamp: "2024-06-01 23:00:00",
      last_appearance_timestamp: "2024-06-01 23:00:00",
      duration: "0:00:00",
      best_detection_url: "",
      best_detection_bbox: "[100, 100, 300, 250]",
      best_detection_width: "200.0",
      best_detection_height: "150.0",
      best_detection_capture_url: "https://cdn.example.org/ami/captures/s2.jpg",
    });
    // only a withdrawn identification: not verified, nobody took part
    assertEquals(byId.get(p.occurrences.machineOnly), {
      id: String(p.occurrences.machineOnly),
      event_id: String(p.events.night2),
      event_name: "Monday, Jun 3 2024",
      deployment_id: String(p.deployments.south),
      deployment_name: "South meadow",
      ...common,
      determination_id: String(p.taxa.noctuidae),
      determination_name: "Noctuidae",
      determination_score: "0.5",
      verification_status: "False",
      best_machine_prediction_name: "Catocala relicta",
      best_machine_prediction_algorithm: "Order classifier",
      best_machine_prediction_score: "0.55",
      verified_by: "",
      participant_count: "0",
      agreed_with_algorithm: "",
      agreed_with_user: "",
      determination_matches_machine_prediction: "False",
      detections_count: "2",
      first_appearance_timestamp: "2024-06-03 21:30:00",
      last_appearance_timestamp: "2024-06-03 22:33:00",
      duration: "1:03:00",
      best_detection_url: "/media/crops/c1.jpg",
      best_detection_bbox: "[0, 0, 40, 30]",
      best_detection_width: "40.0",
      best_detection_height: "30.0",
      best_detection_capture_url: "https://cdn.example.org/ami/captures/s3.jpg",
    });
    // no event; an unclassified detection loses to classified ones, ties go to the lowest id;
    // the prediction tie (0.6, terminal) goes to the highest classification id (§4.3)
    assertEquals(byId.get(p.occurrences.noEvent), {
      id: String(p.occurrences.noEvent),
      event_id: "",
      event_name: "",
      deployment_id: String(p.deployments.south),
      deployment_name: "South meadow",
      ...common,
      determination_id: String(p.taxa.catocala),
      determination_name: "Catocala relicta",
      determination_score: "0.42",
      verification_status: "False",
      best_machine_prediction_name: "Noctuidae",
      best_machine_prediction_algorithm: "Order classifier",
      best_machine_prediction_score: "0.6",
      verified_by: "",
      participant_count: "0",
      agreed_with_algorithm: "",
      agreed_with_user: "",
      determination_matches_machine_prediction: "False",
      detections_count: "3",
      first_appearance_timestamp: "2024-06-05 01:00:00",
      last_appearance_timestamp: "2024-06-05 01:00:20",
      duration: "0:00:20",
      best_detection_url: "/media/crops/g2.jpg",
      best_detection_bbox: "[10, 10, 20, 20]",
      best_detection_width: "10.0",
      best_detection_height: "10.0",
      best_detection_capture_url: "https://cdn.example.org/ami/captures/s5.jpg",
    });
  },
);

smallProjectTest(
  "occurrences_simple_csv: RFC 4180 bytes (CRLF records, quoted comma, quote and newline)",
  async ({ p, filtered: ctx }) => {
    const batch = await occurrencesSimpleCsv.fetchBatch(ctx(), {
      afterId: p.occurrences.rich - 1,
      limit: 1,
      recordsBefore: 0,
    });
    assertEquals(batch.records, 1);
    assertEquals(batch.lastId, p.occurrences.rich);
    assert(
      batch.text.startsWith(
        `${p.occurrences.rich},${p.events.night1},"Saturday, Jun 1-2 2024",` +
          `${p.deployments.north},"North ""Field"", plot 2",${p.projectId},` +
          `"Night moths\nsurvey",`,
      ),
      batch.text,
    );
    assert(batch.text.endsWith(",https://cdn.example.org/ami/captures/s1.jpg\r\n"), batch.text);
    assertEquals(
      occurrencesSimpleCsv.prologue(),
      occurrenceCsvColumns.join(",") + "\r\n",
    );
  },
);

smallProjectTest(
  "occurrences_simple_csv: batches of 2 give the same bytes as one batch",
  async ({ p, filtered: ctx }) => {
    await assertBatchingAgrees(exporter, ctx(), p.validIds.length);
  },
);

smallProjectTest(
  "occurrences_simple_csv: a capture set keeps its occurrences, each once",
  async ({ p, filtered: ctx }) => {
    const filtered = ctx({ collection_id: p.collectionId });
    const { text, records } = await exportAll(filtered, 1);
    assertEquals(rows(text).map((r) => Number(r.id)), p.collectionValidIds);
    assertEquals(records, p.collectionValidIds.length);
    // the whole occurrence is exported, not only its detections in the set
    assertEquals(rows(text)[0].detections_count, "3");
  },
);

smallProjectTest(
  "occurrences_simple_csv: no records gives the header alone",
  async ({ p, filtered: ctx }) => {
    const empty = ctx({ collection_id: p.emptyCollectionId });
    const { text, records } = await exportAll(empty, 10);
    assertEquals(records, 0);
    assertEquals(text, occurrenceCsvColumns.join(",") + "\r\n");
    assertEquals(await exporter.count(empty), 0);
    assertEquals(
      await exporter.fetchBatch(empty, { afterId: null, limit: 10, recordsBefore: 0 }),
      { records: 0, lastId: null, text: "" },
    );
  },
);

smallProjectTest(
  "occurrences_simple_csv: count equals the rows exported",
  async ({ p, filtered: ctx }) => {
    const read = (text: string): number => rows(text).length;
    await assertCountsAgree(exporter, [ctx(), ctx({ collection_id: p.collectionId })], read);
    assertEquals(await exporter.count(ctx()), p.validIds.length);
  },
);

statementCountTest(
  "occurrences_simple_csv: one statement per batch, whatever its size",
  (p) => ({ collection_id: p.collectionId }),
  async ({ p, ctx, statements, reset }) => {
    for (const limit of [1, 2, 1000]) {
      reset();
      const batch = await exporter.fetchBatch(ctx, { afterId: null, limit, recordsBefore: 0 });
      assertEquals(statements(), 1, `statements for a batch of ${limit}`);
      assertEquals(batch.records, Math.min(limit, p.collectionValidIds.length));
      assertEquals(batch.lastId, p.collectionValidIds[batch.records - 1]);
    }
  },
);
