import postgres from "postgres";
import { assert, assertEquals } from "../../tests/assert.ts";
import { createSmallProject, type SmallProject } from "../../tests/fixtures/small_project.ts";
import { requireEnv, serviceTest, testDatabase } from "../../tests/support.ts";
import { exportAllBatches } from "../../tests/record_export.ts";
import type { ExportFilters, ExportQueryContext, RecordExporter } from "../types.ts";
import { occurrencesApiJson } from "./occurrences_api_json.ts";

const exporter: RecordExporter = occurrencesApiJson;

/** Runs the whole export batch by batch, as the export activity does. */
function exportAll(
  ctx: ExportQueryContext,
  limit: number,
): Promise<{ text: string; records: number; batches: number }> {
  return exportAllBatches(exporter, ctx, limit);
}

// deno-lint-ignore no-explicit-any
type Json = any;

async function withProject(
  fn: (p: SmallProject, ctx: (filters?: ExportFilters) => ExportQueryContext) => Promise<void>,
): Promise<void> {
  const sql = testDatabase();
  try {
    const p = await createSmallProject(sql);
    await fn(p, (filters = {}) => ({ sql, projectId: p.projectId, filters }));
  } finally {
    await sql.end();
  }
}

Deno.test({
  name: "occurrences_api_json: one JSON array of the project's valid occurrences in id order",
  ...serviceTest,
  async fn() {
    await withProject(async (p, ctx) => {
      const other = await createSmallProject(ctx().sql);
      const { text } = await exportAll(ctx(), 100);
      const items: Json[] = JSON.parse(text);
      assert(Array.isArray(items));
      assertEquals(items.map((o) => o.id), p.validIds);
      assert(!items.some((o) => other.validIds.includes(o.id)));
      assertEquals(Object.keys(items[0]), [
        "id",
        "details",
        "event",
        "deployment",
        "first_appearance_timestamp",
        "first_appearance_time",
        "duration",
        "duration_label",
        "determination",
        "determination_score",
        "detections_count",
        "detection_images",
        "best_machine_prediction",
        "identifications",
        "detections",
      ]);
    });
  },
});

Deno.test({
  name: "occurrences_api_json: the nested occurrence object, in full",
  ...serviceTest,
  async fn() {
    await withProject(async (p, ctx) => {
      const items: Json[] = JSON.parse((await exportAll(ctx(), 100)).text);
      const rich = items.find((o) => o.id === p.occurrences.rich);
      const taxon = (id: number, name: string, rank: string) => ({ id, name, rank });
      const agrotis = taxon(p.taxa.agrotis, "Agrotis ipsilon", "SPECIES");
      const moth = { id: p.algorithms.moth, name: "Moth classifier" };
      const order = { id: p.algorithms.order, name: "Order classifier" };
      const image = (id: number, url: string) => ({ id, url, width: 4096, height: 2160 });
      const classifiedAt = "2024-06-02T06:00:00.000Z";
      assertEquals(rich, {
        id: p.occurrences.rich,
        details: `/api/v2/occurrences/${p.occurrences.rich}/`,
        event: {
          id: p.events.night1,
          name: `2024-06-01 North "Field", plot 2`,
          details: `/api/v2/events/${p.events.night1}/`,
          date_label: "Jun 1-2, 2024",
        },
        deployment: {
          id: p.deployments.north,
          name: `North "Field", plot 2`,
          details: `/api/v2/deployments/${p.deployments.north}/`,
        },
        first_appearance_timestamp: "2024-06-01T22:15:03.000Z",
        first_appearance_time: "22:15:03",
        duration: 300,
        duration_label: "5 min",
        determination: {
          ...agrotis,
          parents: [
            taxon(p.taxa.lepidoptera, "Lepidoptera", "ORDER"),
            taxon(p.taxa.noctuidae, "Noctuidae", "FAMILY"),
          ],
        },
        determination_score: 0.91,
        detections_count: 3,
        detection_images: [
          "https://cdn.example.org/ami/crops/a1.jpg",
          "https://cdn.example.org/ami/crops/a2.jpg",
        ],
        // the non-terminal 0.99 does not count; the bbox-less detection's 0.97 does
        best_machine_prediction: { taxon: agrotis, score: 0.97, algorithm: moth },
        identifications: [
          {
            id: p.identifications.aliceOnRich,
            taxon: agrotis,
            user: { id: p.users.alice, name: "Alice Example" },
            withdrawn: false,
            agreed_with_identification_id: null,
            agreed_with_prediction_id: p.classifications.a3Moth,
            created_at: "2024-06-02T08:00:00.000Z",
          },
          {
            id: p.identifications.carolOnRich,
            taxon: agrotis,
            user: { id: p.users.carol, name: "Carol Example" },
            withdrawn: false,
            agreed_with_identification_id: p.identifications.aliceOnRich,
            agreed_with_prediction_id: null,
            created_at: "2024-06-02T10:00:00.000Z",
          },
          {
            id: p.identifications.bobWithdrawnOnRich,
            taxon: taxon(p.taxa.catocala, "Catocala relicta", "SPECIES"),
            user: { id: p.users.bob, name: "" },
            withdrawn: true,
            agreed_with_identification_id: null,
            agreed_with_prediction_id: null,
            created_at: "2024-06-02T11:00:00.000Z",
          },
        ],
        detections: [
          {
            id: p.detections.a1,
            timestamp: "2024-06-01T22:15:03.000Z",
            source_image: image(p.images.s1, "https://cdn.example.org/ami/captures/s1.jpg"),
            bbox: [10, 20, 110, 220],
            url: "https://cdn.example.org/ami/crops/a1.jpg",
            classifications: [
              {
                id: p.classifications.a1Moth,
                taxon: agrotis,
                score: 0.8,
                terminal: true,
                algorithm: moth,
                created_at: classifiedAt,
              },
              {
                id: p.classifications.a1OrderNonTerminal,
                taxon: taxon(p.taxa.lepidoptera, "Lepidoptera", "ORDER"),
                score: 0.99,
                terminal: false,
                algorithm: order,
                created_at: classifiedAt,
              },
            ],
          },
          {
            id: p.detections.a2,
            timestamp: "2024-06-01T22:18:03.000Z",
            source_image: image(p.images.s4, "https://cdn.example.org/ami/captures/s4.jpg"),
            bbox: [5.5, 6, 55.5, 106],
            url: "https://cdn.example.org/ami/crops/a2.jpg",
            classifications: [
              {
                id: p.classifications.a2Order,
                taxon: agrotis,
                score: 0.93,
                terminal: true,
                algorithm: order,
                created_at: classifiedAt,
              },
            ],
          },
          {
            id: p.detections.a3,
            timestamp: "2024-06-01T22:20:03.000Z",
            source_image: image(p.images.s1, "https://cdn.example.org/ami/captures/s1.jpg"),
            bbox: null,
            url: null,
            classifications: [
              {
                id: p.classifications.a3Moth,
                taxon: agrotis,
                score: 0.97,
                terminal: true,
                algorithm: moth,
                created_at: classifiedAt,
              },
            ],
          },
        ],
      });
    });
  },
});

Deno.test({
  name: "occurrences_api_json: labels, missing event and prediction ties",
  ...serviceTest,
  async fn() {
    await withProject(async (p, ctx) => {
      const items: Json[] = JSON.parse((await exportAll(ctx(), 100)).text);
      const byId = new Map(items.map((o) => [o.id, o]));
      const agrees = byId.get(p.occurrences.agreesWithPrediction);
      assertEquals(agrees.duration_label, "0 sec");
      assertEquals(agrees.detection_images, []);
      assertEquals(agrees.detections[0].url, null);
      assertEquals(agrees.identifications[0].agreed_with_prediction_id, p.classifications.b1Moth);
      assertEquals(agrees.best_machine_prediction.score, 0.7);

      const machineOnly = byId.get(p.occurrences.machineOnly);
      assertEquals(machineOnly.event.date_label, "Jun 3, 2024");
      assertEquals(machineOnly.duration, 3780);
      assertEquals(machineOnly.duration_label, "1 hour 3 min");
      assertEquals(machineOnly.best_machine_prediction, {
        taxon: { id: p.taxa.catocala, name: "Catocala relicta", rank: "SPECIES" },
        score: 0.55,
        algorithm: { id: p.algorithms.order, name: "Order classifier" },
      });
      assertEquals(machineOnly.identifications.map((i: Json) => i.withdrawn), [true]);
      assertEquals(machineOnly.detections[1].classifications, []);

      const noEvent = byId.get(p.occurrences.noEvent);
      assertEquals(noEvent.event, null);
      assertEquals(noEvent.deployment.id, p.deployments.south);
      assertEquals(noEvent.duration_label, "20 sec");
      // two terminal classifications tie at 0.6: the lower id wins
      assertEquals(noEvent.best_machine_prediction.algorithm.name, "Moth classifier");
      assertEquals(noEvent.detections.map((d: Json) => d.id), [
        p.detections.g1,
        p.detections.g2,
        p.detections.g3,
      ]);
    });
  },
});

Deno.test({
  name: "occurrences_api_json: batches of 2 give the same bytes as one batch",
  ...serviceTest,
  async fn() {
    await withProject(async (p, ctx) => {
      const whole = await exportAll(ctx(), 1000);
      const paged = await exportAll(ctx(), 2);
      assertEquals(whole.batches, 1);
      assertEquals(paged.batches, 2);
      assertEquals(paged.records, p.validIds.length);
      assertEquals(paged.text, whole.text);
      assertEquals(JSON.parse(paged.text).length, p.validIds.length);
    });
  },
});

Deno.test({
  name: "occurrences_api_json: a capture set keeps its occurrences, each once",
  ...serviceTest,
  async fn() {
    await withProject(async (p, ctx) => {
      const { text } = await exportAll(ctx({ collection_id: p.collectionId }), 1);
      const items: Json[] = JSON.parse(text);
      assertEquals(items.map((o) => o.id), p.collectionValidIds);
      assertEquals(items[0].detections.length, 3);
    });
  },
});

Deno.test({
  name: "occurrences_api_json: no records gives []",
  ...serviceTest,
  async fn() {
    await withProject(async (p, ctx) => {
      const empty = ctx({ collection_id: p.emptyCollectionId });
      const { text, records } = await exportAll(empty, 10);
      assertEquals(records, 0);
      assertEquals(text, "[]");
      assertEquals(JSON.parse(text), []);
      assertEquals(await exporter.count(empty), 0);
    });
  },
});

Deno.test({
  name: "occurrences_api_json: count equals the objects exported",
  ...serviceTest,
  async fn() {
    await withProject(async (p, ctx) => {
      for (const filters of [{}, { collection_id: p.collectionId }]) {
        const { text, records } = await exportAll(ctx(filters), 3);
        const count = await exporter.count(ctx(filters));
        assertEquals(count, records);
        assertEquals(count, JSON.parse(text).length);
      }
      assertEquals(await exporter.count(ctx()), p.validIds.length);
    });
  },
});

Deno.test({
  name: "occurrences_api_json: one statement per batch, whatever its size",
  ...serviceTest,
  async fn() {
    const setup = testDatabase(1);
    let statements = 0;
    const sql = postgres(requireEnv("TEST_DATABASE_URL"), {
      max: 1,
      onnotice: () => {},
      debug: () => statements++,
    });
    try {
      const p = await createSmallProject(setup);
      await sql`select 1`; // connecting also runs postgres.js's type lookup: not ours to count
      const ctx = { sql, projectId: p.projectId, filters: {} };
      for (const limit of [1, 3, 1000]) {
        statements = 0;
        const batch = await exporter.fetchBatch(ctx, { afterId: null, limit, recordsBefore: 0 });
        assertEquals(statements, 1, `statements for a batch of ${limit}`);
        assertEquals(batch.records, Math.min(limit, p.validIds.length));
        assertEquals(batch.lastId, p.validIds[batch.records - 1]);
        // the ids inside the text are numbers, as the API returns them, whatever the client
        assertEquals(JSON.parse(`[${batch.text}]`)[0].id, p.validIds[0]);
      }
    } finally {
      await Promise.all([setup.end(), sql.end()]);
    }
  },
});
