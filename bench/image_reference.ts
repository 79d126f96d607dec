/**
 * The single-pass reference of the image formats (issue 19): one script in the bench process,
 * no Temporal, no upload, no zip, no checkpoints. One statement reads every capture of the
 * project with its boxes; each capture is fetched once over HTTP (plain `fetch`, at most
 * `concurrency` at once, like the export's `IMAGE_FETCH_CONCURRENCY`), then
 *
 * - `crops_by_taxon`: decoded once with sharp, every box cut with the export's padding,
 *   `image_max_side` and `jpeg_quality` (`cropRegion`, `cutCrop`: the same libvips work) and
 *   encoded, the bytes counted;
 * - `yolo_dataset`: re-encoded as the format does (`encodeFrame` at its `jpeg_quality` and
 *   `image_max_side`), the bytes counted.
 *
 * What it leaves out is what the export adds around the same image work: batches, the keyset
 * statements, the zip, the upload, the workflow and its heartbeats.
 */
import type { Sql } from "../db/client.ts";
import { cropRegion, cutCrop, decodeImage, encodeFrame } from "../registry/image_crops.ts";
import { mapBounded } from "../registry/image_sources.ts";
import { cropOptions } from "../registry/formats/crops_by_taxon.ts";
import { yoloOptions } from "../registry/formats/yolo_dataset.ts";
import type { ExportOptions } from "../registry/types.ts";

/** What one image reference pass found. */
export interface ImageReferenceRun {
  kind: string;
  /** Crops (`crops_by_taxon`) or frames (`yolo_dataset`) produced. */
  rows: number;
  /** Captures fetched. */
  captures: number;
  seconds: number;
  rowsPerSecond: number;
  /** Bytes of the JPEGs produced. */
  bytes: number;
  /** Bytes fetched. */
  fetchedBytes: number;
  /** Crops or frames that could not be made. */
  failed: number;
}

/** The formats with an image reference. */
export const IMAGE_REFERENCE_FORMATS = new Set(["crops_by_taxon", "yolo_dataset"]);

/** A capture with its boxes (valid occurrences with a determination, real boxes). */
interface CaptureBoxes {
  url: string;
  boxes: number[][];
}

/** Every capture of `projectId` holding a box of a determined occurrence, boxes by detection id. */
function captures(sql: Sql, projectId: number): Promise<CaptureBoxes[]> {
  return sql<CaptureBoxes[]>`
    select rtrim(s.public_base_url, '/') || '/' || ltrim(s.path, '/') as url,
      json_agg(d.bbox::float8[] order by d.id) as boxes
    from source_images s
    join detections d on d.source_image_id = s.id
    join occurrences o on o.id = d.occurrence_id
    where s.project_id = ${projectId} and o.determination_id is not null
      and cardinality(d.bbox) = 4
    group by s.id
    order by s.id`;
}

/** The bytes at `url`, or null on any failure. */
async function fetchOnce(url: string): Promise<Uint8Array | null> {
  try {
    const response = await fetch(url);
    if (!response.ok) {
      await response.body?.cancel();
      return null;
    }
    return new Uint8Array(await response.arrayBuffer());
  } catch {
    return null;
  }
}

/**
 * The reference pass of `format` over project `projectId` with the export's `options`; null for
 * a format without one.
 */
export async function measureImageReference(
  sql: Sql,
  format: string,
  options: { projectId: number; exportOptions: ExportOptions; concurrency: number },
): Promise<ImageReferenceRun | null> {
  if (!IMAGE_REFERENCE_FORMATS.has(format)) return null;
  const started = performance.now();
  const list = await captures(sql, options.projectId);
  let rows = 0;
  let bytes = 0;
  let fetchedBytes = 0;
  let failed = 0;
  if (format === "crops_by_taxon") {
    const crop = cropOptions(options.exportOptions);
    await mapBounded(list, options.concurrency, async (capture) => {
      const fetched = await fetchOnce(capture.url);
      const decoded = fetched ? await decodeImage(fetched) : null;
      fetchedBytes += fetched?.byteLength ?? 0;
      if (!decoded?.ok) return void (failed += capture.boxes.length);
      for (const bbox of capture.boxes) {
        const region = cropRegion(bbox, crop.crop_padding, decoded.image);
        if (!region.ok) {
          failed++;
          continue;
        }
        const jpeg = await cutCrop(decoded.image, region.region, crop.jpeg_quality, {
          maxSide: crop.image_max_side ?? undefined,
        });
        rows++;
        bytes += jpeg.byteLength;
      }
    });
  } else {
    const yolo = yoloOptions(options.exportOptions);
    await mapBounded(list, options.concurrency, async (capture) => {
      const fetched = await fetchOnce(capture.url);
      fetchedBytes += fetched?.byteLength ?? 0;
      const encoded = fetched
        ? await encodeFrame(fetched, { quality: yolo.jpeg_quality, maxSide: yolo.image_max_side })
        : null;
      if (!encoded?.ok) return void failed++;
      rows++;
      bytes += encoded.frame.jpeg.byteLength;
    });
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    kind: format === "crops_by_taxon"
      ? "fetch each capture once, decode once, cut and encode every crop (sharp); no Temporal, " +
        "no zip, no upload"
      : "fetch each capture once, re-encode the frame (sharp); no Temporal, no zip, no upload",
    rows,
    captures: list.length,
    seconds,
    rowsPerSecond: rows / seconds,
    bytes,
    fetchedBytes,
    failed,
  };
}
