/**
 * The libvips work of `crops_by_taxon` alone, to compare process settings (allocator, V8 flags)
 * without Temporal, the database, HTTP or the zip: 60 synthetic captures of `width × height`
 * pixels (`db/synthetic_jpeg.ts`, eight boxes each) go through {@link withDecodedImage} and
 * eight {@link cutCrop} side by side, five times over after one warm-up pass. Prints
 * milliseconds a capture, the resident set at the end and its peak (VmHWM) in MB. docs/benchmarks.md, "What the
 * split workers' malloc settings cost the crops":
 *
 *     MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=131072 \
 *       deno run -A --v8-flags=--max-old-space-size=96,--max-semi-space-size=1 \
 *       bench/crop_work.ts 1600 1200
 */
import { syntheticJpeg } from "../db/synthetic_jpeg.ts";
import { cropRegion, cutCrop, withDecodedImage } from "../registry/image_crops.ts";

const CAPTURES = 60;
const PASSES = 5;
const BOXES = Array.from(
  { length: 8 },
  (_, i) => [50 + i * 150, 100 + i * 100, 150 + i * 150, 220 + i * 100],
);

/** Decodes every capture once and cuts its eight crops (padding 0.1, quality 90). */
async function cutAll(sources: readonly Uint8Array[]): Promise<void> {
  await Promise.all(sources.map((source) =>
    withDecodedImage(source.slice(), async (decoded) => {
      if (!decoded.ok) throw new Error(decoded.reason);
      await Promise.all(BOXES.map(async (box) => {
        const region = cropRegion(box, 0.1, decoded.image);
        if (!region.ok) throw new Error(region.reason);
        await cutCrop(decoded.image, region.region, 90);
      }));
    })
  ));
}

if (import.meta.main) {
  const [width, height] = [Number(Deno.args[0] ?? 1600), Number(Deno.args[1] ?? 1200)];
  const sources: Uint8Array[] = [];
  for (let i = 0; i < CAPTURES; i++) {
    const color = { r: (i * 40) % 255, g: 90, b: 200 };
    sources.push(
      await syntheticJpeg({ width, height }, { boxes: BOXES.map((box) => ({ box, color })) }),
    );
  }
  await cutAll(sources);
  const start = performance.now();
  for (let pass = 0; pass < PASSES; pass++) await cutAll(sources);
  const ms = (performance.now() - start) / (PASSES * CAPTURES);
  const rss = Deno.memoryUsage().rss / 2 ** 20;
  const peak = Number(/VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"))?.[1]) /
    1024;
  console.log(
    `${ms.toFixed(2)} ms a capture, resident ${rss.toFixed(0)} MB, peak ${peak.toFixed(0)} MB`,
  );
}
