/**
 * The custom search attributes of export workflows (issue 14), so that operators can filter in
 * the Temporal UI and CLI: `ExportFormat = "dwca" AND ExportStatus = "FAILURE"`. Plain
 * `SearchAttributeKey` objects (name, type) without imports, usable by workflow code, the API
 * (start options) and `deno task cli temporal-setup` (registration).
 */

/** `data_exports.id` (Int). */
export const EXPORT_ID = { name: "ExportId", type: "INT" } as const;
/** The export's project id (Int). */
export const PROJECT_ID = { name: "ProjectId", type: "INT" } as const;
/** The format key, e.g. `dwca` (Keyword). */
export const EXPORT_FORMAT = { name: "ExportFormat", type: "KEYWORD" } as const;
/**
 * The export's status (Keyword), one of {@link EXPORT_STATUS_VALUES}: PENDING when started,
 * then STARTED, SUCCESS, FAILURE or REVOKED, or DELETED when its row vanished mid-export; kept
 * current by the workflow while it runs.
 */
export const EXPORT_STATUS = { name: "ExportStatus", type: "KEYWORD" } as const;

/**
 * Every `ExportStatus` value. EXPIRED (the file deleted when its retention ended, GBIF download
 * `eraseAfter`, docs/retention.md) is a status of the export row: the export's workflow has
 * closed long before, and Temporal cannot change a closed execution's search attributes, so its
 * `ExportStatus` stays SUCCESS; the housekeeping run that expired it upserts `ExportStatus`
 * EXPIRED on itself ({@link EXPIRED_STATUS}), and the API lists them with `?status=EXPIRED`.
 */
export const EXPORT_STATUS_VALUES = [
  "PENDING",
  "STARTED",
  "SUCCESS",
  "FAILURE",
  "REVOKED",
  "EXPIRED",
  "DELETED",
] as const;

/** A value of the `ExportStatus` search attribute. */
export type ExportStatusValue = (typeof EXPORT_STATUS_VALUES)[number];

/** The `ExportStatus` of a housekeeping run that expired at least one export. */
export const EXPIRED_STATUS: ExportStatusValue = "EXPIRED";
/** The requesting user's e-mail address (Keyword). */
export const REQUESTED_BY = { name: "RequestedBy", type: "KEYWORD" } as const;

/** Every export search attribute, for registration. */
export const EXPORT_SEARCH_ATTRIBUTES = [
  EXPORT_ID,
  PROJECT_ID,
  EXPORT_FORMAT,
  EXPORT_STATUS,
  REQUESTED_BY,
] as const;

/** The `temporal server start-dev --search-attribute` values: `ExportId=Int`, …. */
export function devServerSearchAttributeArgs(): string[] {
  const names = { INT: "Int", KEYWORD: "Keyword" } as const;
  return EXPORT_SEARCH_ATTRIBUTES.flatMap((key) => [
    "--search-attribute",
    `${key.name}=${names[key.type]}`,
  ]);
}

/**
 * The `RequestedBy` value of an export: its user's e-mail address (`user <id>` when unknown,
 * `nobody` when the user was deleted), at most {@link MAX_REQUESTED_BY} characters.
 */
export function requestedBy(
  export_: { user_id: number | null; user_email: string | null },
): string {
  const name = export_.user_email ??
    (export_.user_id === null ? "nobody" : `user ${export_.user_id}`);
  // an address is at most 254 characters (RFC 5321 §4.5.3.1.3); a longer stored value is cut,
  // so that it never exceeds Temporal's search attribute size limit and fails the start
  return name.length > MAX_REQUESTED_BY
    ? `${name.slice(0, MAX_REQUESTED_BY - 1).toWellFormed()}…`
    : name;
}

/** The longest `RequestedBy` value, in UTF-16 code units: an e-mail address's maximum. */
export const MAX_REQUESTED_BY = 254;
