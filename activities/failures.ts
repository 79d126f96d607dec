import { ApplicationFailure } from "@temporalio/common";

/** The export row is gone (deleted while running): nothing to retry. */
export function exportNotFound(exportId: number): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`export does not exist: ${exportId}`, "ExportNotFound");
}

/** The details of an `ExportEnded` failure (its first detail): the export's status now. */
export interface ExportEndedDetails {
  status: string;
}

/**
 * The export is no longer this run's to write (cancelled or failed meanwhile, or made PENDING
 * again by a retry) while this activity ran: it changed nothing, and retrying cannot help.
 * `status` is the export's status now, which may be PENDING or STARTED (a newer run's); it is
 * also the failure's first detail ({@link ExportEndedDetails}), which the workflow reads to end
 * a run whose export was cancelled as the row says (REVOKED: completed, `revoked: true`).
 */
export function exportEnded(exportId: number, status: string): ApplicationFailure {
  const details: ExportEndedDetails = { status };
  return ApplicationFailure.create({
    message: `export ${exportId} is no longer this run's to finish (its status is now ` +
      `${status}): this attempt changed nothing`,
    type: "ExportEnded",
    nonRetryable: true,
    details: [details],
  });
}

/** The format is not in the registry. */
export function unknownFormat(format: string, supported: string[]): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `unknown export format: ${format} (supported: ${supported.join(", ")})`,
    "UnknownFormat",
  );
}

/** The filters cannot be applied (e.g. the capture set was deleted meanwhile). */
export function invalidFilters(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, "InvalidFilters");
}
