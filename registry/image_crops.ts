/**
 * Crops cut from a source image with sharp (libvips): the image decoded once, each crop an
 * `extract` of the decoded pixels encoded as JPEG. A crop's region is its box (source pixels,
 * `[x1, y1, x2, y2]`) rounded outwards to whole pixels, widened by `padding` × the box's width
 * and height on each side and clamped to the image; a box not inside the image is refused. A
 * crop may then be downscaled so that its longest side is at most `maxSide` ({@link scaledSize}).
 */
import type sharpModule from "sharp";

/**
 * sharp, loaded on first use: libvips and its bindings add ~30 MB to a process's resident set
 * (measured with `deno run`: 38 → 70 MB), which a worker that exports no image never pays.
 */
function loadSharp(): Promise<typeof sharpModule> {
  sharpLoading ??= import("sharp").then((module) => {
    module.default.cache(false);
    return module.default;
  });
  return sharpLoading;
}
let sharpLoading: Promise<typeof sharpModule> | undefined;

// loadSharp turns libvips' operation cache off (by default up to 100 operations and 50 MB): it
// would keep the input of recent pipelines alive: a crop's input is its whole decoded capture (36 MB at 4000 × 3000), so
// the cache alone could hold several. Every pipeline here runs once: nothing to reuse.

/**
 * Decoded captures held at once by this process ({@link withDecodedImage}): at most two, one per
 * core of the smallest worker, and a second only while both fit in {@link DECODE_BUDGET_BYTES}.
 * Fetches go on meanwhile (`IMAGE_FETCH_CONCURRENCY`, 8 by default) but only these captures are
 * decoded pixels at a time, so a worker's memory stays flat whatever the source size (eight
 * 4000 × 3000 captures decoded at once were 288 MB of pixels).
 */
export const DECODE_SLOTS = 2;

/**
 * Bytes of decoded pixels (width × height × channels) this process holds at once by default:
 * 80 MiB, two 4000 × 3000 captures (36 MB each; 41 MB of resident memory with libvips'
 * buffers, measured). A capture larger than the budget is decoded alone. Set per process with
 * {@link setDecodeBudget} (`IMAGE_DECODE_BUDGET_MB`): 40 decodes 4000 × 3000 captures one at a
 * time, ~30 MB less at peak and about half the crop rate on two cores (docs/benchmarks.md
 * "Image datasets").
 */
export const DECODE_BUDGET_BYTES = 80 * 1024 * 1024;

/**
 * A weighted limiter: `run(weight, work)` starts `work` when fewer than `slots` works are
 * running and the running weights plus `weight` are at most `capacity`, or when none is running
 * (a work heavier than `capacity` runs alone); first come, first served (a heavy work at the head
 * waits, and holds back the lighter ones behind it, rather than starve). Its promise settles as
 * `work`'s does.
 */
export function budgetLimiter(
  options: { slots: number; capacity: number },
): <R>(weight: number, work: () => Promise<R>) => Promise<R> {
  let running = 0;
  let used = 0;
  const waiting: { weight: number; start: () => void }[] = [];
  const fits = (weight: number) =>
    running === 0 || (running < options.slots && used + weight <= options.capacity);
  const admit = () => {
    while (waiting.length > 0 && fits(waiting[0].weight)) {
      const next = waiting.shift()!;
      running++;
      used += next.weight;
      next.start();
    }
  };
  return async (weight, work) => {
    if (waiting.length === 0 && fits(weight)) {
      running++;
      used += weight;
    } else {
      await new Promise<void>((start) => {
        waiting.push({ weight, start });
      });
    }
    try {
      return await work();
    } finally {
      running--;
      used -= weight;
      admit();
    }
  };
}

/**
 * A limiter: `run(work)` starts `work` when fewer than `slots` of its works are running, else
 * when one ends (first come, first served); its promise settles as `work`'s does.
 */
export function limiter(slots: number): <R>(work: () => Promise<R>) => Promise<R> {
  const run = budgetLimiter({ slots, capacity: Infinity });
  return (work) => run(0, work);
}

let decodeSlot = budgetLimiter({ slots: DECODE_SLOTS, capacity: DECODE_BUDGET_BYTES });

/**
 * Sets this process's decode budget in bytes ({@link DECODE_BUDGET_BYTES}); a worker calls it
 * once at start, before any export runs. Throws `RangeError` unless `bytes` is positive.
 */
export function setDecodeBudget(bytes: number): void {
  if (!(bytes > 0)) throw new RangeError(`decode budget must be positive, not ${bytes}`);
  decodeSlot = budgetLimiter({ slots: DECODE_SLOTS, capacity: bytes });
}

/**
 * The bytes `bytes` decode to (width × height × channels, alpha dropped), read from the image's
 * header without decoding it; 0 when the header cannot be read (the decode then says why).
 */
async function decodedSize(bytes: Uint8Array): Promise<number> {
  const sharp = await loadSharp();
  try {
    const { width, height, channels } = await sharp(bytes).metadata();
    return width * height * Math.min(3, channels);
  } catch {
    return 0;
  }
}

/**
 * `work` over `bytes` decoded ({@link decodeImage}), within this process's decode slots and
 * budget ({@link DECODE_SLOTS}, {@link DECODE_BUDGET_BYTES}): the decoded pixels live only until
 * `work` settles.
 */
export async function withDecodedImage<R>(
  bytes: Uint8Array,
  work: (decoded: DecodeResult) => Promise<R>,
): Promise<R> {
  return await decodeSlot(await decodedSize(bytes), async () => {
    const decoded = await decodeImage(bytes);
    try {
      return await work(decoded);
    } finally {
      if (decoded.ok) releaseBytes(decoded.image.data);
    }
  });
}

/**
 * Frees the pixels of `data` now instead of at the next garbage collection, which V8 runs by
 * the size of its heap, not by the native memory a buffer holds: decoded captures would pile up
 * (eight 36 MB ones measured with two decoded at a time). Detaching the buffer (transferring it
 * to an empty one) drops its native memory at once; only for a buffer `data` spans whole, once
 * nothing reads it any more (every pipeline on it has ended). Also for a fetched source once it
 * is decoded: held across the fetch and the wait for a slot, it outlives V8's young generation.
 */
export function releaseBytes(data: Uint8Array): void {
  const buffer = data.buffer;
  if (!(buffer instanceof ArrayBuffer)) return;
  if (data.byteOffset !== 0 || buffer.byteLength !== data.byteLength) return;
  try {
    buffer.transfer(0);
  } catch {
    // not detachable: left to the garbage collector
  }
}

/** A decoded image: its pixels, interleaved, `channels` bytes each. */
export interface DecodedImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

/** A region of an image in whole pixels. */
export interface CropRegion {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** A decoded image, or why there is none. */
export type DecodeResult = { ok: true; image: DecodedImage } | { ok: false; reason: string };

/** `bytes` decoded (alpha dropped), or why they are not an image (`not an image`, `truncated`). */
export async function decodeImage(bytes: Uint8Array): Promise<DecodeResult> {
  const sharp = await loadSharp();
  try {
    const { data, info } = await sharp(bytes, { failOn: "truncated" })
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    return {
      ok: true,
      image: {
        data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
        width: info.width,
        height: info.height,
        channels: info.channels,
      },
    };
  } catch (error) {
    return { ok: false, reason: decodeProblem(error) };
  }
}

/** Why sharp could not read an image: `not an image`, else `truncated or corrupt image`. */
function decodeProblem(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return /unsupported image format|bad seek|Input buffer is empty/i.test(message)
    ? "not an image"
    : "truncated or corrupt image";
}

/** A whole frame re-encoded: its JPEG and the source's decoded size in pixels. */
export interface EncodedFrame {
  jpeg: Uint8Array;
  /** The source image's width and height as decoded (what its boxes are measured in). */
  width: number;
  height: number;
}

/**
 * `bytes` (any format sharp reads) as a JPEG at `quality` (1–100), alpha dropped, downscaled
 * (never enlarged) so that its longest side is at most `maxSide` pixels when given, in one
 * libvips pipeline (no full decoded copy in memory); or why it cannot be (`not an image`,
 * `truncated or corrupt image`). The size returned is the source's, before any downscale.
 * Huffman tables are libjpeg's standard ones, not optimised per image: optimising them holds
 * every DCT coefficient of the frame until the end (77 MB more resident memory for one
 * 4000 × 3000 frame, measured) and took 2.3 × as long, for files ~3.5 % smaller on photographs.
 */
export function encodeFrame(
  bytes: Uint8Array,
  options: { quality: number; maxSide: number | null },
): Promise<{ ok: true; frame: EncodedFrame } | { ok: false; reason: string }> {
  // a frame streams through libvips (no whole decoded copy): a slot, no share of the budget
  return decodeSlot(0, () => encodeFrameNow(bytes, options));
}

async function encodeFrameNow(
  bytes: Uint8Array,
  options: { quality: number; maxSide: number | null },
): Promise<{ ok: true; frame: EncodedFrame } | { ok: false; reason: string }> {
  const sharp = await loadSharp();
  try {
    const source = sharp(bytes, { failOn: "truncated" });
    const { width, height } = await source.metadata();
    const resized = options.maxSide === null ? source : source.resize({
      width: options.maxSide,
      height: options.maxSide,
      fit: "inside",
      withoutEnlargement: true,
    });
    const out = await resized.removeAlpha()
      .jpeg({ quality: options.quality, optimiseCoding: false })
      .toBuffer();
    return {
      ok: true,
      frame: { jpeg: new Uint8Array(out.buffer, out.byteOffset, out.byteLength), width, height },
    };
  } catch (error) {
    return { ok: false, reason: decodeProblem(error) };
  }
}

/** The region of `bbox` in an image of `width` × `height`, or why there is none. */
export function cropRegion(
  bbox: readonly number[],
  padding: number,
  size: { width: number; height: number },
): { ok: true; region: CropRegion } | { ok: false; reason: string } {
  const [x1, y1, x2, y2] = bbox;
  if (!(x2 > x1 && y2 > y1)) return { ok: false, reason: "empty box" };
  if (x1 < 0 || y1 < 0 || x2 > size.width || y2 > size.height) {
    return { ok: false, reason: "box outside the image" };
  }
  const padX = (x2 - x1) * padding;
  const padY = (y2 - y1) * padding;
  const left = Math.max(0, Math.floor(x1 - padX));
  const top = Math.max(0, Math.floor(y1 - padY));
  const right = Math.min(size.width, Math.ceil(x2 + padX));
  const bottom = Math.min(size.height, Math.ceil(y2 + padY));
  return { ok: true, region: { left, top, width: right - left, height: bottom - top } };
}

/**
 * The size of a `width` × `height` crop whose longest side is brought down to `maxSide` pixels:
 * both sides × `maxSide / max(width, height)`, rounded to whole pixels (at least 1); unchanged
 * when the longest side is already at most `maxSide` (never upscaled) or `maxSide` is absent.
 */
export function scaledSize(
  size: { width: number; height: number },
  maxSide?: number,
): { width: number; height: number } {
  const longest = Math.max(size.width, size.height);
  if (maxSide === undefined || longest <= maxSide) {
    return { width: size.width, height: size.height };
  }
  const scale = maxSide / longest;
  return {
    width: Math.max(1, Math.round(size.width * scale)),
    height: Math.max(1, Math.round(size.height * scale)),
  };
}

/**
 * The JPEG of `region` of `image` at `quality` (1–100), chroma subsampled 4:2:0 (sharp's
 * default). With `maxSide`: resized (Lanczos 3) to {@link scaledSize} of the region and encoded
 * 4:4:4, since at a few dozen pixels 4:2:0 smears the colours across a box's edges (a padded
 * 18 × 32 crop: mean absolute difference 9 against the source region, 2 at 4:4:4).
 */
export async function cutCrop(
  image: DecodedImage,
  region: CropRegion,
  quality: number,
  options: { maxSide?: number } = {},
): Promise<Uint8Array> {
  const size = scaledSize(region, options.maxSide);
  const sharp = await loadSharp();
  let pipeline = sharp(image.data, {
    raw: { width: image.width, height: image.height, channels: image.channels },
  }).extract(region);
  if (size.width !== region.width || size.height !== region.height) {
    pipeline = pipeline.resize({ width: size.width, height: size.height, fit: "fill" });
  }
  const out = await pipeline
    .jpeg(options.maxSide === undefined ? { quality } : { quality, chromaSubsampling: "4:4:4" })
    .toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
