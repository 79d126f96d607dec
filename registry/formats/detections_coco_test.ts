import { assert, assertEquals } from "../../tests/assert.ts";
import { runPythonReader } from "../../tests/readers.ts";
import { assertResumable, drainStream } from "../../tests/stream_drain.ts";
import { concat } from "../../storage/test_support.ts";
import { detectionsCoco } from "./detections_coco.ts";
import { smallProjectTest } from "./test_support.ts";

interface CocoReport {
  images: string;
  annotations: string;
  categories: string;
  anns: Record<
    string,
    { image_id: string; category_id: string; bbox: unknown[]; area: unknown; iscrowd: string }
  >;
  cats: Record<string, { name: string; supercategory: string }>;
  imgs: Record<string, { width: string; height: string; file_name: string; coco_url: string }>;
  anns_per_image: Record<string, string>;
}

/** The dataset as `pycocotools.coco.COCO` loads it. */
function readCoco(bytes: Uint8Array): Promise<CocoReport> {
  return runPythonReader("coco_check.py", [bytes], {
    modules: ["pycocotools"],
    packages: ["pycocotools"],
    suffix: ".json",
  }) as Promise<CocoReport>;
}

smallProjectTest(
  "detections_coco: pycocotools loads it; counts and boxes match SQL; filters, resume",
  async ({ sql, p, ctx }) => {
    const { bytes, records } = await assertResumable(detectionsCoco, ctx, 2);
    const coco = await readCoco(bytes);
    // counts against SQL: boxed detections of valid occurrences, their captures, their taxa
    const [expected] = await sql<{ anns: number; imgs: number; cats: number }[]>`
    select count(*)::int as anns, count(distinct d.source_image_id)::int as imgs,
      count(distinct o.determination_id)::int as cats
    from occurrences o join detections d on d.occurrence_id = o.id
    where o.id = any(${p.validIds}::bigint[]) and d.bbox is not null`;
    assertEquals(
      [coco.annotations, coco.images, coco.categories].map(Number),
      [expected.anns, expected.imgs, expected.cats],
    );
    assertEquals(records, 7);
    assertEquals(Number(await detectionsCoco.count(ctx)), 7);
    const d = p.detections;
    // bbox [x1, y1, x2, y2] in the database; COCO's [x, y, width, height]
    // integral numbers come back as (integer) text, others as floats
    assertEquals(coco.anns[d.a2], {
      image_id: String(p.images.s4),
      category_id: String(p.taxa.agrotis),
      bbox: [5.5, "6", "50", "100"],
      area: "5000",
      iscrowd: "0",
    });
    assertEquals(coco.anns[d.c1].bbox, ["0", "0", "40", "30"]);
    assertEquals(coco.anns[d.c1].category_id, String(p.taxa.noctuidae));
    assertEquals(coco.cats[p.taxa.catocala], {
      name: "Catocala relicta",
      supercategory: "Lepidoptera",
    });
    assertEquals(coco.imgs[p.images.s4], {
      width: "4096",
      height: "2160",
      file_name: "/captures/s4.jpg",
      coco_url: "https://cdn.example.org/ami/captures/s4.jpg",
    });
    // s1 holds a1 (boxed) and a3 (no box): one annotation
    assertEquals(coco.anns_per_image[p.images.s1], "1");
    assertEquals(coco.anns_per_image[p.images.s5], "3");

    const north = { ...ctx, filters: { deployment_ids: [p.deployments.north] } };
    const filtered = await readCoco(
      (await drainStream(detectionsCoco, north, { limit: 100 })).bytes,
    );
    assertEquals(Object.keys(filtered.anns).map(Number).sort((a, b) => a - b), [
      d.a1,
      d.a2,
      d.b1,
    ]);
    assertEquals(Object.keys(filtered.cats).map(Number), [p.taxa.agrotis]);
    // an empty export is still a dataset
    const none = { ...ctx, filters: { event_ids: [p.events.night2], taxon_id: p.taxa.agrotis } };
    const empty = await readCoco((await drainStream(detectionsCoco, none, { limit: 2 })).bytes);
    assertEquals([empty.images, empty.annotations, empty.categories], ["0", "0", "0"]);
  },
);

smallProjectTest(
  "detections_coco: shards cut at every bound concatenate to the unsharded file",
  async ({ ctx }) => {
    const whole = await drainStream(detectionsCoco, ctx, { limit: 2 });
    for (const every of [1, 2, 3]) {
      const bounds = await detectionsCoco.shardBounds!(ctx, every);
      // 7 annotations of fewer occurrences: bounds on occurrence ids, each once
      assert(bounds.length >= 7 / every - 3, `${bounds.length} bounds at ${every}`);
      const parts: Uint8Array[] = [];
      let records = 0;
      for (let k = 0; k <= bounds.length; k++) {
        const shard = detectionsCoco.shard!({
          afterId: k === 0 ? null : bounds[k - 1].id,
          untilId: k === bounds.length ? null : bounds[k].id,
          recordsBefore: k === 0 ? 0 : bounds[k - 1].records,
          first: k === 0,
          last: k === bounds.length,
        });
        const part = await drainStream(shard, ctx, { limit: 2 });
        parts.push(part.bytes);
        records += part.records;
      }
      const joined = new TextDecoder().decode(concat(...parts));
      assertEquals(joined, new TextDecoder().decode(whole.bytes), `every ${every}`);
      assertEquals(records, whole.records);
      assertEquals(bounds.at(-1)!.records <= whole.records, true);
    }
  },
);
