/**
 * The citation of an export: one line a user can paste into a paper or a data note, naming
 * the project, its owner, what was exported, how many records, when, and where to fetch it.
 * The shape follows GBIF's download citations ("<publisher> (<year>) Occurrence Download
 * <DOI>"), with the export's download route standing in for a DOI.
 */

import { withoutInvisible } from "./datacard.ts";

/** What a citation names; `finishedAt` is the export's end (its date, UTC, is the export date). */
export interface CitationInput {
  projectName: string;
  /** The project owner's name (or e-mail); null: the owner is unknown. */
  ownerName: string | null;
  /** The format's label, e.g. `Darwin Core Archive`. */
  formatLabel: string;
  formatKey: string;
  recordCount: number;
  finishedAt: Date;
  /** The download route's absolute URL (`<API base>/api/v2/exports/<id>/download/`). */
  downloadUrl: string;
}

/**
 * `Project "Moths of Vermont" (owner Ada Lovelace). Darwin Core Archive export (dwca),
 * 19,883 records, exported 2026-12-05 via ami-exports: https://…/api/v2/exports/7/download/`.
 * Line breaks and tabs in names become spaces, so the citation stays one line.
 */
export function exportCitation(input: CitationInput): string {
  // one line, without controls or bidirectional formatting characters (a name cannot reorder
  // what follows it when pasted)
  const oneLine = (text: string): string =>
    withoutInvisible(text.replace(/[\r\n\t\u2028\u2029]+/g, " ")).trim();
  const owner = input.ownerName ? ` (owner ${oneLine(input.ownerName)})` : "";
  const records = `${input.recordCount.toLocaleString("en-US")} record${
    input.recordCount === 1 ? "" : "s"
  }`;
  return `Project "${oneLine(input.projectName)}"${owner}. ${oneLine(input.formatLabel)} export ` +
    `(${input.formatKey}), ${records}, exported ${input.finishedAt.toISOString().slice(0, 10)} ` +
    `via ami-exports: ${input.downloadUrl}`;
}

/** The export's stable download route under the API's public base URL (`PUBLIC_BASE_URL`). */
export function exportDownloadUrl(publicBaseUrl: string, exportId: number): string {
  return `${publicBaseUrl}/api/v2/exports/${exportId}/download/`;
}
