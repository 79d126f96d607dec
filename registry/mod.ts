/**
 * The registry: format key → exporter. Adding a format = one file in `registry/formats/` and
 * one line in the list below; the API, request validation and the workflow read it from here.
 */
import { camtrapDp } from "./formats/camtrap_dp.ts";
import { capturesCsv } from "./formats/captures_csv.ts";
import { cropsByTaxon } from "./formats/crops_by_taxon.ts";
import { detectionsCoco } from "./formats/detections_coco.ts";
import { deploymentsCsv } from "./formats/deployments_csv.ts";
import { detectionsCsv } from "./formats/detections_csv.ts";
import { dwca } from "./formats/dwca.ts";
import { occurrencesApiJson } from "./formats/occurrences_api_json.ts";
import { occurrencesNdjson } from "./formats/occurrences_ndjson.ts";
import { occurrencesParquet } from "./formats/occurrences_parquet.ts";
import { occurrencesSimpleCsv } from "./formats/occurrences_simple_csv.ts";
import { sessionsCsv } from "./formats/sessions_csv.ts";
import { taxaListCsv } from "./formats/taxa_list_csv.ts";
import { taxonCountsCsv } from "./formats/taxon_counts_csv.ts";
import { tracksCsv } from "./formats/tracks_csv.ts";
import { yoloDataset } from "./formats/yolo_dataset.ts";
import { projectColumns } from "./columns.ts";
import type { Exporter, ExportOptions, FilterKey, OptionKey } from "./types.ts";

export type { Exporter } from "./types.ts";

/** Every registered exporter, by key. */
export const exporters: Readonly<Record<string, Exporter>> = indexExporters([
  occurrencesApiJson,
  occurrencesSimpleCsv,
  occurrencesNdjson,
  detectionsCsv,
  taxaListCsv,
  dwca,
  tracksCsv,
  detectionsCoco,
  sessionsCsv,
  capturesCsv,
  taxonCountsCsv,
  occurrencesParquet,
  camtrapDp,
  deploymentsCsv,
  cropsByTaxon,
  yoloDataset,
]);

/** Indexes exporters by key; two formats under one key is a programming error. */
export function indexExporters(list: readonly Exporter[]): Readonly<Record<string, Exporter>> {
  const byKey: Record<string, Exporter> = {};
  for (const exporter of list) {
    if (Object.hasOwn(byKey, exporter.key)) {
      throw new Error(`export format registered twice: ${exporter.key}`);
    }
    byKey[exporter.key] = exporter;
  }
  return Object.freeze(byKey);
}

/** A format as `GET /api/v2/exports/formats/` lists it. */
export interface FormatDescription {
  key: string;
  label: string;
  description: string;
  extension: string;
  content_type: string;
  accepted_filters: FilterKey[];
  /** Export options the format accepts (`excel_compatible`, `columns`: CSV; `split`, …: image formats). */
  accepted_options: OptionKey[];
  /** Formats accepting `columns`: their columns in file order. */
  columns?: string[];
}

/** The exporter registered under `key`; undefined for anything else (even `"constructor"`). */
export function getExporter(key: string): Exporter | undefined {
  return Object.hasOwn(exporters, key) ? exporters[key] : undefined;
}

/**
 * `exporter` as an export's `options` make it: the variant its options choose (`withOptions`:
 * another container, hence extension and content type), over the chosen `columns` when set.
 */
export function exporterFor(exporter: Exporter, options: ExportOptions = {}): Exporter {
  return projectColumns(exporter.withOptions?.(options) ?? exporter, options.columns);
}

/** The registered format keys, sorted. */
export function supportedFormats(): string[] {
  return Object.keys(exporters).sort();
}

/** Metadata of every registered format, sorted by key, for the formats endpoint. */
export function describeFormats(): FormatDescription[] {
  return supportedFormats().map((key) => {
    const exporter = exporters[key];
    return {
      key: exporter.key,
      label: exporter.label,
      description: exporter.description,
      extension: exporter.extension,
      content_type: exporter.contentType,
      accepted_filters: [...exporter.acceptedFilters],
      accepted_options: [...(exporter.acceptedOptions ?? [])],
      ...(exporter.columns && exporter.withColumns ? { columns: [...exporter.columns] } : {}),
    };
  });
}
