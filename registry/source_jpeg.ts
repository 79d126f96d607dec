/**
 * A source image as one JPEG file (a dataset's full frame): fetched within the image-source
 * settings (`registry/image_sources.ts`), decoded whole once (sharp) so that what is not an image
 * or is truncated is left out with its reason; a JPEG is then kept as fetched, byte for byte,
 * and another image type (PNG, WebP, …) re-encoded as JPEG at quality {@link REENCODE_QUALITY}.
 */
import { cutCrop, withDecodedImage } from "./image_crops.ts";
import { fetchSourceImage, type ImageSourceSettings } from "./image_sources.ts";

/** JPEG quality of a source image that was not a JPEG. */
export const REENCODE_QUALITY = 90;

/** True when `bytes` start with a JPEG's start-of-image marker (FF D8 FF). */
function isJpeg(bytes: Uint8Array): boolean {
  return bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

/**
 * The JPEG of the image at `url` with its decoded width and height in pixels, or why it is left
 * out (the reasons of the fetch and decode).
 */
export async function sourceJpeg(
  url: string,
  settings: ImageSourceSettings,
): Promise<
  { ok: true; jpeg: Uint8Array; width: number; height: number } | { ok: false; reason: string }
> {
  const fetched = await fetchSourceImage(url, settings);
  if (!fetched.ok) return fetched;
  // decoded whole (within the process's DECODE_SLOTS and DECODE_BUDGET_BYTES), then dropped
  return await withDecodedImage(fetched.bytes, async (decoded) => {
    if (!decoded.ok) return decoded;
    const { width, height } = decoded.image;
    if (isJpeg(fetched.bytes)) return { ok: true, jpeg: fetched.bytes, width, height };
    const whole = { left: 0, top: 0, width, height };
    return { ok: true, jpeg: await cutCrop(decoded.image, whole, REENCODE_QUALITY), width, height };
  });
}
