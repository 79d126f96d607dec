import { defaultFormatSettings } from "../../config/mod.ts";
import { assert, assertEquals } from "../../tests/assert.ts";
import {
  imageQueryContext,
  readCrops,
  withCropsProject,
} from "../../tests/fixtures/crops_project.ts";
import {
  assertResumable,
  drainStream,
  memorySideStore,
  refusalOf,
} from "../../tests/stream_drain.ts";
import { assertArchiveShardsCompose, composeArchiveShards, exportCard } from "./test_support.ts";
import { serviceTest } from "../../tests/support.ts";
import { defaultImageSourceSettings } from "../image_sources.ts";
import { exporterFor } from "../mod.ts";
import { exportSettingsKey } from "../settings_key.ts";
import type { ExportOptions, ExportQueryContext, StreamExporter } from "../types.ts";
import { detectionsCoco } from "./detections_coco.ts";
import { assignSplits } from "../image_dataset.ts";
import { cropOptionProblems, cropsByTaxon, safeName, taxonFolder } from "./crops_by_taxon.ts";

Deno.test("crops_by_taxon: names, splits and options", () => {
  assertEquals(safeName("Émeraude / verte"), "Emeraude_verte");
  assertEquals(safeName("../.."), "taxon");
  assertEquals(
    taxonFolder({ id: 7, name: "Agrotis ipsilon", family: null }),
    "no_family/Agrotis_ipsilon-7",
  );
  const options = { split: { train: 0.8, val: 0.1, test: 0.1 }, split_seed: "" };
  // consecutive ids (the demo's 12 events, 52 units) split exactly, whatever the seed, and
  // deterministically; another seed is another assignment
  for (const [n, expected] of [[12, [10, 1, 1]], [52, [42, 5, 5]], [2000, [1600, 200, 200]]]) {
    const keys = Array.from({ length: n as number }, (_, i) => `event:${i + 1}`);
    const splits = assignSplits(keys, options);
    const counts = { train: 0, val: 0, test: 0 };
    for (const split of splits.values()) counts[split]++;
    assertEquals([counts.train, counts.val, counts.test], expected, `${n} units`);
    assertEquals(assignSplits([...keys].reverse(), options), splits);
    const other = assignSplits(keys, { ...options, split_seed: "other" });
    assert(keys.some((k) => other.get(k) !== splits.get(k)), `${n} units: seed ignored`);
  }
  // the units of each split are spread over the ids, not consecutive runs
  const keys = Array.from({ length: 52 }, (_, i) => `event:${i + 1}`);
  const held = [...assignSplits(keys, options)].filter(([, s]) => s !== "train").map(([k]) => k);
  const ids = held.map((k) => Number(k.split(":")[1])).sort((a, b) => a - b);
  assert(ids.at(-1)! - ids[0] > 26, `held-out units ${ids}`);
  assertEquals(cropOptionProblems({}), {});
  assertEquals(
    Object.keys(cropOptionProblems({
      split: { train: 0.5, val: 0.1, test: 0.1 },
      jpeg_quality: 0,
      crop_padding: -1,
      max_skipped_fraction: 2,
      per_taxon_limit: 1.5,
      image_max_side: 10_001,
      split_by: "station" as ExportOptions["split_by"],
    })).sort(),
    [
      "crop_padding",
      "image_max_side",
      "jpeg_quality",
      "max_skipped_fraction",
      "per_taxon_limit",
      "split",
      "split_by",
    ],
  );
});

Deno.test("crops_by_taxon: the allowed hosts are part of its reuse key, of no other", async () => {
  const images = (hosts: string[]) => ({
    ...defaultFormatSettings,
    images: { ...defaultImageSourceSettings, hosts },
  });
  const key = (exporter: typeof cropsByTaxon, hosts: string[]) =>
    exportSettingsKey(exporter, images(hosts));
  assert((await key(cropsByTaxon, ["a.org"])) !== (await key(cropsByTaxon, ["b.org"])));
  assertEquals(
    await key(cropsByTaxon, ["a.org", "b.org"]),
    await key(cropsByTaxon, ["b.org", "a.org"]),
  );
  assertEquals(
    await key(detectionsCoco as typeof cropsByTaxon, ["a.org"]),
    await exportSettingsKey(detectionsCoco, defaultFormatSettings),
  );
});

Deno.test({
  name:
    "crops_by_taxon (and detections_coco with images): crops equal their source boxes; skips listed with reasons; resume",
  ...serviceTest,
  async fn() {
    await withCropsProject(async (sql, seed, listener) => {
      assertEquals(seed.detections, 44);
      const ctx = (options: ExportOptions): ExportQueryContext =>
        imageQueryContext(sql, seed, options);
      const allowed = ctx({ max_skipped_fraction: 0.1 });
      assertEquals(await cropsByTaxon.count(allowed), 44);
      const { bytes, records } = await assertResumable(cropsByTaxon, allowed, 7);
      assertEquals(records, 40);
      const report = await readCrops(bytes);
      assertEquals(report.bad, null);
      assertEquals(report.problems, []);
      assertEquals(report.checked, 40);
      assert(report.worst <= 4, `mean absolute difference ${report.worst}`);
      const crops = report.names.filter((n) => n.startsWith("crops/"));
      assertEquals(crops.sort(), report.manifest.map((r) => r.file).sort());
      for (const row of report.manifest) {
        assert(
          row.file.startsWith(`crops/${row.split}/`) &&
            row.file.endsWith(`/${row.occurrence_id}_${row.detection_id}.jpg`),
          row.file,
        );
      }
      assert(report.manifest.some((r) => r.file.includes("/Geometridae/Emeraude_verte-")));
      assert(report.manifest.some((r) => r.file.includes("/no_family/Lepidoptera-")));
      // a split unit (event) is in one split only
      const splits = new Map<string, Set<string>>();
      for (const r of report.manifest) {
        splits.set(r.event_id, (splits.get(r.event_id) ?? new Set()).add(r.split));
      }
      for (const [event, set] of splits) assertEquals(set.size, 1, `event ${event}: ${[...set]}`);
      assertEquals(
        report.skipped.map((r) => r.reason).sort(),
        ["HTTP 404", "box outside the image", "host not allowed", "not an image"],
      );
      assert(report.skipped.every((r) => r.source_url.startsWith("http")));
      assertEquals(listener.connections(), 0);
      assertEquals(
        report.taxa.map((t) => Number(t.crop_count)).reduce((a, b) => a + b, 0),
        40,
      );
      // by capture: another unit, the same crops
      const byCapture = await drainStream(
        cropsByTaxon,
        ctx({ max_skipped_fraction: 0.1, split_by: "capture", split_seed: "x" }),
        { limit: 50 },
      );
      assertEquals(byCapture.records, 40);

      // in shards of 12 crops, manifest.csv and taxa.csv written by the composition from every
      // shard's skipped list: the unsharded bytes; too many left out in all refuses there
      const card = exportCard(4, "2026-12-07T03:00:00.000Z");
      const { units } = await assertArchiveShardsCompose(
        cropsByTaxon,
        { ...allowed, card },
        { batchRecords: 40, every: 12, wanted: 4 },
      );
      assertEquals(units.map((u) => u.member), [0, 0, 0, 0]);
      const strict = { ...ctx({ max_skipped_fraction: 0.08 }), card };
      const composed = await composeArchiveShards(cropsByTaxon, strict, {
        batchRecords: 40,
        every: 12,
        wanted: 4,
      }).then(() => "composed", (error: Error) => error.message);
      assert(composed.includes("too many crops left out: 4 of 44"), composed);

      // above the threshold (default 0.05: 4 of 44 is 9 %): the export fails, naming the counts
      const refused = await refusalOf(cropsByTaxon, ctx({}));
      assert(refused.includes("too many crops left out: 4 of 44"), refused);
      assert(refused.includes("1 host not allowed"), refused);

      // detections_coco with include_images resumes from any checkpoint to the same bytes
      const coco = exporterFor(detectionsCoco, { include_images: true }) as StreamExporter;
      const zipped = await assertResumable(
        coco,
        ctx({ include_images: true, max_skipped_fraction: 0.25 }),
        3,
      );
      assertEquals(zipped.records, 41);
      // … and in shards: its images by capture id (4 units), annotations.json one unit after
      // them, from their skipped lists, skipped.csv by the composition: the unsharded bytes
      const cocoSharded = await assertArchiveShardsCompose(
        coco,
        { ...ctx({ include_images: true, max_skipped_fraction: 0.25 }), card },
        { batchRecords: 40, every: 3, wanted: 4 },
      );
      assertEquals(cocoSharded.units.map((u) => u.member), [0, 0, 0, 0, 1]);
      assertEquals(cocoSharded.units.map((u) => u.reads), [
        undefined,
        undefined,
        undefined,
        undefined,
        [0, 1, 2, 3],
      ]);
      // the annotations unit resumes from any checkpoint to the same bytes, from the skipped
      // list its checkpoint holds (no earlier unit's store is read again)
      const cocoCtx = { ...ctx({ include_images: true, max_skipped_fraction: 0.25 }), card };
      const last = cocoSharded.units.at(-1)!;
      const range = { ...last, recordsBefore: 0, first: false, last: false, batchRecords: 40 };
      const annotations = await drainStream(
        coco.shard!(range, last.reads!.map((k) => cocoSharded.sides[k])),
        cocoCtx,
        { limit: 40, side: memorySideStore() },
      );
      assert(annotations.states.length >= 4, `${annotations.states.length} states`);
      for (let i = 1; i < annotations.states.length - 1; i++) {
        const rest = await drainStream(coco.shard!(range, []), cocoCtx, {
          limit: 40,
          from: annotations.states[i],
          side: memorySideStore(),
        });
        assertEquals(
          [...annotations.chunks.slice(0, i).flatMap((c) => [...c]), ...rest.bytes],
          [...annotations.bytes],
          `resuming the annotations unit after chunk ${i}`,
        );
      }
      const cocoStrict = await composeArchiveShards(
        coco,
        { ...ctx({ include_images: true, max_skipped_fraction: 0.2 }), card },
        { batchRecords: 40, every: 3, wanted: 4 },
      ).then(() => "composed", (error: Error) => error.message);
      assert(cocoStrict.includes("too many images left out: 3 of 14 images"), cocoStrict);

      // more crops than one export holds: refused at the first batch, naming the count
      const limited = imageQueryContext(sql, seed, { max_skipped_fraction: 0.1 }, {}, 10);
      const tooMany = await refusalOf(cropsByTaxon, limited);
      assert(tooMany.includes("at most 10 crops per export for now: this request has 44"), tooMany);
    });
  },
});
