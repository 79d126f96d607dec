import { assert, assertEquals } from "../../tests/assert.ts";
import { assertResumable, drainStream } from "../../tests/stream_drain.ts";
import { capturesCsv, capturesCsvColumns } from "./captures_csv.ts";
import { assertShardsAgree, csvTable, smallProjectTest } from "./test_support.ts";

/** The file as Python's csv module reads it, one object per row. */
function table(bytes: Uint8Array): Promise<Record<string, string>[]> {
  return csvTable(bytes, capturesCsvColumns);
}

smallProjectTest(
  "captures_csv: every capture, empty ones too, counts, filters, resume",
  async ({ sql, p, ctx }) => {
    const [{ id: blank }] = await sql<{ id: number }[]>`
    insert into source_images (project_id, deployment_id, event_id, path, public_base_url,
      timestamp)
    values (${p.projectId}, ${p.deployments.north}, ${p.events.night1}, 'captures/blank.jpg',
      '', '2024-06-02T01:00:00Z') returning id`;
    const { bytes, records } = await assertResumable(capturesCsv, ctx, 2);
    const rows = await table(bytes);
    const i = p.images;
    assertEquals(rows.map((r) => Number(r.capture_id)), [i.s1, i.s2, i.s3, i.s4, i.s5, blank]);
    assertEquals(records, 6);
    assertEquals(Number(await capturesCsv.count(ctx)), 6);
    assertEquals(rows[0], {
      capture_id: String(i.s1),
      deployment_id: String(p.deployments.north),
      event_id: String(p.events.night1),
      timestamp: "2024-06-01T22:15:03Z",
      path: "captures/s1.jpg",
      url: "https://cdn.example.org/ami/captures/s1.jpg",
      width: "4096",
      height: "2160",
      size: "",
      // a1, a3 (no box) and the undetermined occurrence's d1
      detections_count: "3",
      boxed_detections_count: "2",
      // only rich is valid
      occurrences_count: "1",
    });
    const counts = rows.map((r) => [
      r.detections_count,
      r.boxed_detections_count,
      r.occurrences_count,
    ]);
    assertEquals(counts, [["3", "2", "1"], ["2", "1", "1"], ["2", "1", "1"], ["1", "1", "1"], [
      "3",
      "3",
      "1",
    ], ["0", "0", "0"]]);
    assertEquals([rows[5].url, rows[5].width], ["", ""]);

    const inSet = { ...ctx, filters: { collection_id: p.collectionId } };
    const set = await table((await drainStream(capturesCsv, inSet, { limit: 10 })).bytes);
    assertEquals(set.map((r) => Number(r.capture_id)), [i.s1, i.s2]);
    const late = {
      ...ctx,
      filters: { date_start: "2024-06-03", deployment_ids: [p.deployments.south] },
    };
    const south = await table((await drainStream(capturesCsv, late, { limit: 10 })).bytes);
    assertEquals(south.map((r) => Number(r.capture_id)), [i.s3, i.s5]);
    assertEquals(Number(await capturesCsv.count(late)), 2);
  },
);

smallProjectTest(
  "captures_csv shards by capture id: every n-th key, shards concatenate to the file, filters too",
  async ({ p, ctx, filtered }) => {
    for (const every of [1, 2]) {
      assert((await assertShardsAgree(capturesCsv, ctx, every, "capture_id")) >= 3);
    }
    const late = filtered({ date_start: "2024-06-03", deployment_ids: [p.deployments.south] });
    await assertShardsAgree(capturesCsv, late, 1, "capture_id");
    await assertShardsAgree(
      capturesCsv,
      filtered({ collection_id: p.collectionId }),
      1,
      "capture_id",
    );
  },
);
