/**
 * The reuse key of an export's settings: what, besides the request (project, format, filters,
 * options) and the data, shapes the bytes of its file.
 */
import type { FormatSettings } from "../config/mod.ts";
import type { ExporterInfo } from "./types.ts";

/**
 * The settings that shape the bytes of a file of `exporter` under `settings`, by the names an
 * operator sets them with: `format`, `revision` (1 when absent), `TIME_ZONE`, `MEDIA_URL`,
 * `PLATFORM_URL`; for a format that fetches images also `SOURCE_IMAGE_HOSTS` (sorted) and
 * `IMAGE_FETCH_MAX_MB` (bytes). {@link exportSettingsKey} is its digest; the worker records both
 * (`data_exports.settings`, `settings_key`), so that a data card can name what differs.
 */
export function exportSettingsDocument(
  exporter: Pick<ExporterInfo, "key" | "revision" | "fetchesImages">,
  settings: FormatSettings,
): Record<string, unknown> {
  const images = settings.images;
  return {
    format: exporter.key,
    revision: exporter.revision ?? 1,
    TIME_ZONE: settings.timeZone,
    MEDIA_URL: settings.mediaUrl,
    PLATFORM_URL: settings.platformUrl,
    // which images can be fetched decides which crops are written: only for the image formats,
    // so that the keys of every other format stay what they were
    ...(exporter.fetchesImages
      ? {
        SOURCE_IMAGE_HOSTS: [...(images?.hosts ?? [])].sort(),
        IMAGE_FETCH_MAX_MB: images?.maxBytes ?? null,
      }
      : {}),
  };
}

/**
 * The settings of a document ({@link exportSettingsDocument}) whose values differ from those of
 * `now`, by name, each with both values: `[{name: "TIME_ZONE", then: "UTC", now:
 * "Europe/Paris"}]`; a setting only one of them has is listed with `undefined` on the other side.
 */
export function settingsDifferences(
  then: Record<string, unknown>,
  now: Record<string, unknown>,
): { name: string; then: unknown; now: unknown }[] {
  const names = [...new Set([...Object.keys(now), ...Object.keys(then)])];
  return names
    .filter((name) => JSON.stringify(then[name]) !== JSON.stringify(now[name]))
    .map((name) => ({ name, then: then[name], now: now[name] }));
}

/**
 * `sha256:<hex>` over the format key, its `revision` (1 when absent) and every format setting
 * (`TIME_ZONE`, `MEDIA_URL`, `PLATFORM_URL`; for a format that fetches images,
 * `SOURCE_IMAGE_HOSTS` and `IMAGE_FETCH_MAX_MB`). Two exports of one request and the same data have
 * byte-identical files exactly when their keys are equal: a reused file is one that would be
 * produced again (docs/operations.md, "Rules every read keeps"). The digest's text is the one it
 * always was (its member names predate {@link exportSettingsDocument}'s), so recorded keys stay
 * comparable.
 */
export async function exportSettingsKey(
  exporter: Pick<ExporterInfo, "key" | "revision" | "fetchesImages">,
  settings: FormatSettings,
): Promise<string> {
  const document = exportSettingsDocument(exporter, settings);
  const text = JSON.stringify({
    format: document.format,
    revision: document.revision,
    timeZone: document.TIME_ZONE,
    mediaUrl: document.MEDIA_URL,
    platformUrl: document.PLATFORM_URL,
    ...(exporter.fetchesImages
      ? { imageHosts: document.SOURCE_IMAGE_HOSTS, imageMaxBytes: document.IMAGE_FETCH_MAX_MB }
      : {}),
  });
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return `sha256:${
    Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("")
  }`;
}
