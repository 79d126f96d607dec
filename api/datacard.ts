/**
 * `GET /api/v2/exports/<id>/datacard/`: the export's data card (`domain/datacard.ts`), from its
 * row, its format's declared contents and this deployment's format settings.
 */
import type { Config } from "../config/mod.ts";
import { exportOptions, type ExportRow } from "../db/exports.ts";
import { type DataCardInput, renderDataCard } from "../domain/datacard.ts";
import { exporterFor, getExporter } from "../registry/mod.ts";
import {
  exportSettingsDocument,
  exportSettingsKey,
  settingsDifferences,
} from "../registry/settings_key.ts";
import { citationOf, downloadFilename, formatFileSize } from "./serialize.ts";

/** How a format's contents are named on its card, by its file's extension. */
export function contentsKind(extension: string): DataCardInput["contentsKind"] {
  if (extension === "zip") return "members";
  if (extension === "json" || extension === "ndjson") return "sections";
  return "columns";
}

/**
 * The Markdown data card of a SUCCESS (or EXPIRED) export; undefined when its format is no
 * longer registered. The settings listed are this deployment's; the card says whether the
 * settings key recorded by the worker that wrote the file is theirs and, when not, names the
 * recorded settings that differ.
 */
export async function exportDataCard(row: ExportRow, config: Config): Promise<string | undefined> {
  const found = getExporter(row.format);
  if (!found) return undefined;
  const options = exportOptions(row);
  const exporter = exporterFor(found, options);
  const registered = found.withOptions?.(options) ?? found;
  const settingsKey = await exportSettingsKey(registered, config.formats);
  const name = row.file_key ? downloadFilename(row) ?? null : null;
  return renderDataCard({
    exportId: row.id,
    projectId: row.project_id,
    projectName: row.project_name,
    ownerName: row.project_owner_name,
    format: {
      key: registered.key,
      label: registered.label,
      description: registered.description,
      extension: registered.extension,
      revision: registered.revision ?? 1,
    },
    filtersDisplay: row.filters_display ?? {},
    columns: options.columns ?? null,
    excelCompatible: options.excel_compatible === true,
    formatOptions: Object.fromEntries(
      Object.entries(options).filter(([key]) => key !== "columns" && key !== "excel_compatible"),
    ),
    requestedBy: row.user_name || row.user_email,
    createdAt: row.created_at,
    finishedAt: row.finished_at,
    recordCount: row.record_count,
    skippedCount: row.skipped_count,
    file: {
      name: name ?? `${row.project_slug}_export-${row.id}.${registered.extension}`,
      size: row.file_size,
      sizeDisplay: formatFileSize(row.file_size),
      checksum: row.checksum,
    },
    retention: {
      status: row.status === "EXPIRED" ? "EXPIRED" : "SUCCESS",
      expiresAt: row.expires_at,
    },
    settings: config.formats,
    settingsMatch: row.settings_key === null ? null : row.settings_key === settingsKey,
    settingsKey: row.settings_key,
    settingsDifferences: row.settings
      ? settingsDifferences(row.settings, exportSettingsDocument(registered, config.formats))
      : null,
    sourceVersion: row.source_version,
    globalSourceVersion: row.global_source_version,
    citation: citationOf(row, config),
    contents: exporter.contents ?? [],
    contentsKind: contentsKind(registered.extension),
  });
}
