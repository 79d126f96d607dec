/**
 * Synthetic source images for a demo project, so that the formats that fetch capture images
 * (`fetchesImages`: `crops_by_taxon`, …) run end to end in `deno task demo`.
 *
 * Bounded, whatever the project's size: a slice of {@link DEMO_IMAGE_NIGHTS} nights spread over
 * the project's events (so that a split by event has units to split), {@link WINDOW_CAPTURES}
 * consecutive captures in the middle of each night in all, make the capture set
 * {@link DEMO_IMAGES_COLLECTION}, which the demo passes as the `collection_id` filter of the image
 * formats. The filter selects the occurrences with a detection on the set, whose tracks may run
 * a few captures past it: every capture holding a box of such an occurrence gets an image (the
 * image captures, about 300), so every crop of such an export has a source image.
 *
 * The first call rescales the image captures to {@link DEMO_IMAGE_WIDTH} pixels wide (the
 * station's aspect ratio kept; `width`, `height` and every box on them scaled and rounded to
 * whole pixels) so that an image takes about 10 ms to draw, not 60. Each image is a dark frame with a rectangle at
 * each box in a colour per taxon (`db/synthetic_jpeg.ts`), the object
 * `<STORAGE_PREFIX>sources/<capture path>` (storage/sources.ts); the captures' `public_base_url`
 * is set to `options.baseUrl`, the demo's loopback `/sources/` route (api/sources.ts).
 *
 * A few captures are broken on purpose ({@link planDemoImages}): missing (HTTP 404), not an image,
 * a truncated JPEG, holding at most 2% of the export's crops, so that an export lists them in
 * `skipped.csv` and still ends SUCCESS under the default `max_skipped_fraction` of 0.05.
 *
 * Idempotent: a later call (a restarted demo) keeps the rescaled captures, points the captures at
 * the new base URL when it changed, and writes only the images missing from storage. A manifest,
 * `sources/demo-images-<project id>.json`, holds a digest of what the images were drawn from:
 * when it differs (another database's project of the same id wrote them), every image is
 * rewritten.
 */
import type { Sql } from "./client.ts";
import { syntheticJpeg, taxonColor } from "./synthetic_jpeg.ts";
import { mapBounded } from "../registry/image_sources.ts";
import { realBox } from "../registry/numeric_sql.ts";
import { putObject } from "../storage/put_object.ts";
import { sourceKey } from "../storage/sources.ts";
import type { ObjectStorage } from "../storage/types.ts";

/** Name of the capture set of the captures that have a synthetic image. */
export const DEMO_IMAGES_COLLECTION = "Captures with synthetic images";

/** Width in pixels of the rescaled image captures. */
export const DEMO_IMAGE_WIDTH = 1600;

/** Nights (events) of the capture set, spread over the project's events. */
export const DEMO_IMAGE_NIGHTS = 12;

/** Consecutive captures of the capture set in all, shared out among its nights. */
export const WINDOW_CAPTURES = 240;

/** The most crops the broken captures may hold, as a fraction of all the crops. */
export const BROKEN_CROPS_FRACTION = 0.02;

/** The background of the synthetic images: dark, unlike every taxon colour. */
const BACKGROUND = { r: 34, g: 38, b: 46 };

/** What happens to a capture's image. */
export type DemoImageKind = "image" | "missing" | "not_an_image" | "truncated";

/** The broken kinds, in the order they are handed out (each twice at most). */
const BROKEN_KINDS: readonly DemoImageKind[] = [
  "missing",
  "not_an_image",
  "truncated",
  "missing",
  "not_an_image",
  "truncated",
];

/** The bytes of a capture that is not an image. */
const NOT_AN_IMAGE = new TextEncoder().encode(
  "not a JPEG: a deliberately broken demo capture (see db/seed_demo_images.ts)\n",
);

/** Where the images go and where they are served from. */
export interface DemoImagesOptions {
  projectId: number;
  /** Base URL of the served sources, e.g. `http://127.0.0.1:8000/sources/`. */
  baseUrl: string;
  /** `STORAGE_PREFIX` (`""` or segments ending in `/`). */
  storagePrefix: string;
  /** Images drawn and written at once (default 4). */
  concurrency?: number;
}

/** What {@link seedDemoImages} found and wrote. */
export interface DemoImagesResult {
  /** The capture set of the captures with an image ({@link DEMO_IMAGES_COLLECTION}). */
  collectionId: number;
  /** The nights of the capture set. */
  eventIds: number[];
  /** Image captures (those holding a box of an occurrence the set selects), by kind. */
  captures: number;
  kinds: Record<DemoImageKind, number>;
  /** Objects written by this call (0 when storage already held them all). */
  written: number;
  /** Boxed detections of the valid occurrences the set selects (the crops of an export). */
  crops: number;
  /** Those on broken captures (left out of an export, listed in `skipped.csv`). */
  brokenCrops: number;
  /** Wall-clock time of the call, in seconds. */
  seconds: number;
}

/** A capture of the set, as {@link planDemoImages} and the drawing read it. */
export interface DemoCapture {
  id: number;
  path: string;
  width: number;
  height: number;
  /** Its boxes in detection-id order, with the determination of their occurrence. */
  boxes: { bbox: number[]; taxon: number | null }[];
  /** Boxed detections of valid occurrences the set selects: the crops an export cuts from it. */
  crops: number;
}

/**
 * The kind of each capture (by id): broken ones handed out in {@link BROKEN_KINDS} order to the
 * captures holding the fewest crops (ties by id), as long as the broken captures' crops stay
 * within `fraction` of all crops; every other capture is an `image`. A capture without a crop is
 * never broken (it would show in no `skipped.csv`).
 */
export function planDemoImages(
  captures: readonly Pick<DemoCapture, "id" | "crops">[],
  fraction = BROKEN_CROPS_FRACTION,
): Map<number, DemoImageKind> {
  const plan = new Map<number, DemoImageKind>(captures.map((c) => [c.id, "image"]));
  const total = captures.reduce((sum, c) => sum + c.crops, 0);
  const budget = Math.floor(total * fraction);
  const candidates = captures.filter((c) => c.crops > 0)
    .sort((a, b) => a.crops - b.crops || a.id - b.id);
  let used = 0;
  for (const [i, kind] of BROKEN_KINDS.entries()) {
    const capture = candidates[i];
    if (!capture || used + capture.crops > budget) break;
    plan.set(capture.id, kind);
    used += capture.crops;
  }
  return plan;
}

/**
 * Makes sure the demo project `options.projectId` has its synthetic source images (see the
 * module comment); returns what it found and wrote. Throws when the project has no event.
 */
export async function seedDemoImages(
  sql: Sql,
  storage: ObjectStorage,
  options: DemoImagesOptions,
): Promise<DemoImagesResult> {
  const started = performance.now();
  const { collectionId, eventIds } = await ensureImageSet(sql, options.projectId);
  const captures = await imageCaptures(sql, collectionId);
  await sql`
    update source_images set public_base_url = ${options.baseUrl}
    where id = any(${captures.map((c) => c.id)}::int8[])
      and public_base_url is distinct from ${options.baseUrl}`;
  const plan = planDemoImages(captures);
  const kinds: Record<DemoImageKind, number> = {
    image: 0,
    missing: 0,
    not_an_image: 0,
    truncated: 0,
  };
  for (const kind of plan.values()) kinds[kind]++;
  // storage may hold images of another database's project of the same id (same paths): they
  // are kept only when the manifest says they were drawn from the very same captures and plan
  const manifestKey = sourceKey(options.storagePrefix, `demo-images-${options.projectId}.json`);
  const digest = await planDigest(captures, plan);
  const same = (await readManifest(storage, manifestKey))?.digest === digest;
  let written = 0;
  const sizes: { id: number; size: number }[] = [];
  await mapBounded(captures, options.concurrency ?? 4, async (capture) => {
    const kind = plan.get(capture.id)!;
    const key = sourceKey(options.storagePrefix, capture.path);
    if (kind === "missing") return await storage.deleteObject(key);
    if (same && await storage.headObject(key)) return;
    const bytes = await captureBytes(capture, kind);
    const size = await putObject(storage, key, { bytes, contentType: "image/jpeg" });
    written++;
    if (kind === "image") sizes.push({ id: capture.id, size });
  });
  if (!same) {
    const bytes = new TextEncoder().encode(JSON.stringify({ digest, captures: captures.length }));
    await putObject(storage, manifestKey, { bytes, contentType: "application/json" });
  }
  if (sizes.length > 0) {
    await sql`
      update source_images s set size = x.size
      from unnest(${sizes.map((s) => s.id)}::int8[], ${sizes.map((s) => s.size)}::int8[])
        as x(id, size)
      where s.id = x.id and s.size is distinct from x.size`;
  }
  const crops = captures.reduce((sum, c) => sum + c.crops, 0);
  const brokenCrops = captures.filter((c) => plan.get(c.id) !== "image")
    .reduce((sum, c) => sum + c.crops, 0);
  return {
    collectionId,
    eventIds,
    captures: captures.length,
    kinds,
    written,
    crops,
    brokenCrops,
    seconds: (performance.now() - started) / 1000,
  };
}

/** SHA-256 (hex) of what the images are drawn from: each capture's path, size, boxes and kind. */
async function planDigest(
  captures: readonly DemoCapture[],
  plan: ReadonlyMap<number, DemoImageKind>,
): Promise<string> {
  const text = JSON.stringify(
    captures.map((c) => [c.path, c.width, c.height, c.boxes, plan.get(c.id)]),
  );
  const hash = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The manifest of a project's images (`{digest}`), or null when there is none or it is bad. */
async function readManifest(
  storage: ObjectStorage,
  key: string,
): Promise<{ digest?: string } | null> {
  if (!(await storage.headObject(key))) return null;
  try {
    return JSON.parse(await new Response(await storage.readObject(key)).text());
  } catch {
    return null;
  }
}

/** The bytes stored for a capture of `kind` (never called for `missing`). */
async function captureBytes(capture: DemoCapture, kind: DemoImageKind): Promise<Uint8Array> {
  if (kind === "not_an_image") return NOT_AN_IMAGE;
  const jpeg = await syntheticJpeg(capture, {
    background: BACKGROUND,
    boxes: capture.boxes.map((b) => ({ box: b.bbox, color: taxonColor(b.taxon) })),
    quality: 85,
  });
  // the first 60%: a JPEG whose scan stops early (no end-of-image marker)
  return kind === "truncated" ? jpeg.slice(0, Math.floor(jpeg.length * 0.6)) : jpeg;
}

/**
 * `array(…)` of the image captures of capture set `collectionId`: those holding a real box of an
 * occurrence with a detection on the set (what its `collection_id` filter selects).
 */
function imageCaptureIds(sql: Sql, collectionId: number) {
  return sql`array(
    select distinct d.source_image_id from detections d
    where ${realBox(sql, sql`d.bbox`)} and d.occurrence_id in (
      select fd.occurrence_id from detections fd
      join source_image_collection_images fci on fci.source_image_id = fd.source_image_id
      where fci.collection_id = ${collectionId}))`;
}

/**
 * The project's image capture set, created on the first call: {@link DEMO_IMAGE_NIGHTS} events
 * spread over the project's (in id order), of each the middle {@link WINDOW_CAPTURES} / nights
 * captures; then the image captures and their boxes rescaled to {@link DEMO_IMAGE_WIDTH}. One
 * transaction; a second demo seeding the same project at once waits on the project row. Throws
 * when the project has no event.
 */
function ensureImageSet(
  sql: Sql,
  projectId: number,
): Promise<{ collectionId: number; eventIds: number[] }> {
  return sql.begin(async (tx) => {
    await tx`select id from projects where id = ${projectId} for update`;
    const [found] = await tx<{ collection_id: number; event_ids: number[] }[]>`
      select c.id as collection_id,
        array(select distinct s.event_id from source_image_collection_images ci
          join source_images s on s.id = ci.source_image_id
          where ci.collection_id = c.id order by 1) as event_ids
      from source_image_collections c
      where c.project_id = ${projectId} and c.name = ${DEMO_IMAGES_COLLECTION}
      order by c.id limit 1`;
    if (found) {
      return { collectionId: Number(found.collection_id), eventIds: found.event_ids.map(Number) };
    }
    const events = (await tx<{ id: number }[]>`
      select id from events where project_id = ${projectId} order by id`).map((e) => Number(e.id));
    if (events.length === 0) {
      throw new Error(`demo project has no event to draw images for: ${projectId}`);
    }
    const nights = Math.min(DEMO_IMAGE_NIGHTS, events.length);
    const eventIds = Array.from(
      { length: nights },
      (_, i) => events[Math.floor((i * events.length) / nights)],
    );
    const window = Math.max(1, Math.floor(WINDOW_CAPTURES / nights));
    const [{ id: collectionId }] = await tx<{ id: number }[]>`
      insert into source_image_collections (project_id, name, description)
      values (${projectId}, ${DEMO_IMAGES_COLLECTION},
        ${`${window} consecutive captures of each of ${nights} nights; the demo serves synthetic images of them`})
      returning id`;
    await tx`
      insert into source_image_collection_images (collection_id, source_image_id)
      select ${collectionId}, w.id from (
        select s.id, row_number() over (partition by s.event_id order by s.id) as r,
          count(*) over (partition by s.event_id) as n
        from source_images s where s.event_id = any(${eventIds}::int8[])
      ) w
      where w.r > (w.n - ${window}) / 2 and w.r <= (w.n - ${window}) / 2 + ${window}`;
    const images = imageCaptureIds(sql, Number(collectionId));
    // boxes first (they read the captures' old width), then the captures; whole pixels kept
    await tx`
      update detections d set bbox = n.bbox
      from (
        select sd.id, array[x1, y1, greatest(x1 + 1, x2), greatest(y1 + 1, y2)] as bbox
        from detections sd
        join source_images s on s.id = sd.source_image_id
        cross join lateral (select ${DEMO_IMAGE_WIDTH}::float8 / s.width as k,
          round(s.height * ${DEMO_IMAGE_WIDTH}::float8 / s.width) as h) z
        cross join lateral (
          select least(${DEMO_IMAGE_WIDTH} - 1, round(sd.bbox[1] * z.k)) as x1,
            least(z.h - 1, round(sd.bbox[2] * z.k)) as y1,
            least(${DEMO_IMAGE_WIDTH}::float8, round(sd.bbox[3] * z.k)) as x2,
            least(z.h, round(sd.bbox[4] * z.k)) as y2
        ) b
        where s.id = any(${images}) and s.width > 0 and ${realBox(sql, sql`sd.bbox`)}
      ) n
      where d.id = n.id`;
    await tx`
      update source_images
      set width = ${DEMO_IMAGE_WIDTH}, height = round(height * ${DEMO_IMAGE_WIDTH}::float8 / width)
      where id = any(${images}) and width > 0`;
    return { collectionId: Number(collectionId), eventIds };
  });
}

/** The image captures of capture set `collectionId` with their boxes, in id order. */
async function imageCaptures(sql: Sql, collectionId: number): Promise<DemoCapture[]> {
  const rows = await sql<DemoCapture[]>`
    with selected as (
      select distinct fd.occurrence_id as id from detections fd
      join source_image_collection_images fci on fci.source_image_id = fd.source_image_id
      where fci.collection_id = ${collectionId}
    )
    select s.id, s.path, s.width, s.height,
      coalesce(jsonb_agg(jsonb_build_object('bbox', d.bbox, 'taxon', o.determination_id)
        order by d.id) filter (where d.id is not null), '[]'::jsonb) as boxes,
      count(d.id) filter (where o.determination_id is not null
        and d.occurrence_id in (select id from selected))::int as crops
    from source_images s
    left join detections d on d.source_image_id = s.id and ${realBox(sql, sql`d.bbox`)}
    left join occurrences o on o.id = d.occurrence_id
    where s.id = any(${imageCaptureIds(sql, collectionId)})
    group by s.id
    order by s.id`;
  return rows.map((r) => ({
    id: Number(r.id),
    path: r.path,
    width: r.width,
    height: r.height,
    boxes: r.boxes.map((b) => ({ bbox: b.bbox, taxon: b.taxon === null ? null : Number(b.taxon) })),
    crops: r.crops,
  }));
}
