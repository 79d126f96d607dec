/**
 * Crops cut from a source image with sharp (libvips): the image decoded once, each crop an
 * `extract` of the decoded pixels encoded as JPEG. A crop's region is its box (source pixels,
 * `[x1, y1, x2, y2]`) rounded outwards to whole pixels, widened by `padding` × the box's width
 * and height on each side and clamped to the image; a box not inside the image is refused.
 */
import sharp from "sharp";

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

/** `bytes` decoded (alpha dropped), or why they are not an image (`not an image`, `truncated`). */
export async function decodeImage(
  bytes: Uint8Array,
): Promise<{ ok: true; image: DecodedImage } | { ok: false; reason: string }> {
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
    const message = error instanceof Error ? error.message : String(error);
    return {
      ok: false,
      reason: /unsupported image format|bad seek|Input buffer is empty/i.test(message)
        ? "not an image"
        : "truncated or corrupt image",
    };
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

/** The JPEG of `region` of `image` at `quality`. */
export async function cutCrop(
  image: DecodedImage,
  region: CropRegion,
  quality: number,
): Promise<Uint8Array> {
  const out = await sharp(image.data, {
    raw: { width: image.width, height: image.height, channels: image.channels },
  })
    .extract(region)
    .jpeg({ quality })
    .toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
