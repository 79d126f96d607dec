import { ApplicationFailure } from "@temporalio/common";

/** The export row is gone (deleted while running): nothing to retry. */
export function exportNotFound(exportId: number): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`export does not exist: ${exportId}`, "ExportNotFound");
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
