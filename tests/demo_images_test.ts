/**
 * The demo's synthetic source images against the real database and storage, fetched over HTTP
 * through the demo's `/sources/` route: every image an export filtered by the set needs exists, opens at the size
 * the database says, with each box drawn where the database puts it in its taxon's colour
 * (checked at each box's centre, away from any edge); the broken captures are missing (404), not
 * an image or truncated as planned, and hold few enough crops for an export to succeed.
 */
import { Hono } from "hono";
import sharp from "sharp";
import { SOURCES_PATH, sourcesRoutes } from "../api/sources.ts";
import { decodeImage } from "../registry/image_crops.ts";
import { createFsStorage } from "../storage/mod.ts";
import { putObject } from "../storage/put_object.ts";
import { assert, assertEquals } from "./assert.ts";
import { serviceTest, testDatabase } from "./support.ts";
import type { Sql } from "../db/client.ts";
import { seedDemo } from "../db/seed_demo.ts";
import {
  DEMO_IMAGE_NIGHTS,
  DEMO_IMAGE_WIDTH,
  DEMO_IMAGES_COLLECTION,
  type DemoImageKind,
  seedDemoImages,
} from "../db/seed_demo_images.ts";
import { drawnRegion, taxonColor } from "../db/synthetic_jpeg.ts";
import { defaultFormatSettings } from "../config/mod.ts";
import { detectionsCoco } from "../registry/formats/detections_coco.ts";
import { MAX_IMAGES_PER_BATCH } from "../registry/image_dataset.ts";
import { defaultImageSourceSettings } from "../registry/image_sources.ts";
import { exporterFor } from "../registry/mod.ts";
import { unpackEntries } from "../registry/zip_entries_packed.ts";
import { drainStream } from "./stream_drain.ts";

const PREFIX = "demo/";

Deno.test({
  name: "seedDemoImages: images where the database says, broken ones as planned, idempotent",
  ...serviceTest,
  async fn() {
    const sql = testDatabase(2);
    const dir = await Deno.makeTempDir();
    const storage = createFsStorage({
      dir,
      publicBaseUrl: "http://127.0.0.1",
      signingSecret: "test-signing-secret-0123456789",
    });
    await storage.ensureReady();
    const app = new Hono();
    app.route(SOURCES_PATH, sourcesRoutes(storage, { storagePrefix: PREFIX }));
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
    const baseUrl = `http://127.0.0.1:${server.addr.port}/sources/`;
    try {
      const { project_id: projectId } = await seedDemo(sql, { occurrences: 2_000, seed: 11 });
      const result = await seedDemoImages(sql, storage, {
        projectId,
        baseUrl,
        storagePrefix: PREFIX,
      });
      console.log(
        `${result.captures} captures, ${result.crops} crops (${result.brokenCrops} on broken ` +
          `captures) in ${result.seconds.toFixed(2)} s`,
      );
      assert(result.captures > 20, `captures with images: ${result.captures}`);
      assertEquals(result.written, result.captures - result.kinds.missing, "objects written");
      for (const kind of ["missing", "not_an_image", "truncated"] as const) {
        assert(result.kinds[kind] >= 1, `no ${kind} capture`);
      }
      assert(result.brokenCrops > 0, "broken captures hold no crop");
      assert(result.brokenCrops <= 0.02 * result.crops, "broken crops above 2%");

      await checkSet(sql, projectId, result);
      const kinds = await checkImages(sql, result.collectionId);
      assertEquals(kinds, result.kinds, "kinds found over HTTP");
      await checkImagesPerBatch(sql, projectId, result.collectionId, server.addr.port);

      // a restarted demo on another port: same set, new base URL, nothing rewritten
      const again = await seedDemoImages(sql, storage, {
        projectId,
        baseUrl: "http://127.0.0.1:1/sources/",
        storagePrefix: PREFIX,
      });
      assertEquals(
        [again.collectionId, again.eventIds, again.captures, again.written, again.crops],
        [result.collectionId, result.eventIds, result.captures, 0, result.crops],
      );
      const [urls] = await sql<{ bases: string[] }[]>`
        select array_agg(distinct s.public_base_url) as bases
        from source_images s
        where s.id in (select id from ${neededCaptures(sql, result.collectionId)} n)`;
      assertEquals(urls.bases, ["http://127.0.0.1:1/sources/"]);

      // images left by another database's project of the same id (another manifest): redrawn
      const manifest = `${PREFIX}sources/demo-images-${projectId}.json`;
      await putObject(storage, manifest, {
        bytes: new TextEncoder().encode('{"digest": "another project"}'),
        contentType: "application/json",
      });
      const redrawn = await seedDemoImages(sql, storage, {
        projectId,
        baseUrl,
        storagePrefix: PREFIX,
      });
      assertEquals(redrawn.written, result.written, "images redrawn for another manifest");
      assertEquals(await checkImages(sql, result.collectionId), result.kinds, "kinds redrawn");
    } finally {
      await server.shutdown();
      await sql.end();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/**
 * The captures an export filtered by capture set `collectionId` needs images of: those holding
 * a box of an occurrence with a detection on the set (an independent statement).
 */
function neededCaptures(sql: Sql, collectionId: number) {
  return sql`(
    select distinct d.source_image_id as id
    from detections d
    join source_image_collection_images ci on true
    join detections fd on fd.source_image_id = ci.source_image_id
      and fd.occurrence_id = d.occurrence_id
    where ci.collection_id = ${collectionId} and d.bbox is not null)`;
}

/**
 * The capture set: windows of 12 nights (or every night of a smaller project); the captures it needs images of rescaled with their
 * boxes inside; the crops of an export filtered by it as the result says.
 */
async function checkSet(
  sql: Sql,
  projectId: number,
  result: { collectionId: number; eventIds: number[]; captures: number; crops: number },
): Promise<void> {
  const [r] = await sql<Record<string, number>[]>`
    select
      (select count(*) from source_image_collections
        where project_id = ${projectId} and name = ${DEMO_IMAGES_COLLECTION})::int as sets,
      (select count(*) from events where project_id = ${projectId})::int as events,
      (select count(distinct s.event_id) from source_image_collection_images ci
        join source_images s on s.id = ci.source_image_id
        where ci.collection_id = ${result.collectionId})::int as nights,
      (select count(*) from source_image_collection_images ci
        join source_images s on s.id = ci.source_image_id
        where ci.collection_id = ${result.collectionId}
          and not s.event_id = any(${result.eventIds}::int8[]))::int as elsewhere,
      (select count(*) from ${neededCaptures(sql, result.collectionId)} n
        join source_images s on s.id = n.id where s.width = ${DEMO_IMAGE_WIDTH})::int as rescaled,
      (select count(*) from detections d join source_images s on s.id = d.source_image_id
        where s.id in (select id from ${neededCaptures(sql, result.collectionId)} n)
          and d.bbox is not null and not (
          d.bbox[1] >= 0 and d.bbox[2] >= 0 and d.bbox[1] < d.bbox[3] and d.bbox[2] < d.bbox[4]
          and d.bbox[3] <= s.width and d.bbox[4] <= s.height
          and d.bbox[1] = round(d.bbox[1]) and d.bbox[4] = round(d.bbox[4])))::int as bad_boxes,
      (select count(*) from detections d join occurrences o on o.id = d.occurrence_id
        where o.determination_id is not null and d.bbox is not null and exists (
          select 1 from detections fd join source_image_collection_images fci
            on fci.source_image_id = fd.source_image_id
          where fd.occurrence_id = o.id and fci.collection_id = ${result.collectionId}))::int
        as filtered_crops`;
  assertEquals(r.sets, 1, "one capture set of images");
  const nights = Math.min(DEMO_IMAGE_NIGHTS, r.events);
  assertEquals([r.nights, result.eventIds.length], [nights, nights], "nights of the set");
  assertEquals(r.elsewhere, 0, "captures of the set outside its nights");
  assertEquals(r.rescaled, result.captures, "captures needing an image: all of them, rescaled");
  assertEquals(r.bad_boxes, 0, "boxes outside their rescaled capture or not whole pixels");
  // what an export filtered by the set crops: exactly the boxes on the image captures
  assertEquals(r.filtered_crops, result.crops, "crops of an export filtered by the set");
}

/**
 * Each capture the set needs an image of, fetched over HTTP from its `public_base_url` + `path` and decoded as the
 * exporter does: images at the database's size with each box's drawn region, at its centre, in
 * the colour of the last box drawn over that point; the kinds found, counted.
 */
async function checkImages(
  sql: Sql,
  collectionId: number,
): Promise<Record<DemoImageKind, number>> {
  const captures = await sql<
    {
      url: string;
      width: number;
      height: number;
      boxes: { bbox: number[]; taxon: number | null }[];
    }[]
  >`
    select rtrim(s.public_base_url, '/') || '/' || s.path as url, s.width, s.height,
      coalesce(jsonb_agg(jsonb_build_object('bbox', d.bbox, 'taxon', o.determination_id)
        order by d.id) filter (where d.id is not null), '[]'::jsonb) as boxes
    from source_images s
    left join detections d on d.source_image_id = s.id and d.bbox is not null
    left join occurrences o on o.id = d.occurrence_id
    where s.id in (select id from ${neededCaptures(sql, collectionId)} n)
    group by s.id order by s.id`;
  const kinds: Record<DemoImageKind, number> = {
    image: 0,
    missing: 0,
    not_an_image: 0,
    truncated: 0,
  };
  let checkedBoxes = 0;
  for (const capture of captures) {
    const response = await fetch(capture.url);
    if (response.status === 404) {
      await response.body?.cancel();
      kinds.missing++;
      continue;
    }
    assertEquals(response.status, 200, capture.url);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const decoded = await decodeImage(bytes);
    if (!decoded.ok) {
      assert(
        ["not an image", "truncated or corrupt image"].includes(decoded.reason),
        `${capture.url}: ${decoded.reason}`,
      );
      kinds[decoded.reason === "not an image" ? "not_an_image" : "truncated"]++;
      if (decoded.reason !== "not an image") {
        assertEquals([bytes[0], bytes[1]], [0xff, 0xd8], "a truncated JPEG starts as a JPEG");
      }
      continue;
    }
    kinds.image++;
    const meta = await sharp(bytes).metadata();
    assertEquals([meta.format, meta.width, meta.height], ["jpeg", capture.width, capture.height]);
    const { image } = decoded;
    const regions = capture.boxes.map((b) => ({ ...drawnRegion(b.bbox, image), taxon: b.taxon }));
    for (const region of regions) {
      const x = Math.floor((region.left + region.right) / 2);
      const y = Math.floor((region.top + region.bottom) / 2);
      // JPEG blurs colour edges (chroma subsampling): only points 8 px from every edge count
      const nearEdge = regions.some((r) =>
        (Math.abs(x - r.left) < 8 || Math.abs(x - r.right) < 8) && y > r.top - 8 &&
          y < r.bottom + 8 ||
        (Math.abs(y - r.top) < 8 || Math.abs(y - r.bottom) < 8) && x > r.left - 8 &&
          x < r.right + 8
      );
      if (nearEdge) continue;
      const top = regions.findLast((r) =>
        x >= r.left && x < r.right && y >= r.top && y < r.bottom
      )!;
      const expected = taxonColor(top.taxon);
      const at = (y * image.width + x) * image.channels;
      const found = { r: image.data[at], g: image.data[at + 1], b: image.data[at + 2] };
      const off = Math.max(
        Math.abs(found.r - expected.r),
        Math.abs(found.g - expected.g),
        Math.abs(found.b - expected.b),
      );
      assert(
        off <= 24,
        `${capture.url} at ${x},${y}: ${JSON.stringify(found)} vs ${JSON.stringify(expected)}`,
      );
      checkedBoxes++;
    }
  }
  assert(checkedBoxes > 50, `boxes checked: ${checkedBoxes}`);
  return kinds;
}

/**
 * `detections_coco` with `include_images` over the set, drained in batches of 50 (its first batch
 * is sized before any was weighed): no batch of its images phase holds more than
 * {@link MAX_IMAGES_PER_BATCH} images (a batch keeps its source images until they are written).
 */
async function checkImagesPerBatch(
  sql: Sql,
  projectId: number,
  collectionId: number,
  port: number,
): Promise<void> {
  const options = { include_images: true, max_skipped_fraction: 0.5 };
  const drained = await drainStream(exporterFor(detectionsCoco, options), {
    sql,
    projectId,
    filters: { collection_id: collectionId },
    settings: {
      ...defaultFormatSettings,
      images: { ...defaultImageSourceSettings, hosts: [`127.0.0.1:${port}`] },
    },
    options,
  }, { limit: 50 });
  const images = drained.states.map((state) =>
    unpackEntries(String((state as { packedEntries?: string }).packedEntries ?? ""))
      .filter((entry) => entry.name.startsWith("images/")).length
  );
  const perBatch = images.slice(1).map((n, i) => n - images[i]);
  assert(images.at(-1)! > MAX_IMAGES_PER_BATCH, `only ${images.at(-1)} images in the archive`);
  assertEquals(Math.max(...perBatch), MAX_IMAGES_PER_BATCH, `images per batch: ${perBatch}`);
}
