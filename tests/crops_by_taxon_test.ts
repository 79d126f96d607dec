/**
 * `crops_by_taxon` through the API and a real worker: format options validated and stored,
 * source images fetched from moto over HTTP (allowed by `SOURCE_IMAGE_HOSTS`), the skipped ones
 * listed with their reasons and the export SUCCESS; above `max_skipped_fraction` the export is
 * FAILURE with the counts in its error, without retries. And a worker killed (SIGKILL) mid-way
 * through the crops: the next one resumes from the checkpoint, fetching only the images after it,
 * and every entry of the archive is the same as in an uninterrupted export; the same for
 * `detections_coco` with `include_images`, unsharded and in shards. `skipped_count` is the rows
 * of skipped.csv throughout.
 */
import { assert, assertEquals } from "./assert.ts";
import { createUser } from "./fixtures/access.ts";
import { assertSkippedCount, readCrops } from "./fixtures/crops_project.ts";
import { killMidImages, withImageHarness } from "./image_formats_support.ts";
import { serviceTest } from "./support.ts";
import type { Sql } from "../db/client.ts";
import type { Harness } from "./harness.ts";
import { runPythonReader } from "./readers.ts";

/** What `tests/coco_zip_check.py` reports. */
interface CocoZipReport {
  bad: string | null;
  names: string[];
  images: number;
  annotations: number;
  file_names: string[];
  missing: string[];
  unreadable: string[];
  skipped: Record<string, string>[];
  same_as_json: boolean | null;
  digests: Record<string, string>;
}

/**
 * `detections_coco` with `include_images` through the API and a worker: a zip (file name,
 * content type) that pycocotools and Pillow read, every file_name in it, the broken sources in
 * skipped.csv; its annotations.json is the plain JSON export but for those. Without the option
 * the file is still the JSON document.
 */
async function cocoWithImages(
  h: Harness,
  { token, projectId }: { token: string; projectId: number },
): Promise<void> {
  const create = async (options: Record<string, unknown>) => {
    const res = await h.api("POST", "/api/v2/exports/", {
      token,
      body: { project: projectId, format: "detections_coco", force: true, options },
    });
    assertEquals(res.status, 201, await res.clone().text());
    return await h.waitForExport((await res.json()).id, token, 120_000);
  };
  const invalid = await h.api("POST", "/api/v2/exports/", {
    token,
    body: { project: projectId, format: "detections_coco", options: { include_images: "yes" } },
  });
  assertEquals(invalid.status, 400);
  assert(/include_images/.test((await invalid.json()).error));
  const plain = await create({});
  assertEquals(plain.status, "SUCCESS", String(plain.error));
  assert(new URL(plain.file_url as string).pathname.endsWith(".json"), String(plain.file_url));
  assertSkippedCount(plain, null);
  const zipped = await create({ include_images: true, max_skipped_fraction: 0.25 });
  assertEquals(zipped.status, "SUCCESS", String(zipped.error));
  const url = zipped.file_url as string;
  assert(new URL(url).pathname.endsWith(".zip"), url);
  const head = await fetch(url);
  await head.body?.cancel();
  assertEquals(head.headers.get("content-type"), "application/zip");
  const report = await runPythonReader(
    "coco_zip_check.py",
    [await h.download(url), await h.download(plain.file_url as string)],
    { modules: ["pycocotools", "PIL"], packages: ["pycocotools", "Pillow"] },
  ) as CocoZipReport;
  assertEquals(report.bad, null);
  assertEquals(report.missing, []);
  assertEquals(report.unreadable, []);
  assertEquals(report.images, 11);
  assertEquals(report.file_names.length, 11);
  assert(report.file_names.every((n) => /^images\/\d+\.jpg$/.test(n)), report.file_names.join());
  assertEquals(report.skipped.map((r) => r.reason).sort(), [
    "HTTP 404",
    "host not allowed",
    "not an image",
  ]);
  assert(report.same_as_json, "annotations.json differs from the JSON export");
  assertSkippedCount(zipped, report.skipped.length);
  // 41 boxes on the 11 images written (the 3 skipped captures held one each)
  assertEquals(report.annotations, 41);
  assertEquals(zipped.record_count, 41);
  const refused = await create({ include_images: true });
  assertEquals(refused.status, "FAILURE");
  // refused as soon as the images left out pass the fraction (here at the first batch)
  assert(
    /too many images left out: \d+ of 14 images/.test(String(refused.error)),
    String(refused.error),
  );
  const named = Number(/left out: (\d+) of/.exec(String(refused.error))?.[1]);
  assertEquals(refused.skipped_count, named);

  // an image is never described with a size that is not its own: a capture whose stored size
  // is not its image's, and one with none, are left out with why
  const [wrong, unsized] = report.file_names.map((n) => Number(/\d+/.exec(n)![0]));
  const before = await h.sql<{ id: number; width: number; height: number }[]>`
    select id, width, height from source_images where id in (${wrong}, ${unsized})`;
  await h.sql`update source_images set width = width * 2, height = height * 2 where id = ${wrong}`;
  await h.sql`update source_images set width = null, height = null where id = ${unsized}`;
  try {
    const sized = await create({ include_images: true, max_skipped_fraction: 0.5 });
    assertEquals(sized.status, "SUCCESS", String(sized.error));
    const sizedReport = await runPythonReader(
      "coco_zip_check.py",
      [await h.download(sized.file_url as string), await h.download(plain.file_url as string)],
      { modules: ["pycocotools", "PIL"], packages: ["pycocotools", "Pillow"] },
    ) as CocoZipReport;
    assertEquals(sizedReport.images, 9);
    const reasons = new Map(sizedReport.skipped.map((r) => [Number(r.capture_id), r.reason]));
    const stored = before.find((r) => Number(r.id) === wrong)!;
    assertEquals(
      reasons.get(wrong),
      `size ${stored.width} × ${stored.height} differs from the capture's stored ` +
        `${stored.width * 2} × ${stored.height * 2}`,
    );
    assertEquals(reasons.get(unsized), "the capture has no stored size");
  } finally {
    for (const row of before) {
      await h.sql`update source_images set width = ${row.width}, height = ${row.height}
        where id = ${row.id}`;
    }
  }
}

/**
 * The detection ids a `per_taxon_limit` of `n` keeps among the boxed detections of the project's
 * occurrences scored at least `minScore`, counted independently of the format's window: a
 * detection is kept when fewer than `n` of its taxon rank before it (a higher score, or the same
 * score and a lower detection id).
 */
async function topPerTaxon(
  sql: Sql,
  projectId: number,
  { minScore, n }: { minScore: number; n: number },
): Promise<number[]> {
  const rows = await sql<{ id: number }[]>`
    select d.id from detections d join occurrences o on o.id = d.occurrence_id
    where o.project_id = ${projectId} and o.determination_score >= ${minScore}
      and (select count(*) from detections d2 join occurrences o2 on o2.id = d2.occurrence_id
        where o2.project_id = ${projectId} and o2.determination_score >= ${minScore}
          and o2.determination_id = o.determination_id
          and (o2.determination_score > o.determination_score
            or (o2.determination_score = o.determination_score and d2.id < d.id))) < ${n}
    order by d.id`;
  return rows.map((r) => Number(r.id));
}

Deno.test({
  name: "crops_by_taxon through the API: options checked, SUCCESS with skips, FAILURE above",
  ...serviceTest,
  async fn() {
    await withImageHarness({ storage: "s3", batchSize: 6 }, async (h, seed, listener) => {
      const [, token] = await createUser(h.sql, "crops", true);
      const create = (body: Record<string, unknown>) =>
        h.api("POST", "/api/v2/exports/", {
          token,
          body: { project: seed.projectId, format: "crops_by_taxon", force: true, ...body },
        });

      const formats = await (await h.api("GET", "/api/v2/exports/formats/", { token })).json();
      const listed = formats.results.find((f: { key: string }) => f.key === "crops_by_taxon");
      assertEquals(listed.extension, "zip");
      assertEquals(listed.accepted_options, [
        "split",
        "split_by",
        "split_seed",
        "crop_padding",
        "jpeg_quality",
        "max_skipped_fraction",
        "per_taxon_limit",
        "image_max_side",
      ]);

      const invalid = await create({ options: { jpeg_quality: 0, split_by: "night" } });
      assertEquals(invalid.status, 400);
      const problem = await invalid.json();
      assert(/jpeg_quality/.test(problem.error) && /split_by/.test(problem.error), problem.error);
      const unknown = await create({ options: { include_images: true } });
      assertEquals(unknown.status, 400);
      const zero = await create({ options: { per_taxon_limit: 0, image_max_side: 15 } });
      assertEquals(zero.status, 400);
      const zeroError = (await zero.json()).error;
      assert(/per_taxon_limit/.test(zeroError) && /image_max_side/.test(zeroError), zeroError);
      assertEquals((await create({ excel_compatible: true })).status, 400);

      const good = await create({
        options: { max_skipped_fraction: 0.1, split_by: "deployment", jpeg_quality: 85 },
      });
      assertEquals(good.status, 201, await good.clone().text());
      const created = await good.json();
      assertEquals(created.options, {
        max_skipped_fraction: 0.1,
        split_by: "deployment",
        jpeg_quality: 85,
      });
      const done = await h.waitForExport(created.id, token, 120_000);
      assertEquals(done.status, "SUCCESS", String(done.error));
      assertEquals(done.record_count, 40);
      const report = await readCrops(await h.download(done.file_url as string));
      assertEquals(report.problems, []);
      assertEquals(report.checked, 40);
      // JPEG crops are stored as they are (deflating them again costs a core for ~0.2 %); the
      // tables, text, are deflated
      const deflated = Object.entries(report.deflated);
      assertEquals(deflated.filter(([name, yes]) => name.endsWith(".jpg") && yes), []);
      assertEquals(deflated.filter(([name]) => name.endsWith(".jpg")).length, 40);
      assertEquals(report.deflated["manifest.csv"], true);
      assert(report.worst <= 4, `mean absolute difference ${report.worst}`);
      assertEquals(
        report.skipped.map((r) => r.reason).sort(),
        ["HTTP 404", "box outside the image", "host not allowed", "not an image"],
      );
      assertSkippedCount(done, report.skipped.length);
      // the served data card states the options that shaped the dataset and what it left out
      const card = await h.api("GET", `/api/v2/exports/${created.id}/datacard/`, { token });
      const cardText = await card.text();
      assertEquals(card.status, 200, cardText);
      assert(
        cardText.includes(
          '- Options: `jpeg_quality`: 85, `max_skipped_fraction`: 0.1, `split_by`: "deployment".',
        ),
        cardText,
      );
      assert(cardText.includes(`- Left out: ${report.skipped.length} (`), cardText);
      const byStation = new Map<string, Set<string>>();
      for (const r of report.manifest) {
        byStation.set(r.deployment_id, (byStation.get(r.deployment_id) ?? new Set()).add(r.split));
      }
      for (const [station, splits] of byStation) assertEquals(splits.size, 1, station);
      assertEquals(listener.connections(), 0);

      // per_taxon_limit after the filters: the crops are an independent top N per taxon; each
      // crop (padded) downscaled to image_max_side equals its source region resized alike
      const limited = await create({
        filters: { min_score: 0.6 },
        options: { per_taxon_limit: 4, image_max_side: 32, crop_padding: 0.1 },
      });
      assertEquals(limited.status, 201, await limited.clone().text());
      const top = await h.waitForExport((await limited.json()).id, token, 120_000);
      assertEquals(top.status, "SUCCESS", String(top.error));
      const expected = await topPerTaxon(h.sql, seed.projectId, { minScore: 0.6, n: 4 });
      assertEquals(expected.length, 12);
      assertEquals(top.record_count, expected.length);
      const topReport = await readCrops(await h.download(top.file_url as string), {
        maxSide: 32,
        padding: 0.1,
      });
      assertEquals(topReport.problems, []);
      assertEquals(topReport.checked, 12);
      assert(topReport.worst <= 4, `mean absolute difference ${topReport.worst}`);
      const sides = Object.values(topReport.sizes).map(([w, height]) => Math.max(w, height));
      assertEquals(sides, Array(12).fill(32));
      assertEquals(topReport.skipped, []);
      assertSkippedCount(top, 0);
      assertEquals(
        topReport.manifest.map((r) => r.detection_id).sort(),
        expected.map(String).sort(),
      );
      assertEquals(topReport.taxa.map((t) => t.crop_count), ["4", "4", "4"]);

      await cocoWithImages(h, { token, projectId: seed.projectId });

      const refused = await create({});
      assertEquals(refused.status, 201);
      const failed = await h.waitForExport((await refused.json()).id, token, 120_000);
      assertEquals(failed.status, "FAILURE");
      assert(
        String(failed.error).includes("too many crops left out: 4 of 44 detections"),
        String(failed.error),
      );
      // the count the error names is the export's (the refusing batch reported none)
      assertEquals(failed.skipped_count, 4);
    });
  },
});

Deno.test({
  name: "crops_by_taxon: kill -9 the worker mid-crops; it resumes to the same entries",
  ...serviceTest,
  async fn() {
    await killMidImages("crops_by_taxon", {
      exportOptions: { max_skipped_fraction: 0.1 },
      checked: 40,
      imageDelayMs: 120,
      read: async (zip) => {
        const report = await readCrops(zip);
        assertEquals(report.problems, []);
        return report;
      },
    });
  },
});

for (const shardRecords of [undefined, 4]) {
  Deno.test({
    name: `detections_coco include_images${
      shardRecords ? " in shards" : ""
    }: kill -9 the worker mid-images; it resumes to the same entries`,
    ...serviceTest,
    async fn() {
      await killMidImages("detections_coco", {
        exportOptions: { include_images: true, max_skipped_fraction: 0.25 },
        checked: 11,
        imageDelayMs: 120,
        shardRecords,
        read: async (zip) => {
          const report = await runPythonReader("coco_zip_check.py", [zip], {
            modules: ["pycocotools", "PIL"],
            packages: ["pycocotools", "Pillow"],
          }) as CocoZipReport;
          assertEquals([report.bad, report.missing, report.unreadable], [null, [], []]);
          return { digests: report.digests, checked: report.images, skipped: report.skipped };
        },
      });
    },
  });
}
