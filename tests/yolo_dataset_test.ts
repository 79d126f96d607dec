/**
 * `yolo_dataset` through the API and a real worker: its options listed and checked, source images
 * fetched from moto over HTTP (allowed by `SOURCE_IMAGE_HOSTS`), every frame opened by Pillow and
 * every label mapped back to its stored box, `data.yaml` read by PyYAML, the skipped frames
 * listed with their reasons and the export SUCCESS. In shards, on S3 and the filesystem,
 * `yolo_dataset`, `crops_by_taxon` and `detections_coco` with `include_images` are byte for byte
 * their unsharded archives. And a worker killed (SIGKILL) mid-way through the frames: the next
 * one resumes from the checkpoint, fetching only the images after it, and the archive's entries
 * are those of an uninterrupted export.
 */
import { assert, assertEquals } from "./assert.ts";
import { unzipText } from "./dwca.ts";
import { createUser } from "./fixtures/access.ts";
import { yoloDataset } from "../registry/formats/yolo_dataset.ts";
import { cropsByTaxon } from "../registry/formats/crops_by_taxon.ts";
import { detectionsCoco } from "../registry/formats/detections_coco.ts";
import { exporterFor } from "../registry/mod.ts";
import { assertSkippedCount, readYolo, storedBoxes } from "./fixtures/crops_project.ts";
import {
  assertShardedAsUnsharded,
  killMidImages,
  withImageHarness,
} from "./image_formats_support.ts";
import { serviceTest } from "./support.ts";

Deno.test({
  name: "yolo_dataset through the API: options checked, frames and labels read back, skips",
  ...serviceTest,
  async fn() {
    await withImageHarness({ storage: "s3", batchSize: 4 }, async (h, seed, listener) => {
      const [, token] = await createUser(h.sql, "yolo", true);
      const create = (body: Record<string, unknown>) =>
        h.api("POST", "/api/v2/exports/", {
          token,
          body: { project: seed.projectId, format: "yolo_dataset", force: true, ...body },
        });

      const formats = await (await h.api("GET", "/api/v2/exports/formats/", { token })).json();
      const listed = formats.results.find((f: { key: string }) => f.key === "yolo_dataset");
      assertEquals(listed.extension, "zip");
      assertEquals(listed.accepted_options, [
        "split",
        "split_by",
        "split_seed",
        "jpeg_quality",
        "image_max_side",
        "max_skipped_fraction",
      ]);

      const invalid = await create({ options: { image_max_side: 8, split_by: "night" } });
      assertEquals(invalid.status, 400);
      const problem = await invalid.json();
      assert(/image_max_side/.test(problem.error) && /split_by/.test(problem.error), problem.error);
      assertEquals((await create({ options: { crop_padding: 0.1 } })).status, 400);

      const good = await create({
        options: { max_skipped_fraction: 0.3, split_by: "deployment", image_max_side: 200 },
      });
      assertEquals(good.status, 201, await good.clone().text());
      const created = await good.json();
      assertEquals(created.options, {
        max_skipped_fraction: 0.3,
        split_by: "deployment",
        image_max_side: 200,
      });
      const done = await h.waitForExport(created.id, token, 120_000);
      assertEquals(done.status, "SUCCESS", String(done.error));
      assertEquals(done.record_count, 10);
      const zip = await h.download(done.file_url as string);
      const report = await readYolo(zip, await storedBoxes(h.sql, seed.projectId));
      assertEquals(report.bad, null);
      assertEquals(report.problems, []);
      assertEquals(report.frames.length, 10);
      // JPEG frames are stored as they are, not deflated again
      const frames = Object.entries(report.deflated).filter(([name]) => name.endsWith(".jpg"));
      assertEquals(frames.length, 10);
      assertEquals(frames.filter(([, deflated]) => deflated), []);
      assertSkippedCount(done, report.skipped.length);
      // the archive's card and the served one say how many frames were left out (the README
      // had no such line), and what the archive holds instead of "Columns: every column"
      const leftOut = `- Left out: ${report.skipped.length} (their image could not be fetched`;
      const readme = await unzipText(zip, "README.md");
      const card = await (await h.api("GET", `/api/v2/exports/${created.id}/datacard/`, {
        token,
      })).text();
      for (const text of [readme, card]) {
        assert(text.includes(leftOut), text);
        assert(text.includes("- Holds the member files `images/<split>/<capture id>.jpg`, "), text);
        assertEquals(text.includes("Columns: every column"), false, text);
        assertEquals(text.includes("\\`"), false, text);
      }
      assertEquals(report.checked, 40);
      assert(report.worst <= 1, `worst edge ${report.worst} px`);
      assert(report.frames.every((f) => f.size[0] === 200 && f.size[1] < 160), "not downscaled");
      const taxa = await h.sql<{ name: string }[]>`
        select distinct t.id, t.name from occurrences o join taxa t on t.id = o.determination_id
        where o.project_id = ${seed.projectId} order by t.id`;
      assertEquals(report.class_names, Object.fromEntries(taxa.map((t, i) => [String(i), t.name])));
      assertEquals(
        report.skipped.map((r) => r.reason).sort(),
        ["HTTP 404", "box outside the image", "host not allowed", "not an image"],
      );
      const stations = new Map(
        (await h.sql<{ id: string; deployment_id: string }[]>`
          select id::text, deployment_id::text from source_images
          where project_id = ${seed.projectId}`).map((r) => [r.id, r.deployment_id]),
      );
      const splits = new Map<string, Set<string>>();
      for (const f of report.frames) {
        const station = stations.get(f.capture_id)!;
        splits.set(station, (splits.get(station) ?? new Set()).add(f.split));
      }
      for (const [station, set] of splits) assertEquals(set.size, 1, station);
      assertEquals(listener.connections(), 0);

      const refused = await create({});
      assertEquals(refused.status, 201);
      const failed = await h.waitForExport((await refused.json()).id, token, 120_000);
      assertEquals(failed.status, "FAILURE");
      // refused at the first batch past the threshold (4 frames a batch: the third one, with
      // the missing capture and the text file), naming the counts by reason
      assert(
        String(failed.error).includes(
          "too many frames left out: 2 of 14 captures (more than max_skipped_fraction 0.05): " +
            "1 HTTP 404, 1 not an image",
        ),
        String(failed.error),
      );
    });
  },
});

for (const storage of ["s3", "fs"] as const) {
  Deno.test({
    name:
      `yolo_dataset, crops_by_taxon and COCO with images in shards (${storage}): byte for byte the unsharded archives; too many skips fail it`,
    ...serviceTest,
    async fn() {
      // 14 captures: shards of 4 frames (and the classes phase apart)
      const env = { EXPORT_SHARD_RECORDS: "4" };
      await withImageHarness({ storage, batchSize: 4, env }, async (h, seed, listener) => {
        const [, token] = await createUser(h.sql, "yolo-shards", true);
        const create = async (options: Record<string, unknown>): Promise<number> => {
          const res = await h.api("POST", "/api/v2/exports/", {
            token,
            body: { project: seed.projectId, format: "yolo_dataset", force: true, options },
          });
          assertEquals(res.status, 201, await res.clone().text());
          return (await res.json()).id;
        };
        const { done, bytes } = await assertShardedAsUnsharded(h, seed, {
          token,
          format: "yolo_dataset",
          exportOptions: { max_skipped_fraction: 0.3 },
          exporter: yoloDataset,
          minShards: 4,
        });
        assertEquals(done.record_count, 10);
        const report = await readYolo(bytes, await storedBoxes(h.sql, seed.projectId));
        assertEquals(report.problems, []);
        assertEquals(report.frames.length, 10);
        assertSkippedCount(done, report.skipped.length);
        assertEquals(
          (await h.storage.listObjects("exports/")).filter((k) => k.includes("/shards/")),
          [],
          "shard objects left behind",
        );

        // 4 of 14 left out, more than 0.2: a readable FAILURE (by a shard or by the composition)
        const refused = await h.waitForExport(
          await create({ max_skipped_fraction: 0.2 }),
          token,
          120_000,
        );
        assertEquals(refused.status, "FAILURE");
        assert(
          /too many frames left out: \d+ of 14 captures \(more than max_skipped_fraction 0\.2\)/
            .test(String(refused.error)),
          String(refused.error),
        );

        // crops_by_taxon (44 crops, 11 shards): the crops in shards, manifest.csv and taxa.csv
        // written by the composition; the unsharded bytes
        const { done: crops } = await assertShardedAsUnsharded(h, seed, {
          token,
          format: "crops_by_taxon",
          exportOptions: { max_skipped_fraction: 0.1 },
          exporter: cropsByTaxon,
          minShards: 1,
        });
        assertEquals(crops.record_count, 40);
        assertEquals(crops.skipped_count, 4);

        // detections_coco with include_images: its images in shards by capture, annotations.json
        // one shard after them (leaving out what they skipped), skipped.csv by the composition;
        // the unsharded bytes
        const cocoOptions = { include_images: true, max_skipped_fraction: 0.3 };
        const { done: coco, unsharded: cocoUnsharded } = await assertShardedAsUnsharded(h, seed, {
          token,
          format: "detections_coco",
          exportOptions: cocoOptions,
          exporter: exporterFor(detectionsCoco, cocoOptions),
          minShards: 3,
        });
        assertEquals(coco.record_count, cocoUnsharded.records);
        assert((coco.record_count as number) > 4, `${coco.record_count} annotations`);
        assertEquals(coco.skipped_count, 3);
        assertEquals(listener.connections(), 0);
      });
    },
  });
}

for (const sharded of [false, true]) {
  Deno.test({
    name: `yolo_dataset${
      sharded ? " in shards of 6 frames" : ""
    }: kill -9 the worker mid-frames; it resumes to the same entries`,
    ...serviceTest,
    async fn() {
      // 150 ms per image, one at a time, 2 frames a batch: the frames take about 2 s
      await killMidImages("yolo_dataset", {
        exportOptions: { max_skipped_fraction: 0.3 },
        checked: 40,
        imageDelayMs: 150,
        ...(sharded ? { shardRecords: 6 } : {}),
        // the classes phase is a shard of its own that fetches no image
        shardsWithoutImages: 1,
        read: async (zip, { sql, projectId }) => {
          const report = await readYolo(zip, await storedBoxes(sql, projectId));
          assertEquals(report.problems, []);
          // README.md dates the export by its own start: every other entry is the same
          const digests = Object.fromEntries(
            Object.entries(report.digests).filter(([name]) => name !== "README.md"),
          );
          return { digests, checked: report.checked, skipped: report.skipped };
        },
      });
    },
  });
}
