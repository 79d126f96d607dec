/**
 * The project of the image-format bench (`deno task bench --formats crops_by_taxon,yolo_dataset`):
 * captures with real synthetic JPEG sources (`db/synthetic_jpeg.ts`: a dark background with a
 * coloured rectangle at each box) served over HTTP on loopback by moto as public objects, the
 * way the image-format tests serve theirs (`tests/fixtures/crops_project.ts`).
 *
 * One project per (detections, source size), in its own database
 * ({@link BENCH_IMAGES_DATABASE}), reused when seeded before. {@link BOXES_PER_CAPTURE} boxed
 * detections per capture ({@link captureBoxes}: one per cell of a 4 × 2 grid, sizes and places
 * drawn from the capture's index), each of its own valid occurrence determined as one of
 * {@link SPECIES} species in 4 families, the captures spread over 12 nights of 3 stations.
 *
 * The JPEGs are drawn once into `.data/bench/images/<w>x<h>/` and uploaded to a fresh public
 * bucket of the run's moto on every run (moto keeps objects in memory); the captures'
 * `public_base_url` then names that bucket.
 */
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { fileURLToPath } from "node:url";
import type { Sql } from "../db/client.ts";
import { syntheticJpeg, taxonColor } from "../db/synthetic_jpeg.ts";
import { mapBounded } from "../registry/image_sources.ts";
import { benchToken } from "./database.ts";

export { BENCH_IMAGES_DATABASE } from "./database.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Boxed detections drawn on each capture. */
export const BOXES_PER_CAPTURE = 8;

/** Species determining the occurrences (4 families of 5). */
export const SPECIES = 20;

/** A source size in pixels. */
export interface ImageSize {
  width: number;
  height: number;
}

/** `WIDTHxHEIGHT` (e.g. `1600x1200`) as a size; throws on anything else or a side > 16384. */
export function parseImageSize(text: string): ImageSize {
  const match = /^(\d{1,5})x(\d{1,5})$/.exec(text.trim());
  const size = match ? { width: Number(match[1]), height: Number(match[2]) } : null;
  if (!size || [size.width, size.height].some((side) => side < 64 || side > 16_384)) {
    throw new Error(`--image-size: WIDTHxHEIGHT, each side 64–16384 pixels, not ${text}`);
  }
  return size;
}

/** mulberry32: a small deterministic generator of fractions in [0, 1). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/**
 * The {@link BOXES_PER_CAPTURE} boxes of capture `index` in an image of `size`: one per cell of a
 * 4 × 2 grid, each 15–60 % of its cell's width and height (so a moth at 1600 × 1200 is some
 * 60–240 pixels wide), placed at random inside it, whole pixels, `[x1, y1, x2, y2]`.
 * Deterministic: the same index and size give the same boxes.
 */
export function captureBoxes(index: number, size: ImageSize): number[][] {
  const next = random(index * 7919 + size.width * 31 + size.height);
  const cellWidth = size.width / 4;
  const cellHeight = size.height / 2;
  return Array.from({ length: BOXES_PER_CAPTURE }, (_, cell) => {
    const width = Math.max(2, Math.round(cellWidth * (0.15 + 0.45 * next())));
    const height = Math.max(2, Math.round(cellHeight * (0.15 + 0.45 * next())));
    const x1 = Math.floor((cell % 4) * cellWidth + (cellWidth - width) * next());
    const y1 = Math.floor(Math.floor(cell / 4) * cellHeight + (cellHeight - height) * next());
    return [x1, y1, x1 + width, y1 + height];
  });
}

/** The species (0-based) of box `box` of capture `index`. */
export function boxSpecies(index: number, box: number): number {
  return (index * 3 + box * 7) % SPECIES;
}

/** A seeded image-bench project, its sources uploaded to this run's moto. */
export interface ImageBenchProject {
  projectId: number;
  userId: number;
  token: string;
  detections: number;
  captures: number;
  size: ImageSize;
  /** `host:port` of the sources (for `SOURCE_IMAGE_HOSTS`). */
  host: string;
  /** Total bytes of the source JPEGs. */
  sourceBytes: number;
  /** Seconds spent seeding the database now (0 when reused). */
  seededSeconds: number;
  /** Seconds spent drawing (the missing ones) and uploading the sources. */
  sourcesSeconds: number;
}

/** The captures of the project: ceil(detections / {@link BOXES_PER_CAPTURE}). */
export function captureCount(detections: number): number {
  return Math.ceil(detections / BOXES_PER_CAPTURE);
}

/** The object key (and capture path) of capture `index`. */
function capturePath(index: number, size: ImageSize): string {
  return `bench/${size.width}x${size.height}/c${String(index).padStart(6, "0")}.jpg`;
}

/**
 * The project of `detections` boxed detections on `size` sources in `sql` (the images bench
 * database): reused when seeded before, else seeded now; its sources drawn (cached on disk) and
 * uploaded to a public bucket of moto at `s3Endpoint`, its captures pointed at that bucket.
 */
export async function imageBenchProject(
  sql: Sql,
  options: { detections: number; size: ImageSize; s3Endpoint: string },
): Promise<ImageBenchProject> {
  const { detections, size } = options;
  await sql`
    create table if not exists bench_image_projects (
      detections bigint not null,
      width int not null,
      height int not null,
      project_id bigint not null,
      user_id bigint not null,
      primary key (detections, width, height)
    )`;
  const [found] = await sql<{ project_id: number; user_id: number }[]>`
    select b.project_id, b.user_id from bench_image_projects b
    join projects p on p.id = b.project_id
    where b.detections = ${detections} and b.width = ${size.width} and b.height = ${size.height}`;
  let seededSeconds = 0;
  let ids: { projectId: number; userId: number };
  if (found) {
    ids = { projectId: Number(found.project_id), userId: Number(found.user_id) };
  } else {
    console.error(`seeding an image bench project of ${detections} detections …`);
    const started = performance.now();
    ids = await seedImageProject(sql, detections, size);
    seededSeconds = (performance.now() - started) / 1000;
  }
  const started = performance.now();
  const bucket = `bench-sources-${crypto.randomUUID().slice(0, 8)}`;
  const base = `${options.s3Endpoint.replace(/\/+$/, "")}/${bucket}/`;
  const sourceBytes = await uploadSources(options.s3Endpoint, bucket, detections, size);
  await sql`update source_images set public_base_url = ${base} where project_id = ${ids.projectId}`;
  await sql`analyze source_images`;
  return {
    ...ids,
    token: await benchToken(sql, ids.userId),
    detections,
    captures: captureCount(detections),
    size,
    host: new URL(options.s3Endpoint).host,
    sourceBytes,
    seededSeconds,
    sourcesSeconds: (performance.now() - started) / 1000,
  };
}

/** Inserts the project (see the module comment) in one transaction; returns its ids. */
async function seedImageProject(
  sql: Sql,
  detections: number,
  size: ImageSize,
): Promise<{ projectId: number; userId: number }> {
  const tag = `${detections}-${size.width}x${size.height}-${crypto.randomUUID().slice(0, 6)}`;
  const captures = captureCount(detections);
  const ids = await sql.begin(async (tx) => {
    const one = async (table: string, row: Record<string, unknown>): Promise<number> => {
      const [{ id }] = await tx<{ id: number }[]>`insert into ${tx(table)} ${tx(row)} returning id`;
      return Number(id);
    };
    const userId = await one("users", { email: `bench-images-${tag}@example.org`, name: "Bench" });
    const projectId = await one("projects", {
      name: `Image bench ${tag}`,
      slug: `image-bench-${tag}`,
      owner_id: userId,
    });
    const stations: number[] = [];
    for (let i = 0; i < 3; i++) {
      stations.push(await one("deployments", { project_id: projectId, name: `Station ${i + 1}` }));
    }
    const nights: { id: number; station: number; start: Date }[] = [];
    for (let n = 0; n < 12; n++) {
      const start = new Date(Date.UTC(2024, 5, 1 + Math.floor(n / 3), 21));
      const station = stations[n % 3];
      const end = new Date(start.getTime() + 8 * 3600_000);
      const id = await one("events", { project_id: projectId, deployment_id: station, start, end });
      nights.push({ id, station, start });
    }
    const order = await one("taxa", { name: "Lepidoptera", rank: "ORDER" });
    const orderRef = { id: order, name: "Lepidoptera", rank: "ORDER" };
    const species: number[] = [];
    for (let f = 0; f < 4; f++) {
      const name = `Benchidae ${f + 1}`;
      const family = await one("taxa", {
        name,
        rank: "FAMILY",
        parent_id: order,
        parents: tx.json([orderRef]),
      });
      for (let s = 0; s < SPECIES / 4; s++) {
        species.push(
          await one("taxa", {
            name: `Bench species ${f * 5 + s + 1}`,
            rank: "SPECIES",
            parent_id: family,
            parents: tx.json([orderRef, { id: family, name, rank: "FAMILY" }]),
          }),
        );
      }
    }
    for (let from = 0; from < captures; from += 500) {
      const rows = [];
      for (let i = from; i < Math.min(captures, from + 500); i++) {
        const night = nights[i % nights.length];
        rows.push({
          project_id: projectId,
          deployment_id: night.station,
          event_id: night.id,
          path: capturePath(i, size),
          public_base_url: "http://127.0.0.1:9/",
          timestamp: new Date(night.start.getTime() + 3600_000 + Math.floor(i / 12) * 60_000),
          width: size.width,
          height: size.height,
        });
      }
      const inserted = await tx<{ id: number }[]>`
        insert into source_images ${tx(rows)} returning id`;
      const occurrences = [];
      const boxes: { capture: number; bbox: number[]; timestamp: Date }[] = [];
      for (const [k, { id }] of inserted.entries()) {
        const i = from + k;
        const row = rows[k];
        const all = captureBoxes(i, size).slice(
          0,
          Math.min(BOXES_PER_CAPTURE, detections - i * BOXES_PER_CAPTURE),
        );
        for (const [b, bbox] of all.entries()) {
          occurrences.push({
            project_id: projectId,
            deployment_id: row.deployment_id,
            event_id: row.event_id,
            determination_id: species[boxSpecies(i, b)],
            determination_score: 0.5 + ((i + b) % 50) / 100,
          });
          boxes.push({ capture: Number(id), bbox, timestamp: row.timestamp });
        }
      }
      const occurrenceIds = await tx<{ id: number }[]>`
        insert into occurrences ${tx(occurrences)} returning id`;
      await tx`insert into detections ${
        tx(boxes.map((box, j) => ({
          occurrence_id: occurrenceIds[j].id,
          source_image_id: box.capture,
          bbox: box.bbox,
          timestamp: box.timestamp,
        })))
      }`;
    }
    await tx`
      insert into bench_image_projects (detections, width, height, project_id, user_id)
      values (${detections}, ${size.width}, ${size.height}, ${projectId}, ${userId})
      on conflict (detections, width, height) do update
        set project_id = excluded.project_id, user_id = excluded.user_id`;
    return { projectId, userId };
  });
  for (const table of ["source_images", "occurrences", "detections", "taxa"]) {
    await sql`analyze ${sql(table)}`;
  }
  return ids;
}

/** The JPEG of capture `index`: drawn once, then read from `.data/bench/images/`. */
async function sourceJpeg(index: number, size: ImageSize): Promise<Uint8Array> {
  const file = `${ROOT}.data/bench/images/${capturePath(index, size).replace(/^bench\//, "")}`;
  try {
    return await Deno.readFile(file);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const jpeg = await syntheticJpeg(size, {
    background: { r: 24, g: 26, b: 32 },
    boxes: captureBoxes(index, size).map((box, b) => ({
      box,
      color: taxonColor(boxSpecies(index, b) + 1),
    })),
    quality: 85,
  });
  await Deno.mkdir(file.slice(0, file.lastIndexOf("/")), { recursive: true });
  await Deno.writeFile(`${file}.part`, jpeg);
  await Deno.rename(`${file}.part`, file);
  return jpeg;
}

/** Uploads every capture's JPEG to a new public-read `bucket`; returns their total bytes. */
async function uploadSources(
  endpoint: string,
  bucket: string,
  detections: number,
  size: ImageSize,
): Promise<number> {
  const s3 = new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "bench", secretAccessKey: "bench" },
  });
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket, ACL: "public-read" }));
    const captures = captureCount(detections);
    console.error(
      `drawing (or reading) and uploading ${captures} sources of ${size.width}×${size.height} …`,
    );
    const sizes = await mapBounded(
      Array.from({ length: captures }, (_, i) => i),
      4,
      async (i) => {
        const body = await sourceJpeg(i, size);
        await s3.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: capturePath(i, size),
            Body: body,
            ContentType: "image/jpeg",
            ACL: "public-read",
          }),
        );
        return body.byteLength;
      },
    );
    return sizes.reduce((a, b) => a + b, 0);
  } finally {
    s3.destroy();
  }
}
