/**
 * Synthetic source images for a demo project, so that the formats that fetch capture images
 * (`fetchesImages`: `crops_by_taxon`, …) run end to end in `deno task demo`.
 *
 * Bounded: only the captures of one night (the project's first event, at most 300 captures
 * whatever the project's size) that hold a boxed detection get an image. Those captures make the
 * capture set {@link DEMO_IMAGES_COLLECTION}, which the demo passes as the `collection_id` filter
 * of the image formats: every detection of an occurrence seen on them lies on that night, so
 * every crop of such an export has a source image.
 *
 * The first call rescales the night to {@link DEMO_IMAGE_WIDTH} pixels wide (the station's
 * aspect ratio kept; `width`, `height` and every box on it scaled and rounded to whole pixels) so
 * that an image takes about 10 ms to draw, not 60. Each image is a dark frame with a rectangle at
 * each box in a colour per taxon (`db/synthetic_jpeg.ts`), the object
 * `<STORAGE_PREFIX>sources/<capture path>` (storage/sources.ts); the captures' `public_base_url`
 * is set to `options.baseUrl`, the demo's loopback `/sources/` route (api/sources.ts).
 *
 * A few captures are broken on purpose ({@link planDemoImages}): missing (HTTP 404), not an image,
 * a truncated JPEG, holding at most 2% of the night's crops, so that an export lists them in
 * `skipped.csv` and still ends SUCCESS under the default `max_skipped_fraction` of 0.05.
 *
 * Idempotent: a later call (a restarted demo) keeps the rescaled night, points the captures at
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

/** Width in pixels of the rescaled night's captures. */
export const DEMO_IMAGE_WIDTH = 1600;

/** The most crops the broken captures may hold, as a fraction of the night's crops. */
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
  /** The night whose captures have images. */
  eventId: number;
  /** Captures in the set, and how many of them are of each kind. */
  captures: number;
  kinds: Record<DemoImageKind, number>;
  /** Objects written by this call (0 when storage already held them all). */
  written: number;
  /** Boxed detections of valid occurrences on the set's captures (the crops of an export). */
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
  /** Boxed detections of valid occurrences: the crops an export cuts from it. */
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
  const { collectionId, eventId } = await ensureImageNight(sql, options.projectId);
  await sql`
    update source_images s set public_base_url = ${options.baseUrl}
    from source_image_collection_images ci
    where ci.collection_id = ${collectionId} and s.id = ci.source_image_id
      and s.public_base_url is distinct from ${options.baseUrl}`;
  const captures = await imageCaptures(sql, collectionId);
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
    eventId,
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
 * The capture set of the project's image night, created on the first call: the project's first
 * event rescaled to {@link DEMO_IMAGE_WIDTH}, its captures holding a box put in the set. One
 * transaction; a second demo seeding the same project at once waits on the project row.
 */
function ensureImageNight(
  sql: Sql,
  projectId: number,
): Promise<{ collectionId: number; eventId: number }> {
  return sql.begin(async (tx) => {
    await tx`select id from projects where id = ${projectId} for update`;
    const [found] = await tx<{ collection_id: number; event_id: number }[]>`
      select c.id as collection_id,
        (select s.event_id from source_image_collection_images ci
          join source_images s on s.id = ci.source_image_id
          where ci.collection_id = c.id limit 1) as event_id
      from source_image_collections c
      where c.project_id = ${projectId} and c.name = ${DEMO_IMAGES_COLLECTION}
      order by c.id limit 1`;
    if (found) {
      return { collectionId: Number(found.collection_id), eventId: Number(found.event_id) };
    }
    const [event] = await tx<{ id: number }[]>`
      select min(id) as id from events where project_id = ${projectId}`;
    if (event?.id === null || event === undefined) {
      throw new Error(`demo project has no event to draw images for: ${projectId}`);
    }
    const eventId = Number(event.id);
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
        where s.event_id = ${eventId} and s.width > 0 and ${realBox(sql, sql`sd.bbox`)}
      ) n
      where d.id = n.id`;
    await tx`
      update source_images
      set width = ${DEMO_IMAGE_WIDTH}, height = round(height * ${DEMO_IMAGE_WIDTH}::float8 / width)
      where event_id = ${eventId} and width > 0`;
    const [{ id: collectionId }] = await tx<{ id: number }[]>`
      insert into source_image_collections (project_id, name, description)
      values (${projectId}, ${DEMO_IMAGES_COLLECTION},
        'The captures of one night that hold a box, with synthetic images served by the demo')
      returning id`;
    await tx`
      insert into source_image_collection_images (collection_id, source_image_id)
      select ${collectionId}, s.id from source_images s
      where s.event_id = ${eventId}
        and exists (select 1 from detections d where d.source_image_id = s.id
          and ${realBox(sql, sql`d.bbox`)})`;
    return { collectionId: Number(collectionId), eventId };
  });
}

/** The captures of capture set `collectionId` with their boxes, in id order. */
async function imageCaptures(sql: Sql, collectionId: number): Promise<DemoCapture[]> {
  const rows = await sql<
    {
      id: number;
      path: string;
      width: number;
      height: number;
      boxes: { bbox: number[]; taxon: number | null }[];
      crops: number;
    }[]
  >`
    select s.id, s.path, s.width, s.height,
      coalesce(jsonb_agg(jsonb_build_object('bbox', d.bbox, 'taxon', o.determination_id)
        order by d.id) filter (where d.id is not null), '[]'::jsonb) as boxes,
      count(d.id) filter (where o.determination_id is not null)::int as crops
    from source_image_collection_images ci
    join source_images s on s.id = ci.source_image_id
    left join detections d on d.source_image_id = s.id and ${realBox(sql, sql`d.bbox`)}
    left join occurrences o on o.id = d.occurrence_id
    where ci.collection_id = ${collectionId}
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
