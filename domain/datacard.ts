/**
 * The data card of an export: a Markdown page that says what the file is and how it was made,
 * so that a reader of the file years later needs nothing else — the request and its filters in
 * words, the records, size and checksum, the settings and the source-data version that shaped
 * the bytes, the citation, and what each column (CSV, Parquet), member file (archives) or
 * section (JSON) means. The meanings are the format's declared `contents` (registry), the one
 * definition docs/formats.md is generated from too. Served by `GET /api/v2/exports/<id>/datacard/`.
 * Source of the shape: Gebru et al., "Datasheets for Datasets" (2021), and Frictionless Table
 * Schema descriptions.
 */
import type { ContentEntry } from "../registry/types.ts";

/** Everything a data card states; plain values, so that it is rendered the same anywhere. */
export interface DataCardInput {
  /** Null outside an export (a format test's archive). */
  exportId: number | null;
  projectId: number;
  projectName: string;
  ownerName: string | null;
  format: { key: string; label: string; description: string; extension: string; revision: number };
  /** `filters_display` of the export: one `{label}` entry per filter set. */
  filtersDisplay: Record<string, unknown>;
  /** The chosen columns (`columns` option); null: every column. */
  columns: readonly string[] | null;
  excelCompatible: boolean;
  /**
   * The request's other format options (`split`, `per_taxon_limit`, `jpeg_quality`, …: all but
   * `columns` and `excel_compatible`, which have lines of their own), as requested; undefined in
   * an archive's own copy, which states the request without them.
   */
  formatOptions?: Record<string, unknown>;
  requestedBy: string | null;
  createdAt: Date | null;
  /** Null in the archive's copy, written before the export ends. */
  finishedAt: Date | null;
  recordCount: number;
  /**
   * Records left out because their image could not be fetched or read (`skipped_count`; image
   * formats, listed in the archive's `skipped.csv`); undefined or null where none can be.
   */
  skippedCount?: number | null;
  /** Null for the copy inside an archive, which cannot state its own size and checksum. */
  file: { name: string; size: number; sizeDisplay: string; checksum: string | null } | null;
  /**
   * The file's retention as the served card states it (docs/retention.md): until when a SUCCESS
   * export's file is kept (`expiresAt` null: with no end), or since when an EXPIRED export's
   * file is deleted; undefined in an archive's copy, written before the export ends.
   */
  retention?: { status: "SUCCESS" | "EXPIRED"; expiresAt: Date | null };
  settings: { timeZone: string; mediaUrl: string; platformUrl: string };
  /**
   * Whether the export's recorded settings key equals the key of `settings` (true), differs
   * (false: the file was written under other settings), or was not recorded (null).
   */
  settingsMatch: boolean | null;
  settingsKey: string | null;
  /**
   * With `settingsMatch` false: each setting whose value the file was written under differs from
   * `settings`' now (registry/settings_key.ts `settingsDifferences`); null or undefined when the
   * values were not recorded (exports older than their recording), only the key.
   */
  settingsDifferences?: readonly { name: string; then: unknown; now: unknown }[] | null;
  /** Undefined in the archive's copy: recorded with the snapshot, stated by the served card. */
  sourceVersion: number | string | null | undefined;
  globalSourceVersion: number | string | null | undefined;
  citation: string | null;
  /** The format's declared contents, already narrowed to the chosen columns. */
  contents: readonly ContentEntry[];
  /** How the contents are named: CSV and Parquet columns, archive members, JSON members. */
  contentsKind: "columns" | "members" | "sections";
}

/**
 * `text` without controls (C0 and DEL) and bidirectional formatting characters (U+200E/F,
 * U+202A–U+202E, U+2066–U+2069): a card and a citation never carry them, as object keys and
 * file names already leave them out (a name cannot reorder what follows it).
 */
export function withoutInvisible(text: string): string {
  let shown = "";
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    const invisible = c < 0x20 || c === 0x7f || c === 0x200e || c === 0x200f ||
      (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
    if (!invisible) shown += ch;
  }
  return shown;
}

/** One line of Markdown inline code; a backtick inside is doubled around with spaces. */
function code(text: string): string {
  const shown = withoutInvisible(text);
  return shown.includes("`") ? `\`\` ${shown} \`\`` : `\`${shown}\``;
}

/**
 * User text (project, owner, station names …) on one line and inert: line breaks and tabs become
 * spaces, invisible characters go, and Markdown's and HTML's metacharacters are backslash-escaped
 * (CommonMark §2.4), so a name can make no link, image, heading, emphasis or tag.
 */
function line(text: string): string {
  return withoutInvisible(text.replace(/[\r\n\t\u2028\u2029]+/g, " ")).trim()
    .replace(/[\\`*_[\]<>()#|!~&]/g, "\\$&");
}

/**
 * Text the formats declare (descriptions, labels, units): on one line, without invisible
 * characters, and written as Markdown on purpose (`` `skipped.csv` `` is code): it is this
 * code's own text, never user input, so it is not escaped as {@link line} escapes names.
 */
function declared(text: string): string {
  return withoutInvisible(text.replace(/[\r\n\t\u2028\u2029]+/g, " ")).trim();
}

/** A recorded setting's value as the card shows it: inline code of its JSON (text unquoted). */
function settingValue(value: unknown): string {
  if (value === undefined) return "not set";
  return code(typeof value === "string" ? value : JSON.stringify(value));
}

/** The labels of `filters_display`, in its order; "none" when no filter is set. */
function filterLines(display: Record<string, unknown>): string[] {
  const labels = Object.entries(display).map(([key, entry]) => {
    const label = entry && typeof entry === "object" && "label" in entry
      ? String((entry as { label: unknown }).label)
      : JSON.stringify(entry);
    return `- ${line(label)} (${code(key)})`;
  });
  return labels.length > 0 ? labels : ["- none: every record the format holds"];
}

/**
 * The request's format options, one `` `key`: value `` each (values as JSON), in key order; no
 * line when there are none or they are not stated (an archive's copy).
 */
function optionLines(options: Record<string, unknown> | undefined): string[] {
  const entries = Object.entries(options ?? {}).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
  if (entries.length === 0) return [];
  return [
    `- Options: ${
      entries.map(([key, value]) => `${code(key)}: ${line(JSON.stringify(value))}`).join(", ")
    }.`,
  ];
}

/**
 * The `- Retention: …` line of a served card: the file kept until `expires_at` (and how to keep
 * it longer), kept with no end, or deleted when the retention ended (and how to export the same
 * request again); none in an archive's copy.
 */
function retentionLines(input: DataCardInput): string[] {
  const retention = input.retention;
  if (!retention) return [];
  const at = retention.expiresAt?.toISOString();
  const route = (action: string): string =>
    input.exportId === null ? action : code(`POST /api/v2/exports/${input.exportId}/${action}/`);
  if (retention.status === "EXPIRED") {
    return [
      `- Retention: ended${at ? ` ${at}` : ""}; the file was deleted then (the export is ` +
      `EXPIRED: the figures above describe the file it was). ${route("rerun")} exports the ` +
      "same request again.",
    ];
  }
  if (!at) return ["- Retention: none; the file is kept with no end date."];
  return [
    `- Retention: the file is kept until ${at}, then deleted; ${route("extend")} keeps it ` +
    "longer.",
  ];
}

/** One content line: `` - `name` (unit): description `` and, for a table member, its header. */
function contentLine(entry: ContentEntry): string {
  const unit = entry.unit ? ` (${declared(entry.unit)})` : "";
  const header = entry.columns ? ` Columns: ${entry.columns.map(code).join(", ")}.` : "";
  return `- ${code(entry.name)}${unit}: ${declared(entry.description)}.${header}`;
}

/**
 * The request's line about what the file holds: the chosen columns of a table format (every
 * column when none were chosen); for an archive or a JSON document, which choose no columns,
 * the member files or members it holds, by name (described at the end of the card).
 */
function holdsLine(input: DataCardInput): string {
  if (input.contentsKind === "columns" || input.columns) {
    return `- Columns: ${input.columns ? input.columns.map(code).join(", ") : "every column"}.`;
  }
  const names = input.contents.map((entry) => code(entry.name)).join(", ");
  return input.contentsKind === "members"
    ? `- Holds the member files ${names} (below).`
    : `- Holds the members ${names} (below).`;
}

/**
 * The Markdown of the card, ending with a newline. Sections: title, citation, request, file,
 * settings, source data, contents. Sizes and counts are written `19,883` (en-US).
 */
export function renderDataCard(input: DataCardInput): string {
  const n = (value: number): string => value.toLocaleString("en-US");
  const owner = input.ownerName ? ` (owner ${line(input.ownerName)})` : "";
  const heading = {
    columns: "Columns, in file order",
    members: "Member files, in archive order",
    sections: "Members, in file order",
  }[input.contentsKind];
  const out = [
    `# Data card: ${line(input.format.label)} export${
      input.exportId === null ? "" : ` ${input.exportId}`
    }`,
    "",
    `Project "${line(input.projectName)}"${owner}, id ${input.projectId}.`,
    "",
    "## Citation",
    "",
    input.citation ?? "None yet: the export has not succeeded.",
    "",
    "## Request",
    "",
    `- Format: ${code(input.format.key)}, ${declared(input.format.label)}: ` +
    `${declared(input.format.description)}.`,
    `- Requested by ${input.requestedBy ? line(input.requestedBy) : "an unknown user"} at ` +
    `${input.createdAt?.toISOString() ?? "—"}; finished at ${
      input.finishedAt?.toISOString() ?? "—"
    }.`,
    holdsLine(input),
    ...(input.format.extension === "csv"
      ? [`- Byte order mark (excel_compatible): ${input.excelCompatible ? "yes" : "no"}.`]
      : []),
    ...optionLines(input.formatOptions),
    "- Filters:",
    ...filterLines(input.filtersDisplay).map((l) => `  ${l}`),
    "",
    "## The file",
    "",
    `- Records: ${n(input.recordCount)}.`,
    ...(input.skippedCount
      ? [
        `- Left out: ${n(input.skippedCount)} (their image could not be fetched or read; each ` +
        "with its reason in the archive's `skipped.csv`).",
      ]
      : []),
    ...(input.file
      ? [
        `- File name: ${code(input.file.name)}.`,
        `- Size: ${n(input.file.size)} bytes (${input.file.sizeDisplay}).`,
        `- Checksum: ${input.file.checksum ? code(input.file.checksum) : "none"}.`,
      ]
      : ["- Size and checksum: in the export object (a file cannot state its own)."]),
    ...retentionLines(input),
    "",
    // the values are this deployment's now; when the file's key differs, the settings it was
    // written under are named where recorded (exports since `data_exports.settings`)
    ...(input.settingsMatch === false
      ? [
        "## Settings: this deployment's, not the file's",
        "",
        ...(input.settingsDifferences && input.settingsDifferences.length > 0
          ? [
            "The file was written under other settings than these (its settings key differs): " +
            "the settings that differ, as written and now:",
            "",
            ...input.settingsDifferences.map(({ name, then, now }) =>
              // the allowlist is the deployment's, not the reader's: named, never listed
              name === "SOURCE_IMAGE_HOSTS"
                ? `- ${code(name)}: changed since the file was written (the hosts images may ` +
                  "be fetched from; not listed here)."
                : `- ${code(name)}: ${settingValue(then)} when written, ${settingValue(now)} now.`
            ),
            "",
            "An identical request exports again under these.",
          ]
          : [
            "The file was written under other settings than these (its settings key differs); " +
            "the values it was written under are not recorded, only their key. An identical " +
            "request exports again under these.",
          ]),
      ]
      : ["## Settings that shaped the file"]),
    "",
    `- TIME_ZONE: ${code(input.settings.timeZone)} (local times of stations without a zone).`,
    `- MEDIA_URL: ${code(input.settings.mediaUrl)} (crop URLs).`,
    `- PLATFORM_URL: ${code(input.settings.platformUrl)} (links to the platform).`,
    `- Format revision: ${input.format.revision}.`,
    `- Settings key: ${input.settingsKey ? code(input.settingsKey) : "not recorded"}${
      input.settingsMatch === null
        ? ""
        : input.settingsMatch
        ? " (the settings above)"
        : " (not the key of the settings above)"
    }.`,
    "",
    "## Source data version",
    "",
    input.sourceVersion === undefined
      ? "- Stated by the served card (`GET /api/v2/exports/<id>/datacard/`): the versions are " +
        "recorded with the snapshot the file is read in."
      : `- Project data version: ${input.sourceVersion ?? "not recorded"}; global data ` +
        `version (taxa, algorithms, users): ${input.globalSourceVersion ?? "not recorded"}. ` +
        "A later export of the same request reads the same data exactly when both are unchanged.",
    "",
    `## ${heading}`,
    "",
    ...input.contents.map(contentLine),
    "",
  ];
  return out.join("\n");
}
