/** The export object the API returns (compatible with the platform's `/api/v2/exports/`). */
import type { Config } from "../config/mod.ts";
import {
  exportFilters,
  exportOptions,
  type ExportRow,
  formatOptions,
  type ProgressStage,
  STAGES,
} from "../db/exports.ts";
import { boundedFileName } from "../storage/key_bounds.ts";
import type { ObjectStorage } from "../storage/types.ts";
import type { ExportAction } from "../domain/permissions.ts";
import type { ExportJson } from "./schemas.ts";
import { exportCitation, exportDownloadUrl } from "../domain/citation.ts";
import { getExporter } from "../registry/mod.ts";
import {
  MAX_DISPLAY_CHARS,
  MAX_MESSAGE_CHARS,
  moreMarker,
  truncateDisplay,
  truncateList,
  truncateText,
} from "../domain/echo.ts";
import { formatFileSize } from "../domain/file_size.ts";

/** A person's name for display, cut to `MAX_DISPLAY_CHARS`; null stays null. */
export function displayName(name: string | null): string | null {
  return name === null ? null : truncateText(name, MAX_DISPLAY_CHARS);
}

/**
 * Messages (a job's errors) for a response: at most `MAX_ECHO_ITEMS`, then `… and N more`,
 * each cut to `MAX_MESSAGE_CHARS` (domain/echo.ts).
 */
export function truncateMessages(messages: readonly string[]): string[] {
  const shown = truncateList(messages);
  const items = shown.items.map((message) => truncateText(message, MAX_MESSAGE_CHARS));
  return shown.omitted > 0 ? [...items, moreMarker(shown.omitted)] : items;
}

/** The size every read shows (`file_size_display`; domain/file_size.ts). */
export { formatFileSize };

/**
 * The file name a download is saved under: the key's last segment, which new keys already bound
 * (`exportFileKey`); one of an older key is made safe and cut to 255 bytes of UTF-8 (POSIX
 * NAME_MAX) with its `_export-<id>.<ext>` kept, so the Content-Disposition names a file any
 * filesystem can create.
 */
export function downloadFilename(row: Pick<ExportRow, "file_key">): string | undefined {
  const name = row.file_key?.split("/").pop();
  return name === undefined ? undefined : boundedFileName(name);
}

/**
 * The URL of `key` under a public base URL: each path segment percent-encoded (RFC 3986 §2.1,
 * §3.3), so a key with spaces, `#`, `?`, `%` or non-ASCII characters names the object itself.
 */
export function publicFileUrl(base: string, key: string): string {
  const path = key.split("/").map((segment) => encodeURIComponent(segment.toWellFormed()))
    .join("/");
  return `${base.endsWith("/") ? base : `${base}/`}${path}`;
}

/**
 * Seconds a signed URL of an export's file stays valid: `DOWNLOAD_URL_EXPIRY_SECONDS`, but never
 * past the export's `expires_at` (its file is deleted then: a URL must not promise more), and at
 * least 1 (an export past its expiry that housekeeping has not reached yet still has its file).
 */
export function signedUrlSeconds(
  configuredSeconds: number,
  expiresAt: Date | null,
  now: Date = new Date(),
): number {
  if (expiresAt === null) return configuredSeconds;
  const left = Math.floor((expiresAt.getTime() - now.getTime()) / 1000);
  return Math.max(1, Math.min(configuredSeconds, left));
}

/**
 * Where the export's file can be fetched: `PUBLIC_FILES_BASE_URL` + key in public mode (each
 * key segment percent-encoded: a slug's spaces, `?`, `#` or `%` stay part of the path), else a
 * short-lived signed URL (presigned for S3), valid until {@link signedUrlSeconds}.
 */
export async function exportFileUrl(
  row: Pick<ExportRow, "file_key" | "id" | "project_slug" | "expires_at">,
  options: { storage: ObjectStorage; config: Config },
): Promise<string> {
  const key = row.file_key!;
  const base = options.config.publicFilesBaseUrl;
  if (base) return publicFileUrl(base, key);
  return await options.storage.downloadUrl(key, {
    expiresInSeconds: signedUrlSeconds(options.config.downloadUrlExpirySeconds, row.expires_at),
    filename: downloadFilename(row),
  });
}

/** The export's stable download route, `<PUBLIC_BASE_URL>/api/v2/exports/<id>/download/`. */
export function downloadRoute(row: Pick<ExportRow, "id">, config: Config): string {
  return exportDownloadUrl(config.publicBaseUrl, row.id);
}

/**
 * The export's citation (`domain/citation.ts`) once it succeeded (kept when it EXPIRED: it
 * still names what was exported); null before.
 */
export function citationOf(row: ExportRow, config: Config): string | null {
  if (!["SUCCESS", "EXPIRED"].includes(row.status) || !row.finished_at) return null;
  return exportCitation({
    projectName: row.project_name,
    ownerName: row.project_owner_name,
    formatLabel: getExporter(row.format)?.label ?? row.format,
    formatKey: row.format,
    recordCount: row.record_count,
    finishedAt: row.finished_at,
    downloadUrl: downloadRoute(row, config),
  });
}

/**
 * Serializes one export for `user_permissions` of the caller. `queuePosition`: its place in the
 * admission queue while it waits (db/export_queue.ts `queuePositions`), shown as
 * `queue_position` and as a "waiting for a slot: position N" parameter of its export stage.
 */
export async function serializeExport(
  row: ExportRow,
  options: {
    storage: ObjectStorage;
    config: Config;
    permissions: ExportAction[];
    queuePosition?: number | null;
  },
): Promise<ExportJson> {
  const ready = row.status === "SUCCESS" && row.file_key;
  const fileUrl = ready ? await exportFileUrl(row, options) : null;
  const queuePosition = row.status === "PENDING" ? options.queuePosition ?? null : null;
  return {
    id: row.id,
    user: row.user_id === null ? null : { id: row.user_id, name: displayName(row.user_name) },
    project: row.project_id,
    format: row.format,
    filters: exportFilters(row) as Record<string, unknown>,
    excel_compatible: exportOptions(row).excel_compatible === true,
    columns: exportOptions(row).columns ?? null,
    options: formatOptions(row),
    filters_display: truncateDisplay(row.filters_display ?? {}),
    status: row.status,
    error: row.error === null ? null : truncateText(row.error, MAX_MESSAGE_CHARS),
    error_stage: row.error_stage,
    job: {
      id: row.job_id,
      name: row.job_name,
      status: row.job_status,
      progress: {
        ...row.job_progress,
        stages: queuePosition === null
          ? row.job_progress.stages
          : withWaitingParam(row.job_progress.stages, queuePosition),
        errors: truncateMessages(row.job_progress.errors),
      },
    },
    file_url: fileUrl,
    download_url: ready ? downloadRoute(row, options.config) : null,
    citation: citationOf(row, options.config),
    record_count: row.record_count,
    file_size: row.file_size,
    file_size_display: formatFileSize(row.file_size),
    checksum: row.checksum,
    resumed_count: row.resumed_count,
    skipped_count: row.skipped_count,
    queue_position: queuePosition,
    user_permissions: options.permissions,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    started_at: row.started_at?.toISOString() ?? null,
    finished_at: row.finished_at?.toISOString() ?? null,
    expires_at: ["SUCCESS", "EXPIRED"].includes(row.status)
      ? row.expires_at?.toISOString() ?? null
      : null,
  };
}

/**
 * The stages with a `queue_position` parameter on the export stage ("Waiting for a slot":
 * "waiting for a slot: position N"), for an export that waits (docs/fair-scheduling.md).
 */
function withWaitingParam(stages: ProgressStage[], position: number): ProgressStage[] {
  return stages.map((stage) =>
    stage.key !== STAGES.export.key ? stage : {
      ...stage,
      params: [
        ...stage.params.filter((p) => p.key !== "queue_position"),
        {
          key: "queue_position",
          name: "Waiting for a slot",
          value: `waiting for a slot: position ${position}`,
        },
      ],
    }
  );
}
