/**
 * Synthetic captures: a flat background with a filled rectangle at each box, encoded as JPEG by
 * sharp (libvips). The pixels are filled in memory (no per-box overlay encode), so a 1600×844
 * capture takes about 10 ms. The demo's source images (`seed_demo_images.ts`) and the
 * image-format test fixture (`tests/fixtures/crops_project.ts`) both draw with it.
 */
import sharp from "sharp";

/** An 8-bit sRGB colour. */
export interface Rgb {
  r: number;
  g: number;
  b: number;
}

/** A filled rectangle: `box` in pixels `[x1, y1, x2, y2]`, drawn in `color`. */
export interface DrawnBox {
  box: readonly number[];
  color: Rgb;
}

/** What {@link syntheticJpeg} draws. */
export interface SyntheticJpegOptions {
  /** Drawn in order: a later box covers an earlier one where they overlap. */
  boxes: readonly DrawnBox[];
  /** Default a mid grey (128, 128, 128). */
  background?: Rgb;
  /** JPEG quality, 1–100 (default 90). */
  quality?: number;
}

/**
 * The pixel rectangle of `box` (`[x1, y1, x2, y2]`, possibly fractional): its edges rounded
 * outwards (`floor(x1)`…`ceil(x2)`), clamped to the image; empty (width or height 0) when the box
 * lies outside it.
 */
export function drawnRegion(
  box: readonly number[],
  size: { width: number; height: number },
): { left: number; top: number; right: number; bottom: number } {
  const left = Math.min(size.width, Math.max(0, Math.floor(box[0])));
  const top = Math.min(size.height, Math.max(0, Math.floor(box[1])));
  const right = Math.max(left, Math.min(size.width, Math.ceil(box[2])));
  const bottom = Math.max(top, Math.min(size.height, Math.ceil(box[3])));
  return { left, top, right, bottom };
}

/**
 * A `size.width` × `size.height` JPEG (3 channels) of `options.background` with a filled
 * rectangle at each box ({@link drawnRegion}). Throws on a size that is not a positive integer
 * of at most 16,384 pixels a side.
 */
export async function syntheticJpeg(
  size: { width: number; height: number },
  options: SyntheticJpegOptions,
): Promise<Uint8Array> {
  const { width, height } = size;
  for (const side of [width, height]) {
    if (!Number.isInteger(side) || side < 1 || side > 16_384) {
      throw new RangeError(`image side must be an integer from 1 to 16384: ${side}`);
    }
  }
  const pixels = new Uint8Array(width * height * 3);
  const background = options.background ?? { r: 128, g: 128, b: 128 };
  fill(pixels, width, { left: 0, top: 0, right: width, bottom: height }, background);
  for (const { box, color } of options.boxes) {
    fill(pixels, width, drawnRegion(box, size), color);
  }
  const jpeg = await sharp(pixels, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: options.quality ?? 90 })
    .toBuffer();
  return new Uint8Array(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength);
}

/** Paints `region` of an RGB image `width` pixels wide in `color`: one row, then row copies. */
function fill(
  pixels: Uint8Array,
  width: number,
  region: { left: number; top: number; right: number; bottom: number },
  color: Rgb,
): void {
  const { left, top, right, bottom } = region;
  if (right <= left || bottom <= top) return;
  const row = new Uint8Array((right - left) * 3);
  for (let i = 0; i < row.length; i += 3) {
    row[i] = color.r;
    row[i + 1] = color.g;
    row[i + 2] = color.b;
  }
  for (let y = top; y < bottom; y++) pixels.set(row, (y * width + left) * 3);
}

/**
 * A colour per taxon: hues spread by the golden angle over the taxon id (neighbouring ids far
 * apart), saturated and bright, so that each stands out from a dark background; a light grey for
 * `null` (no determination).
 */
export function taxonColor(taxonId: number | null): Rgb {
  if (taxonId === null) return { r: 220, g: 220, b: 220 };
  const hue = (taxonId * 137.508) % 360;
  return hslToRgb(hue, 0.8, 0.55);
}

/** HSL (hue in degrees, saturation and lightness in [0, 1]) as 8-bit RGB. */
function hslToRgb(hue: number, saturation: number, lightness: number): Rgb {
  const c = (1 - Math.abs(2 * lightness - 1)) * saturation;
  const h = hue / 60;
  const x = c * (1 - Math.abs((h % 2) - 1));
  const [r, g, b] = h < 1
    ? [c, x, 0]
    : h < 2
    ? [x, c, 0]
    : h < 3
    ? [0, c, x]
    : h < 4
    ? [0, x, c]
    : h < 5
    ? [x, 0, c]
    : [c, 0, x];
  const m = lightness - c / 2;
  const byte = (v: number): number => Math.round((v + m) * 255);
  return { r: byte(r), g: byte(g), b: byte(b) };
}
