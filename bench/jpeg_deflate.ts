/**
 * What deflating a JPEG member again costs and gains (registry/zip.ts `writeEntryData`): for a
 * photograph-like source (`width × height` of random pixels blurred by σ 1.5, JPEG quality 90:
 * the entropy of a photo, not of the flat synthetic captures) and for the flat synthetic
 * captures of the demo and the bench (`db/synthetic_jpeg.ts`), 80 crops of 150 × 180 pixels and
 * 4 whole frames are deflated as the zip writer does (raw deflate, sync flush) at zlib levels 6
 * (the default), 1 and 0 (stored blocks). Prints MB/s of one core and compressed / original
 * size per kind and level. docs/benchmarks.md, "JPEG members stored":
 *
 *     deno run -A bench/jpeg_deflate.ts 1600 1200
 */
import { constants, deflateRawSync } from "node:zlib";
import sharp from "sharp";
import { syntheticJpeg } from "../db/synthetic_jpeg.ts";

const LEVELS = [6, 1, 0];
const PASSES = 5;

/** `width × height` random RGB pixels blurred (σ 1.5) and encoded at quality 90. */
async function photoLikeJpeg(width: number, height: number): Promise<Uint8Array> {
  const pixels = new Uint8Array(width * height * 3);
  for (let at = 0; at < pixels.length; at += 65_536) {
    crypto.getRandomValues(pixels.subarray(at, Math.min(at + 65_536, pixels.length)));
  }
  return await sharp(pixels, { raw: { width, height, channels: 3 } }).blur(1.5)
    .jpeg({ quality: 90 }).toBuffer();
}

/** 80 crops of 150 × 180 pixels and 4 re-encoded frames of `source`, as the formats cut them. */
async function membersOf(
  source: Uint8Array,
  size: { width: number; height: number },
): Promise<{ crops: Uint8Array[]; frames: Uint8Array[] }> {
  const crops: Uint8Array[] = [];
  for (let i = 0; i < 80; i++) {
    const left = (i * 17) % (size.width - 150);
    const top = (i * 13) % (size.height - 180);
    crops.push(
      await sharp(source).extract({ left, top, width: 150, height: 180 }).jpeg({ quality: 90 })
        .toBuffer(),
    );
  }
  const frame = await sharp(source).jpeg({ quality: 90, optimiseCoding: false }).toBuffer();
  return { crops, frames: [frame, frame, frame, frame] };
}

/** MB/s of one core and compressed / original size of `members` deflated at `level`. */
function deflateRate(
  members: readonly Uint8Array[],
  level: number,
): { mbs: number; ratio: number } {
  const total = members.reduce((sum, m) => sum + m.length, 0);
  let out = 0;
  const start = performance.now();
  for (let pass = 0; pass < PASSES; pass++) {
    for (const m of members) {
      out += deflateRawSync(m, { level, finishFlush: constants.Z_SYNC_FLUSH }).length;
    }
  }
  const seconds = (performance.now() - start) / 1000;
  return { mbs: PASSES * total / 1e6 / seconds, ratio: out / (PASSES * total) };
}

if (import.meta.main) {
  const size = { width: Number(Deno.args[0] ?? 1600), height: Number(Deno.args[1] ?? 1200) };
  const sources = {
    "photo-like": await photoLikeJpeg(size.width, size.height),
    "synthetic flat": await syntheticJpeg(size, {
      boxes: [{ box: [200, 200, 500, 600], color: { r: 200, g: 90, b: 40 } }],
    }),
  };
  for (const [name, source] of Object.entries(sources)) {
    const members = await membersOf(source, size);
    for (const [kind, list] of Object.entries(members)) {
      for (const level of LEVELS) {
        const { mbs, ratio } = deflateRate(list, level);
        console.log(
          `${name} ${kind}, level ${level}: ${mbs.toFixed(0)} MB/s, ${
            ratio.toFixed(4)
          } of the size`,
        );
      }
    }
  }
}
