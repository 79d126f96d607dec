/**
 * Requesting an export: the checks, the creation (or reuse) of its row and the start of its
 * workflow, shared by `POST /api/v2/exports/`, the operator CLI and scheduled exports.
 */
import {
  type CreatedOrReused,
  createOrReuseExport,
  type ExportIdentity,
  exportWorkflowId,
  storedFilters,
} from "../db/exports.ts";
import { checkColumns } from "../registry/columns.ts";
import { exporterFor, getExporter, supportedFormats } from "../registry/mod.ts";
import type { ExportOptions, OptionKey } from "../registry/types.ts";
import { exportSettingsKey } from "../registry/settings_key.ts";
import { StorageUnavailableError } from "../storage/errors.ts";
import type { exportWorkflow } from "../workflows/export_workflow.ts";
import {
  EXPORT_FORMAT,
  EXPORT_ID,
  EXPORT_STATUS,
  PROJECT_ID,
  REQUESTED_BY,
  requestedBy,
} from "../workflows/search_attributes.ts";
import type { CurrentUser } from "../domain/users.ts";
import { validateFilters } from "../domain/filter_validation.ts";
import { checkDestination } from "../domain/webhook_url.ts";
import { newWebhookSecret } from "../domain/webhook_signature.ts";
import { setExportNotify } from "../db/webhooks.ts";
import { failIfWorkflowLost, LOST_EXPORT_GRACE_SECONDS } from "../activities/lost_exports.ts";
import { can, canRead, type ProjectAccess } from "../domain/permissions.ts";
import { loadProjectAccess } from "../domain/project_access.ts";
import { logEvent } from "../domain/log.ts";
import { MAX_ECHO_CHARS, MAX_MESSAGE_CHARS, truncateText } from "../domain/echo.ts";
import type { ExportsApiDependencies } from "./env.ts";
import { errorText } from "../domain/error_text.ts";
import { imageHostsProblem } from "./image_hosts.ts";
import { type ErrorFields, type Problem, problem } from "./errors.ts";
import type { Context } from "hono";

/** What {@link startExportWorkflow} shows operators about an export. */
export interface ExportDescription extends ExportIdentity {
  project_id: number;
  format: string;
  /** The stored filters document (options under `_options`). */
  filters: Record<string, unknown>;
  user_id: number | null;
  user_email: string | null;
}

/**
 * Starts the export's workflow; a second start of the same export is a no-op. The run carries
 * the search attributes of workflows/search_attributes.ts (`ExportStatus` PENDING until the
 * workflow moves it) and a summary line for the Temporal UI (`<format> · project <p> ·
 * filters <json>`), with the filters in the details.
 */
export async function startExportWorkflow(
  deps: Pick<ExportsApiDependencies, "temporal" | "config">,
  export_: ExportDescription,
): Promise<void> {
  const filters = JSON.stringify(export_.filters);
  await deps.temporal.workflow.start<typeof exportWorkflow>("exportWorkflow", {
    taskQueue: deps.config.temporalTaskQueue,
    workflowId: exportWorkflowId(export_),
    args: [{
      exportId: export_.id,
      heartbeatTimeoutSeconds: deps.config.heartbeatTimeoutSeconds,
      maxAttempts: deps.config.exportMaxAttempts,
    }],
    workflowIdConflictPolicy: "USE_EXISTING",
    typedSearchAttributes: [
      { key: EXPORT_ID, value: export_.id },
      { key: PROJECT_ID, value: export_.project_id },
      { key: EXPORT_FORMAT, value: export_.format },
      { key: EXPORT_STATUS, value: "PENDING" },
      { key: REQUESTED_BY, value: requestedBy(export_) },
    ],
    staticSummary: `export ${export_.id}: ${export_.format} · project ${export_.project_id} · ` +
      `filters ${filters.length > 120 ? `${filters.slice(0, 117)}…` : filters}`,
    staticDetails: `**${export_.format}** export ${export_.id} of project ` +
      `${export_.project_id}, requested by ${requestedBy(export_)}\n\nfilters: \`${filters}\``,
  });
}

/** The outcome of {@link requestExport}. */
export type RequestExportResult =
  | {
    ok: true;
    exportId: number;
    workflowId: string;
    access: ProjectAccess;
    /** True when an identical earlier export was returned instead of a new one. */
    reused: boolean;
    /** With `notify_url`: the secret that signs its events (docs/webhooks.md). */
    notifySecret?: string;
  }
  | {
    ok: false;
    status: 400;
    message: string;
    /** `fields` names each bad part of the request (docs/http-api.md, errors). */
    details: { fields: ErrorFields } & Record<string, unknown>;
  }
  | { ok: false; status: 403 | 503; message: string; details?: Record<string, unknown> };

/**
 * Checks and creates an export for `user` and starts its workflow: the one code path of
 * `POST /api/v2/exports/`, the operator CLI and scheduled exports. Nothing is left behind when
 * it fails.
 */
export async function requestExport(
  deps: Pick<ExportsApiDependencies, "sql" | "temporal" | "config" | "storage">,
  request: {
    user: CurrentUser;
    project: number;
    format: string;
    filters?: Record<string, unknown> | null;
    excel_compatible?: boolean;
    /** Only these columns (formats that declare theirs; `registry/columns.ts`). */
    columns?: string[] | null;
    /** Format options beyond `excel_compatible` (the format's `acceptedOptions`). */
    options?: Record<string, unknown>;
    /** Export even when an identical SUCCESS export of unchanged data exists (default false). */
    force?: boolean;
    /** Receives the export's end events (docs/webhooks.md); implies `force`. */
    notify_url?: string;
  },
): Promise<RequestExportResult> {
  const { sql } = deps;
  const access = await loadProjectAccess(sql, request.user, request.project);
  if (!access || !canRead(access)) {
    const message = `project does not exist: ${request.project}`;
    return { ok: false, status: 400, message, details: { fields: { project: [message] } } };
  }
  if (!can(access, "create")) {
    return {
      ok: false,
      status: 403,
      message: `you may not create exports in project ${request.project}`,
    };
  }
  const exporter = getExporter(request.format);
  if (!exporter) {
    return {
      ok: false,
      status: 400,
      message: `unknown export format: ${
        truncateText(request.format, MAX_ECHO_CHARS)
      } (supported: ${supportedFormats().join(", ")})`,
      details: {
        fields: { format: [`must be one of: ${supportedFormats().join(", ")}`] },
        supported_formats: supportedFormats(),
      },
    };
  }
  if (request.excel_compatible && !(exporter.acceptedOptions ?? []).includes("excel_compatible")) {
    return {
      ok: false,
      status: 400,
      message: `option excel_compatible is not accepted by format ${exporter.key}`,
      details: { fields: { excel_compatible: ["is accepted by the CSV formats only"] } },
    };
  }
  const columns = checkColumns(exporter, request.columns);
  if (!columns.ok) {
    return {
      ok: false,
      status: 400,
      message: truncateText(columns.message, MAX_MESSAGE_CHARS),
      details: {
        fields: { columns: [truncateText(columns.message, MAX_MESSAGE_CHARS)] },
      },
    };
  }
  const formatOptions = request.options ?? {};
  const unknownOptions = Object.keys(formatOptions).filter((key) =>
    // excel_compatible and columns are fields of the request itself, not options
    key === "excel_compatible" || key === "columns" ||
    !(exporter.acceptedOptions ?? []).includes(key as OptionKey)
  );
  if (unknownOptions.length > 0) {
    return {
      ok: false,
      status: 400,
      message: `option not accepted by format ${exporter.key}: ${
        truncateText(unknownOptions.join(", "), MAX_ECHO_CHARS)
      }`,
      details: {
        fields: Object.fromEntries(
          unknownOptions.slice(0, 20).map((k) => [
            `options.${truncateText(k, MAX_ECHO_CHARS)}`,
            [
              `is not accepted by format ${exporter.key} (accepted: ${
                (exporter.acceptedOptions ?? []).filter((o) =>
                  o !== "excel_compatible" && o !== "columns"
                ).join(", ") || "none"
              })`,
            ],
          ]),
        ),
      },
    };
  }
  const optionProblems = exporter.optionProblems?.(formatOptions as ExportOptions) ?? {};
  if (Object.keys(optionProblems).length > 0) {
    return {
      ok: false,
      status: 400,
      message: `invalid options: ${
        Object.entries(optionProblems).map(([k, v]) => `${k} ${v}`).join("; ")
      }`,
      details: {
        fields: Object.fromEntries(
          Object.entries(optionProblems).map(([k, v]) => [`options.${k}`, [v]]),
        ),
      },
    };
  }
  if (exporterFor(exporter, formatOptions as ExportOptions).fetchesImages) {
    const images = await imageHostsProblem(sql, {
      projectId: request.project,
      hosts: deps.config.formats.images?.hosts ?? [],
    });
    if (images) {
      // the request's part that makes it fetch images: the format, or detections_coco's option
      const field = exporter.fetchesImages ? "format" : "options.include_images";
      return {
        ok: false,
        status: 400,
        message: images,
        details: { fields: { [field]: [images] } },
      };
    }
  }
  const checked = await validateFilters(sql, exporter, request.project, request.filters ?? {});
  if (!checked.ok) {
    return {
      ok: false,
      status: 400,
      message: checked.message,
      details: { ...checked.details, fields: checked.fields },
    };
  }
  const notify = request.notify_url === undefined
    ? undefined
    : await checkDestination(deps.config.webhooks, "notify_url", request.notify_url);
  if (notify && !notify.ok) {
    return {
      ok: false,
      status: 400,
      message: notify.message,
      details: { fields: { notify_url: [notify.message] } },
    };
  }
  const options = {
    ...formatOptions,
    excel_compatible: request.excel_compatible,
    columns: columns.columns,
  };
  let outcome: CreatedOrReused;
  try {
    outcome = await createOrReuseExport(sql, {
      options,
      userId: request.user.id,
      projectId: request.project,
      format: exporter.key,
      filters: checked.filters as Record<string, unknown>,
      filtersDisplay: checked.display,
      // the options' variant: `include_images` adds the image hosts to the key
      settingsKey: await exportSettingsKey(exporterFor(exporter, options), deps.config.formats),
      reuse: !request.force && !notify,
      headFile: (key) => deps.storage.headObject(key),
      // a running export whose workflow is gone is ended FAILURE, not handed out
      workflowLost: (found, unchanged) => failIfWorkflowLost(deps, found, unchanged),
      settledSeconds: LOST_EXPORT_GRACE_SECONDS,
    });
  } catch (error) {
    if (!(error instanceof StorageUnavailableError)) throw error;
    // an identical export's file cannot be checked: nothing is created, ask again later
    return { ok: false, status: 503, message: `storage is unavailable: ${error.message}` };
  }
  for (const id of outcome.lost) {
    logEvent("export file lost", {
      export_id: id,
      stage: "requested",
      project_id: request.project,
    });
  }
  const created = outcome.export;
  /**
   * Logs `export reused` or `export requested` for `created` and answers it; a new export's
   * answer holds `notifySecret` (undefined without `notify_url`), a reused one's has no such key.
   */
  const accepted = (
    reused: boolean,
    secret: { notifySecret?: string } = {},
  ): RequestExportResult => {
    logEvent(reused ? "export reused" : "export requested", {
      export_id: created.id,
      workflow_id: exportWorkflowId(created),
      stage: "requested",
      user_id: request.user.id,
      project_id: request.project,
      format: exporter.key,
    });
    return {
      ok: true,
      exportId: created.id,
      workflowId: exportWorkflowId(created),
      access,
      reused,
      ...secret,
    };
  };
  if (outcome.reused) return accepted(true);
  const exportId = created.id;
  const notifySecret = notify?.ok ? newWebhookSecret() : undefined;
  if (notify?.ok) await setExportNotify(sql, exportId, { url: notify.url, secret: notifySecret! });
  try {
    await startExportWorkflow(deps, {
      ...created,
      project_id: request.project,
      format: exporter.key,
      filters: storedFilters(checked.filters as Record<string, unknown>, options),
      user_id: request.user.id,
      user_email: request.user.email,
    });
  } catch (error) {
    await sql`delete from data_exports where id = ${exportId}`;
    return {
      ok: false,
      status: 503,
      message: truncateText(
        `could not start the export workflow, nothing was created: ${errorText(error)}`,
        MAX_MESSAGE_CHARS,
      ),
    };
  }
  return accepted(false, { notifySecret });
}

/**
 * The JSON error response of a request `requestExport` refused (`ok: false`), as
 * `POST /api/v2/exports/` and `POST /api/v2/exports/{id}/rerun` answer it: its status (400, with
 * `fields` in `details`; 403; 503), its message and its details.
 */
export function refusedExportProblem(
  c: Context,
  refused: Extract<RequestExportResult, { ok: false }>,
): Problem<400> | Problem<403> | Problem<503> {
  switch (refused.status) {
    case 400:
      return problem(c, 400, refused.message, refused.details);
    case 403:
      return problem(c, 403, refused.message, refused.details);
    case 503:
      return problem(c, 503, refused.message, refused.details);
  }
}
