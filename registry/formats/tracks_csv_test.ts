import { assert, assertEquals } from "../../tests/assert.ts";
import { assertResumable, drainStream } from "../../tests/stream_drain.ts";
import { tracksCsv, tracksCsvColumns } from "./tracks_csv.ts";
import { assertShardsAgree, csvRows, smallProjectTest } from "./test_support.ts";

smallProjectTest(
  "tracks_csv: boxed detections in frame order, frames, links, filters, resume",
  async ({ p, ctx }) => {
    // batches of 2 split a track across batches; resume after every chunk
    const { bytes, records } = await assertResumable(tracksCsv, ctx, 2);
    // read back by Python's csv module, as a user's script would
    const table = await csvRows(bytes);
    assertEquals(table[0], [...tracksCsvColumns]);
    const rows = table.slice(1).map((r) =>
      Object.fromEntries(tracksCsvColumns.map((c, i) => [c, r[i]]))
    );
    const d = p.detections;
    const o = p.occurrences;
    // a3 and c2 have no box: not frames
    assertEquals(rows.map((r) => Number(r.detection_id)), [
      d.a1,
      d.a2,
      d.b1,
      d.c1,
      d.g1,
      d.g2,
      d.g3,
    ]);
    assertEquals(records, 7);
    assertEquals(Number(await tracksCsv.count(ctx)), 7);
    assertEquals(rows[0], {
      occurrence_id: String(o.rich),
      detection_id: String(d.a1),
      event_id: String(p.events.night1),
      deployment_id: String(p.deployments.north),
      capture_id: String(p.images.s1),
      timestamp: "2024-06-01T22:15:03Z",
      frame_index: "0",
      frame_count: "2",
      bbox_x1: "10",
      bbox_y1: "20",
      bbox_x2: "110",
      bbox_y2: "220",
      capture_width: "4096",
      capture_height: "2160",
      // the non-terminal order classification scores highest
      classification_label: "Lepidoptera",
      classification_score: "0.99",
      determination_id: String(p.taxa.agrotis),
      determination_name: "Agrotis ipsilon",
      determination_score: "0.91",
      next_detection_id: String(d.a2),
    });
    assertEquals(
      [rows[1].frame_index, rows[1].bbox_x1, rows[1].bbox_y2, rows[1].next_detection_id],
      ["1", "5.5", "106", ""],
    );
    // the noEvent track: three frames linked in timestamp order, no event
    const g = rows.slice(4);
    assertEquals(g.map((r) => [r.frame_index, r.frame_count]), [["0", "3"], ["1", "3"], [
      "2",
      "3",
    ]]);
    assertEquals(g.map((r) => r.next_detection_id), [String(d.g2), String(d.g3), ""]);
    assertEquals([g[0].event_id, g[0].classification_label], ["", ""]);

    const south = { ...ctx, filters: { deployment_ids: [p.deployments.south] } };
    const filtered = await drainStream(tracksCsv, south, { limit: 100 });
    const southRows = await csvRows(filtered.bytes);
    assertEquals(southRows.slice(1).map((r) => Number(r[1])), [d.c1, d.g1, d.g2, d.g3]);
    assertEquals(Number(await tracksCsv.count(south)), 4);
    // exactly `limit` rows: one more (empty) batch, still the same file
    assertEquals((await drainStream(tracksCsv, south, { limit: 4 })).bytes, filtered.bytes);
    assert(filtered.records === 4);
  },
);

smallProjectTest(
  "tracks_csv shards by occurrence id: a shard holds every frame of its tracks (frame index, " +
    "count and next detection intact), shards concatenate to the file, filters too",
  async ({ p, ctx, filtered }) => {
    for (const every of [1, 2, 3]) {
      assert((await assertShardsAgree(tracksCsv, ctx, every, "occurrence_id")) >= 3);
    }
    const south = filtered({ deployment_ids: [p.deployments.south] });
    assert((await assertShardsAgree(tracksCsv, south, 1, "occurrence_id")) >= 2);
  },
);

smallProjectTest(
  "tracks_csv: frames at -infinity, BC and infinity keep their place across batch boundaries " +
    "and resumes (the cursor keeps the timestamp losslessly)",
  async ({ sql, p, ctx }) => {
    const d = p.detections;
    // PostgreSQL's timestamptz holds these; to_char alone gives null for ±infinity and drops BC
    await sql`update detections set timestamp = '-infinity' where id = ${d.g1}`;
    await sql`update detections set timestamp = '0044-03-15 12:00:00+00 BC' where id = ${d.g2}`;
    await sql`update detections set timestamp = 'infinity' where id = ${d.g3}`;
    const whole = await drainStream(tracksCsv, ctx, { limit: 100 });
    const rows = (await csvRows(whole.bytes)).slice(1);
    const g = rows.filter((r) => [d.g1, d.g2, d.g3].includes(Number(r[1])));
    assertEquals(g.map((r) => Number(r[1])), [d.g1, d.g2, d.g3]);
    assertEquals(g.map((r) => r[6]), ["0", "1", "2"]); // frame_index
    // a batch ends after each of them; resumed after every chunk: the same bytes
    for (const limit of [1, 2]) {
      const { bytes, records } = await assertResumable(tracksCsv, ctx, limit);
      assertEquals(records, 7);
      assertEquals(bytes, whole.bytes);
    }
  },
);
