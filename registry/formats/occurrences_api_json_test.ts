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
import { occurrencesApiJson } from "./occurrences_api_json.ts";

const exporter: RecordExporter = occurrencesApiJson;

const exportAll = batchesOf(exporter);

// deno-lint-ignore no-explicit-any
type Json = any;

smallProjectTest(
  "occurrences_api_json: one JSON array of the project's valid occurrences in id order",
  async ({ p, filtered: ctx }) => {
    const other = await createSmallProject(ctx().sql);
    const { text } = await exportAll(ctx(), 100);
    const items: Json[] = JSON.parse(text);
    assert(Array.isArray(items));
    assertEquals(items.map((o) => o.id), p.validIds);
    assert(!items.some((o) => other.validIds.includes(o.id)));
    // antenna-compat §6.1 (key order is free: compared as a set)
    assertEquals(Object.keys(items[0]).sort(), [
      "best_machine_prediction",
      "created_at",
      "deployment",
      "details",
      "detection_images",
      "detections",
      "detections_count",
      "determination",
      "determination_details",
      "determination_id",
      "determination_score",
      "duration",
      "duration_label",
      "event",
      "first_appearance_time",
      "first_appearance_timestamp",
      "id",
      "identifications",
      "predictions",
      "updated_at",
    ]);
  },
);

smallProjectTest(
  "occurrences_api_json: the nested occurrence object (antenna-compat §6)",
  async ({ p, filtered: ctx }) => {
    const items: Json[] = JSON.parse((await exportAll(ctx(), 100)).text);
    const rich = items.find((o) => o.id === p.occurrences.rich);
    const base = "http://localhost:8000/api/v2";
    assertEquals(rich.details, `${base}/occurrences/${p.occurrences.rich}/`);
    assertEquals(rich.event, {
      id: p.events.night1,
      name: "Saturday, Jun 1-2 2024",
      details: `${base}/events/${p.events.night1}/`,
      date_label: "Jun 1-2 2024",
      user_permissions: [],
    });
    assertEquals(rich.deployment, {
      id: p.deployments.north,
      name: `North "Field", plot 2`,
      details: `${base}/deployments/${p.deployments.north}/`,
      user_permissions: [],
    });
    assertEquals(rich.first_appearance_timestamp, "2024-06-01T22:15:03");
    assertEquals(rich.first_appearance_time, "22:15:03");
    assertEquals(rich.duration, "P0DT00H05M00S");
    assertEquals(rich.duration_label, "5 minutes");
    assertEquals(rich.determination_id, p.taxa.agrotis);
    assertEquals(Object.keys(rich.determination).sort(), [
      "details",
      "id",
      "name",
      "parent",
      "rank",
      "user_permissions",
    ]);
    assertEquals(rich.determination_details.taxon.id, p.taxa.agrotis);
    assertEquals(rich.determination_details.taxon.parents.map((t: Json) => t.name), [
      "Lepidoptera",
      "Noctuidae",
    ]);
    assertEquals(rich.detections_count, 3);
    // every crop, timestamp ascending, from MEDIA_URL (§4.6)
    assertEquals(rich.detection_images, ["/media/crops/a1.jpg", "/media/crops/a2.jpg"]);
    // the JSON rule (§4.3): the bbox-less detection's 0.97 is the moth classifier's best
    assertEquals(rich.best_machine_prediction.taxon.name, "Agrotis ipsilon");
    assertEquals(rich.best_machine_prediction.algorithm.name, "Moth classifier");
    assertEquals(rich.best_machine_prediction.score, 0.97);
    // withdrawn ones listed too, newest first (§6.3)
    assertEquals(rich.identifications.map((i: Json) => i.withdrawn), [true, false, false]);
    assertEquals(rich.identifications[1].user.name, "Carol Example");
    assertEquals(rich.identifications[1].comment, "");
    // detections newest first; each with its capture and classifications
    assertEquals(rich.detections.map((d: Json) => d.id), [
      p.detections.a3,
      p.detections.a2,
      p.detections.a1,
    ]);
    const a1 = rich.detections[2];
    assertEquals(a1.timestamp, "2024-06-01T22:15:03");
    assertEquals(a1.url, "/media/crops/a1.jpg");
    assertEquals(a1.bbox, [10, 20, 110, 220]);
    assertEquals(a1.occurrence, `${base}/occurrences/${p.occurrences.rich}/`);
    assertEquals([a1.width, a1.height], [null, null]);
    assertEquals(a1.capture.url, "https://cdn.example.org/ami/captures/s1.jpg");
    assertEquals(a1.classifications[0].algorithm.version, 1);
    assertEquals(a1.classifications[0].applied_to, null);
    assert(rich.created_at.startsWith("20") && !rich.created_at.endsWith("Z"));
  },
);

smallProjectTest(
  "occurrences_api_json: batches of 2 give the same bytes as one batch",
  async ({ p, filtered: ctx }) => {
    const text = await assertBatchingAgrees(exporter, ctx(), p.validIds.length);
    assertEquals(JSON.parse(text).length, p.validIds.length);
  },
);

smallProjectTest(
  "occurrences_api_json: a capture set keeps its occurrences, each once",
  async ({ p, filtered: ctx }) => {
    const { text } = await exportAll(ctx({ collection_id: p.collectionId }), 1);
    const items: Json[] = JSON.parse(text);
    assertEquals(items.map((o) => o.id), p.collectionValidIds);
    assertEquals(items[0].detections.length, 3);
  },
);

smallProjectTest("occurrences_api_json: no records gives []", async ({ p, filtered: ctx }) => {
  const empty = ctx({ collection_id: p.emptyCollectionId });
  const { text, records } = await exportAll(empty, 10);
  assertEquals(records, 0);
  assertEquals(text, "[]");
  assertEquals(JSON.parse(text), []);
  assertEquals(await exporter.count(empty), 0);
});

smallProjectTest(
  "occurrences_api_json: count equals the objects exported",
  async ({ p, filtered: ctx }) => {
    const read = (text: string): number => JSON.parse(text).length;
    await assertCountsAgree(exporter, [ctx(), ctx({ collection_id: p.collectionId })], read);
    assertEquals(await exporter.count(ctx()), p.validIds.length);
  },
);

statementCountTest(
  "occurrences_api_json: one statement per batch, whatever its size",
  () => ({}),
  async ({ p, ctx, statements, reset }) => {
    for (const limit of [1, 3, 1000]) {
      reset();
      const batch = await exporter.fetchBatch(ctx, { afterId: null, limit, recordsBefore: 0 });
      assertEquals(statements(), 1, `statements for a batch of ${limit}`);
      assertEquals(batch.records, Math.min(limit, p.validIds.length));
      assertEquals(batch.lastId, p.validIds[batch.records - 1]);
      // the ids inside the text are numbers, as the API returns them, whatever the client
      assertEquals(JSON.parse(`[${batch.text}]`)[0].id, p.validIds[0]);
    }
  },
);
