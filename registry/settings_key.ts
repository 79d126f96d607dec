/**
 * The reuse key of an export's settings: what, besides the request (project, format, filters,
 * options) and the data, shapes the bytes of its file.
 */
import type { FormatSettings } from "../config/mod.ts";
import type { ExporterInfo } from "./types.ts";

/**
 * `sha256:<hex>` over the format key, its `revision` (1 when absent) and every format setting
 * (`TIME_ZONE`, `MEDIA_URL`, `PLATFORM_URL`; for a format that fetches images,
 * `SOURCE_IMAGE_HOSTS` and `IMAGE_FETCH_MAX_MB`). Two exports of one request and the same data have
 * byte-identical files exactly when their keys are equal: a reused file is one that would be
 * produced again (docs/operations.md, "Rules every read keeps").
 */
export async function exportSettingsKey(
  exporter: Pick<ExporterInfo, "key" | "revision" | "fetchesImages">,
  settings: FormatSettings,
): Promise<string> {
  const images = settings.images;
  const text = JSON.stringify({
    format: exporter.key,
    revision: exporter.revision ?? 1,
    timeZone: settings.timeZone,
    mediaUrl: settings.mediaUrl,
    platformUrl: settings.platformUrl,
    // which images can be fetched decides which crops are written: only for the image formats,
    // so that the keys of every other format stay what they were
    ...(exporter.fetchesImages
      ? { imageHosts: [...(images?.hosts ?? [])].sort(), imageMaxBytes: images?.maxBytes ?? null }
      : {}),
  });
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return `sha256:${
    Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("")
  }`;
}
