import { parse } from "csv-parse/sync";
import { assert, assertEquals } from "../../tests/assert.ts";
import { createSmallProject } from "../../tests/fixtures/small_project.ts";
import { assertResumable, drainStream } from "../../tests/stream_drain.ts";
import { detectionCsvColumns, detectionsCsv } from "./detections_csv.ts";
import { assertShardsAgree, smallProjectTest } from "./test_support.ts";

const decoder = new TextDecoder();

smallProjectTest(
  "detections_csv: every detection of the valid occurrences, values, filters, resume",
  async ({ sql, p, ctx }) => {
    const other = await createSmallProject(sql);
    // batches of 2 split occurrences' detections across batches; resume after every chunk
    const { bytes, records } = await assertResumable(detectionsCsv, ctx, 2);
    const table = parse(decoder.decode(bytes)) as string[][];
    assertEquals(table[0], [...detectionCsvColumns]);
    const d = p.detections;
    const ids = [d.a1, d.a2, d.a3, d.b1, d.c1, d.c2, d.g1, d.g2, d.g3];
    assertEquals(table.slice(1).map((r) => Number(r[0])), ids);
    assertEquals(records, ids.length);
    assertEquals(Number(await detectionsCsv.count(ctx)), ids.length);
    assert(!table.slice(1).some((r) => Object.values(other.detections).includes(Number(r[0]))));

    const rows = parse(decoder.decode(bytes), { columns: true }) as Record<string, string>[];
    const a1 = rows.find((r) => Number(r.detection_id) === d.a1)!;
    assertEquals(a1, {
      detection_id: String(d.a1),
      occurrence_id: String(p.occurrences.rich),
      capture_id: String(p.images.s1),
      capture_url: "https://cdn.example.org/ami/captures/s1.jpg",
      timestamp: "2024-06-01T22:15:03Z",
      bbox: "[10,20,110,220]",
      bbox_width: "100",
      bbox_height: "200",
      crop_url: "/media/crops/a1.jpg", // MEDIA_URL, as the simple CSV
      // the non-terminal order classification scores higher: it is the top one
      top_classification_taxon_id: String(p.taxa.lepidoptera),
      top_classification_taxon_name: "Lepidoptera",
      top_classification_score: "0.99",
      top_classification_algorithm: "Order classifier",
      top_classification_terminal: "false",
      determination_id: String(p.taxa.agrotis),
      determination_name: "Agrotis ipsilon",
      determination_score: "0.91",
      deployment_id: String(p.deployments.north),
      event_id: String(p.events.night1),
    });
    const a3 = rows.find((r) => Number(r.detection_id) === d.a3)!;
    assertEquals([a3.bbox, a3.bbox_width, a3.crop_url], ["", "", ""]);
    const g1 = rows.find((r) => Number(r.detection_id) === d.g1)!;
    assertEquals([g1.top_classification_taxon_id, g1.event_id], ["", ""]);

    const south = { ...ctx, filters: { deployment_ids: [p.deployments.south] } };
    const filtered = await drainStream(detectionsCsv, south, { limit: 100 });
    const southIds = (parse(decoder.decode(filtered.bytes)) as string[][]).slice(1)
      .map((r) => Number(r[0]));
    assertEquals(southIds, [d.c1, d.c2, d.g1, d.g2, d.g3]);
    assertEquals(Number(await detectionsCsv.count(south)), 5);
    // exactly `limit` rows: one more (empty) batch, still the same file
    const exact = await drainStream(detectionsCsv, south, { limit: 5 });
    assertEquals(exact.bytes, filtered.bytes);
  },
);

smallProjectTest(
  "detections_csv shards by occurrence id: a shard holds all of an occurrence's detections, " +
    "shards concatenate to the file, filters too",
  async ({ p, ctx, filtered }) => {
    for (const every of [1, 2, 3]) {
      assert((await assertShardsAgree(detectionsCsv, ctx, every, "occurrence_id")) >= 3);
    }
    const south = filtered({ deployment_ids: [p.deployments.south] });
    await assertShardsAgree(detectionsCsv, south, 2, "occurrence_id");
  },
);
