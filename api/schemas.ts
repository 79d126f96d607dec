// Long because every request and response body of the API is one zod schema here (OpenAPI source).
/**
 * The zod schemas of the HTTP API: they validate requests, type handlers and generate the
 * OpenAPI document (`/api/v2/openapi.json`), so the three never drift apart.
 */
import { z } from "@hono/zod-openapi";
import { EXPORT_ORDERINGS } from "../db/exports.ts";
import { getExporter, supportedFormats } from "../registry/mod.ts";

/**
 * The largest id the API accepts: 2^53 − 1, the largest integer a JSON number carries exactly
 * (zod's `.int()` refuses larger ones). Documented as `maximum` so that clients and schemathesis
 * know it (issue 14: undocumented bounds rejected schema-valid requests).
 */
export const MAX_ID = Number.MAX_SAFE_INTEGER;

/** What {@link boundedInteger} and {@link idSchema} return: a number schema fed by JSON or text. */
export type IntegerSchema = z.ZodType<number, unknown>;

/** Canonical decimal text of a non-negative integer: no sign, space, exponent, hex or padding. */
const DECIMAL = /^(0|[1-9][0-9]*)$/;

/**
 * An integer in [min, max], bounds documented: a JSON number, or a path/query string written
 * as canonical decimal digits. Nothing else is converted (`" 1"`, `"1e0"`, `"0x17"`, `"7.0"`,
 * `true`, `[1]` are refused, never read as ids): bad input answers 400 and changes nothing.
 */
export function boundedInteger(min: number, max: number): IntegerSchema {
  // one message for every way to miss (not a number, text that is not digits, a fraction, out
  // of range): it says what to send (`limit must be an integer from 1 to 100`); a required one
  // left out says so (`project is required`)
  const message = `must be an integer from ${min} to ${max}`;
  const error = (issue: { input?: unknown }): string =>
    issue.input === undefined ? "is required" : message;
  return z.preprocess(
    (value) => typeof value === "string" && DECIMAL.test(value) ? Number(value) : value,
    z.number({ error }).int({ error }).min(min, { error }).max(max, { error }),
  ).openapi({
    type: "integer",
    minimum: min,
    maximum: max,
  }) as unknown as IntegerSchema;
}

/** A database id: an integer from 1 to 2^53 − 1. */
export function idSchema(): IntegerSchema {
  return boundedInteger(1, MAX_ID);
}

/**
 * The JSON Schema of `filters` (create requests), for the document only: domain/filter_validation.ts
 * validates (and answers 400 naming the filter). Every format accepts these filters (registry
 * `occurrenceFilterKeys`); `null` or `""` means "not set". Ids are JSON integers or digit
 * strings; lists hold 1 to 1000 ids. Which ids exist in the project is not expressible here: a
 * schema-valid request naming an id of another project answers 400 "… does not belong to …".
 */
export function filtersDocument(keys?: readonly string[]): Record<string, unknown> {
  const unset = [{ type: "null" }, { const: "" }];
  const id = {
    anyOf: [
      { type: "integer", minimum: 1, maximum: MAX_ID },
      { type: "string", pattern: "^[1-9][0-9]{0,14}$" },
    ],
  };
  const ids = { type: "array", items: id, minItems: 1, maxItems: 1000 };
  const date = { type: "string", format: "date", pattern: "^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}$" };
  const flag = { anyOf: [{ type: "boolean" }, { type: "string", enum: ["true", "false"] }] };
  const score = {
    anyOf: [
      { type: "number", minimum: 0, maximum: 1 },
      { type: "string", pattern: "^(0(\\.[0-9]+)?|1(\\.0+)?|\\.[0-9]+)$" },
    ],
  };
  const properties: Record<string, unknown> = {
    collection_id: id,
    deployment_ids: ids,
    event_ids: ids,
    taxon_id: id,
    exclude_taxon_ids: ids,
    date_start: date,
    date_end: date,
    min_score: score,
    verified: flag,
    apply_project_defaults: flag,
  };
  return {
    type: ["object", "null"],
    additionalProperties: false,
    properties: Object.fromEntries(
      Object.entries(properties)
        .filter(([key]) => keys === undefined || keys.includes(key))
        .map(([key, spec]) => [key, { anyOf: [spec, ...unset] }]),
    ),
  };
}

/**
 * `filters` of a create request: any JSON object, passed on exactly as parsed for
 * domain/filter_validation.ts to judge key by key. Not `z.record`, which copies the object and
 * thereby drops a `"__proto__"` key (an assignment sets the prototype instead): a request with
 * `{"__proto__": …}` would have been accepted as if it named no filter, instead of a 400
 * "unknown filter".
 */
export function filtersObject(): z.ZodType<Record<string, unknown>> {
  return z.custom<Record<string, unknown>>(
    (value) => typeof value === "object" && value !== null && !Array.isArray(value),
    "must be an object of filters",
  );
}

/**
 * What each format accepts, as `anyOf` variants of a create request (export or schedule): the
 * formats with the same accepted filters and options share one variant, which states those
 * filters (`filters` keys beyond them are a 400 "unknown filter for format …"), for formats
 * without the `excel_compatible` option that it may only be false or absent, and the column
 * names `columns` may hold (absent for formats that do not project their rows).
 */
export function perFormatVariants(withOptions: boolean): Record<string, unknown>[] {
  const groups = new Map<
    string,
    {
      formats: string[];
      filters: readonly string[];
      excel: boolean;
      columns: readonly string[] | undefined;
    }
  >();
  for (const key of supportedFormats()) {
    const exporter = getExporter(key)!;
    const excel = (exporter.acceptedOptions ?? []).includes("excel_compatible");
    const columns = exporter.withColumns ? exporter.columns : undefined;
    const id = `${[...exporter.acceptedFilters].sort().join(",")}|${excel}|${columns?.join(",")}`;
    const group = groups.get(id) ??
      { formats: [], filters: exporter.acceptedFilters, excel, columns };
    group.formats.push(key);
    groups.set(id, group);
  }
  return [...groups.values()].map((group) => ({
    properties: {
      format: { enum: group.formats },
      filters: filtersDocument(group.filters),
      ...(withOptions && !group.excel ? { excel_compatible: { const: false } } : {}),
      ...(withOptions
        ? {
          columns: group.columns
            ? { type: "array", items: { enum: [...group.columns] }, minItems: 1, uniqueItems: true }
            : { not: {} },
        }
        : {}),
    },
  }));
}

/**
 * `fields` of a 400: every bad parameter as the client wrote it (`limit`, `options.split_seed`,
 * `filters.taxon_id`, `columns[2]`, `body`) with what it must be (api/errors.ts ErrorFields).
 */
const ErrorFieldsSchema = z.record(z.string(), z.array(z.string()).min(1)).openapi({
  description: "Each bad parameter: a query or path parameter by its name, a body member by " +
    "its path (`options.split_seed`, `filters.taxon_id`, `columns[2]`), `body` for the whole " +
    "body; with what it must be",
  example: { limit: ["must be an integer from 1 to 100"] },
});

/**
 * Every 4xx: `{error, fields?, …details}`, a sentence-case message; a 400 also names each bad
 * parameter under `fields` (ErrorFieldsSchema). Some add details (`supported_formats`,
 * `accepted_filters`).
 */
export const ErrorSchema = z.looseObject({
  error: z.string().openapi({ example: "export not found: 17" }),
  fields: ErrorFieldsSchema.optional(),
}).openapi("Error");

/** A 400: the error and, always, the bad parameters under `fields`. */
export const BadRequestSchema = z.looseObject({
  error: z.string().openapi({ example: "limit must be an integer from 1 to 100" }),
  fields: ErrorFieldsSchema.refine((fields) => Object.keys(fields).length > 0, {
    error: "must name at least one parameter",
  }),
}).openapi("BadRequest");

const statusValues = ["PENDING", "STARTED", "SUCCESS", "FAILURE", "REVOKED", "EXPIRED"] as const;
const ExportStatusSchema = z.enum(statusValues).openapi("ExportStatus", {
  description: "EXPIRED: a SUCCESS export whose file was deleted when its retention ended " +
    "(`expires_at`; docs/retention.md); its request, counts and checksum stay",
});
const ActionSchema = z.enum(["create", "delete", "cancel", "retry"]);

const ProgressStageSchema = z.object({
  key: z.string(),
  name: z.string(),
  status: ExportStatusSchema,
  progress: z.number().min(0).max(1),
  params: z.array(z.object({
    key: z.string(),
    name: z.string(),
    value: z.union([z.string(), z.number(), z.null()]),
  })),
});

/** One export, as list, retrieve, create, cancel and retry return it. */
export const ExportSchema = z.object({
  id: z.number().int(),
  user: z.object({ id: z.number().int(), name: z.string().nullable() }).nullable(),
  project: z.number().int(),
  format: z.string(),
  filters: z.record(z.string(), z.unknown()),
  excel_compatible: z.boolean().openapi({
    description: "The file starts with a UTF-8 byte order mark (CSV formats, on request)",
  }),
  columns: z.array(z.string()).nullable().openapi({
    description: "The file's columns when the request chose a subset (`columns`); null: every " +
      "column of the format",
  }),
  options: z.record(z.string(), z.unknown()).openapi({
    description: "The format options of the request besides excel_compatible ({} for none)",
  }),
  filters_display: z.record(z.string(), z.unknown()),
  status: ExportStatusSchema,
  error: z.string().nullable(),
  error_stage: z.string().nullable(),
  job: z.object({
    id: z.number().int(),
    name: z.string(),
    status: ExportStatusSchema,
    progress: z.object({
      summary: z.object({ status: ExportStatusSchema, progress: z.number().min(0).max(1) }),
      stages: z.array(ProgressStageSchema),
      errors: z.array(z.string()),
    }),
  }),
  file_url: z.string().nullable().openapi({
    description: "Short-lived signed URL of the file (or public URL in public files mode)",
  }),
  download_url: z.string().nullable().openapi({
    description: "Stable API URL that checks permissions and redirects to the file",
  }),
  citation: z.string().nullable().openapi({
    description: "One line to cite the export: project, owner, format, record count, export " +
      "date and the download route; null until SUCCESS",
    example: 'Project "Moths" (owner Ada). Darwin Core Archive export (dwca), 19,883 ' +
      "records, exported 2026-12-05 via ami-exports: https://…/api/v2/exports/7/download/",
  }),
  record_count: z.number().int(),
  file_size: z.number().int(),
  file_size_display: z.string(),
  checksum: z.string().nullable(),
  resumed_count: z.number().int(),
  skipped_count: z.number().int().min(0).nullable().openapi({
    description: "Images (crops, frames) the export left out so far, one per row of its " +
      "skipped.csv (missing, not an image, truncated, host not allowed, box outside the image); " +
      "null for formats that fetch no images",
  }),
  queue_position: z.number().int().min(1).nullable().openapi({
    description: "While the export waits for a slot (PENDING under the running caps per user " +
      "and per project): its 1-based place in the admission order among every waiting export; " +
      "null when it is not waiting (docs/fair-scheduling.md)",
  }),
  user_permissions: z.array(ActionSchema).openapi({
    description: "What the caller may do with this export",
  }),
  created_at: z.string(),
  updated_at: z.string(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  expires_at: z.string().nullable().openapi({
    description: "When housekeeping deletes the file of this SUCCESS export (then EXPIRED): " +
      "finished_at + EXPORT_RETENTION_DAYS, moved by `POST …/extend/`; null: kept forever or " +
      "not finished",
  }),
  logs: z.array(z.object({ level: z.string(), message: z.string(), created_at: z.string() }))
    .optional().openapi({ description: "Job log lines, with `?logs=true` only" }),
}).openapi("Export");

/** The JSON type of an export. */
export type ExportJson = z.infer<typeof ExportSchema>;

/** A page of a list: `{count, next, previous, results}`. */
export function pageOf<T extends z.ZodType>(item: T, name: string): z.ZodType<{
  count: number;
  next: string | null;
  previous: string | null;
  results: z.infer<T>[];
}> {
  return z.object({
    count: z.number().int(),
    next: z.string().nullable(),
    previous: z.string().nullable(),
    results: z.array(item),
  }).openapi(name) as never;
}

export const ExportPageSchema = pageOf(ExportSchema, "ExportPage");

export const FormatListSchema = z.object({
  count: z.number().int(),
  results: z.array(z.object({
    key: z.string(),
    label: z.string(),
    description: z.string(),
    extension: z.string(),
    content_type: z.string(),
    accepted_filters: z.array(z.string()),
    accepted_options: z.array(z.string()).openapi({
      description: "Export options the format accepts (excel_compatible: CSV formats; " +
        "columns: the formats that list `columns`; split, split_by, split_seed, crop_padding, " +
        "jpeg_quality, max_skipped_fraction, per_taxon_limit, image_max_side: crops_by_taxon; " +
        "split, split_by, split_seed, jpeg_quality, image_max_side, max_skipped_fraction: " +
        "yolo_dataset; include_images, max_skipped_fraction: detections_coco)",
    }),
    columns: z.array(z.string()).optional().openapi({
      description: "The formats accepting `columns`: their columns in file order",
    }),
  })),
}).openapi("FormatList");

export const CreateExportSchema = z.object({
  project: idSchema().openapi({ example: 1 }),
  format: z.string().min(1).openapi({
    description: `Export format key: ${supportedFormats().join(", ")}`,
    enum: supportedFormats(),
    example: "occurrences_simple_csv",
  }),
  filters: filtersObject().nullish().openapi({
    description: 'Filters, e.g. {"collection_id": 3} (docs/formats.md, "Filters")',
    ...filtersDocument(),
  }),
  excel_compatible: z.boolean().optional().openapi({
    description: "CSV formats only: start the file with a UTF-8 byte order mark so that Excel " +
      "reads accents right (default false: the file has no BOM)",
    example: false,
  }),
  columns: z.array(z.string().max(200)).max(200).nullish().openapi({
    description: "Formats listing `columns` in the formats endpoint: write only these columns, " +
      "a non-empty subset in the format's order (an unknown, repeated or out-of-order name is " +
      "a 400 naming it); the file is exactly the full file's projection. Absent: every column",
    example: ["occurrence_id", "detection_id"],
  }),
  options: z.object({
    split: z.object({
      train: z.number().min(0).max(1),
      val: z.number().min(0).max(1),
      test: z.number().min(0).max(1),
    }).strict().optional().openapi({
      description: "Fractions of the train, val and test splits, summing to 1 (default 0.8, 0.1, " +
        "0.1)",
    }),
    split_by: z.enum(["event", "deployment", "capture"]).optional(),
    split_seed: z.string().max(200).optional(),
    crop_padding: z.number().min(0).max(10).optional(),
    jpeg_quality: z.number().int().min(1).max(100).optional(),
    max_skipped_fraction: z.number().min(0).max(1).optional(),
    per_taxon_limit: z.number().int().min(1).optional().openapi({
      description: "crops_by_taxon: only the N crops of each taxon with the highest " +
        "determination score (ties by detection id), after every filter (default: all)",
    }),
    image_max_side: z.number().int().min(16).max(10_000).optional().openapi({
      description: "crops_by_taxon, yolo_dataset: downscale each crop or frame so its longest " +
        "side is at most this many pixels (never upscaled; the manifest's boxes stay in source " +
        "pixels, YOLO labels are fractions and do not change)",
    }),
    include_images: z.boolean().optional().openapi({
      description: "detections_coco: true makes the file a zip (extension zip, application/zip) " +
        "of annotations.json (file_name = images/<capture id>.jpg), the images and skipped.csv " +
        "(default false: the JSON document)",
    }),
  }).strict().optional().openapi({
    description: "Format options beyond excel_compatible, as the format lists them in " +
      "accepted_options (crops_by_taxon: split, split_by, split_seed, crop_padding, " +
      "jpeg_quality, max_skipped_fraction, per_taxon_limit, image_max_side; yolo_dataset: " +
      "split, split_by, split_seed, jpeg_quality, image_max_side, max_skipped_fraction; " +
      "detections_coco: include_images, max_skipped_fraction; docs/formats.md), e.g. " +
      '{"split_by": "deployment"}',
  }),
  force: z.boolean().optional().openapi({
    description: "Export even when an identical earlier export (same project, format, filters " +
      "and options) succeeded and the project's data has not changed since: without it (default " +
      "false) that export is returned with 200 and `reused: true`",
    example: false,
  }),
  // the rule of a webhook's url (api/webhooks.ts WebhookUrlSchema), with its message
  notify_url: z.string().min(1).max(2048).regex(
    /^[Hh][Tt][Tt][Pp][Ss]?:\/\/[^\s/?#]+[^\s]*$/,
    "must be an http or https URL",
  ).optional().openapi({
    format: "uri",
    description: "Receives every end event of this export, signed with `notify_secret` of the " +
      "201 answer; checked like a webhook URL (docs/webhooks.md). A request with it is never " +
      "answered with a reused export",
  }),
}).strict().openapi("CreateExport", { anyOf: perFormatVariants(true) });

/** `POST /api/v2/exports/` 201: a new export. */
export const CreatedExportSchema = ExportSchema.extend({
  reused: z.literal(false),
  notify_secret: z.string().optional().openapi({
    description: "With `notify_url` only: the key of its `Webhook-Signature`, shown only here",
  }),
}).openapi(
  "CreatedExport",
);

/** `POST /api/v2/exports/` 200: an identical earlier export of unchanged data, reused. */
export const ReusedExportSchema = ExportSchema.extend({ reused: z.literal(true) }).openapi(
  "ReusedExport",
);

const orderingValues = EXPORT_ORDERINGS.flatMap((field) => [field, `-${field}`]) as [
  string,
  ...string[],
];

export const ListExportsQuerySchema = z.object({
  project_id: idSchema().optional(),
  limit: boundedInteger(1, 100).default(10).openapi({ description: "Page size (1–100)" }),
  offset: boundedInteger(0, MAX_ID).default(0).openapi({ description: "Items to skip" }),
  ordering: z.enum(orderingValues).default("-id").openapi({
    description: "Sort field; prefix with - for descending",
  }),
  status: z.enum(statusValues).optional(),
  format: z.enum(supportedFormats() as [string, ...string[]]).optional(),
});

/**
 * The body of an action that takes no field (cancel, retry; a schedule's pause, unpause and
 * trigger): none, or `{}`. Any key is a 400 naming it and changes nothing (a `{"note": …}`
 * would otherwise be dropped unseen); a body that is not JSON is a 415 (docs/http-api.md).
 */
export const NoFieldsBodySchema = z.object({}).strict().openapi("NoFieldsBody");

/** The optional request body of an action that takes no field ({@link NoFieldsBodySchema}). */
export const noFieldsBody = {
  required: false,
  content: { "application/json": { schema: NoFieldsBodySchema } },
} as const;

export const IdParamSchema = z.object({
  id: idSchema().openapi({ param: { name: "id", in: "path" }, example: 17 }),
});

export const RetrieveQuerySchema = z.object({
  logs: z.enum(["true", "false"]).optional().openapi({ description: "Include job log lines" }),
});

export const HealthSchema = z.object({
  status: z.enum(["ok", "unavailable"]),
  checks: z.object({
    database: z.string(),
    temporal: z.string(),
    storage: z.string(),
    workers: z.string(),
  }),
  replica: z.object({
    status: z.string(),
    database: z.string(),
    standby: z.boolean().nullable(),
    lag_bytes: z.number().nullable(),
    lag_seconds: z.number().nullable(),
    replay_paused: z.boolean().nullable(),
  }).optional().openapi({
    description: "The export read database (EXPORT_DATABASE_URL), when it is not DATABASE_URL: " +
      "reported, never a reason for 503 (docs/replica.md)",
  }),
}).openapi("Health");

/**
 * The JSON error responses a route can give, for `createRoute({ responses })`. Every route
 * reaches the database (token check) and may answer 503 when a dependency does not answer; a
 * route that reads a JSON body (it lists 415) may also answer 413, for a body past
 * `MAX_REQUEST_BODY_BYTES` (api/mod.ts), refused before the route runs.
 */
export function errorResponses<S extends number>(
  ...statuses: S[]
): Record<
  S | 503,
  { description: string; content: { "application/json": { schema: typeof ErrorSchema } } }
> {
  const descriptions: Record<number, string> = {
    400: "Invalid request: `fields` names each bad parameter",
    401: "Missing, invalid or revoked token",
    403: "Not permitted",
    404: "Not found (or not readable by the caller)",
    409: "Conflicts with the current state",
    410: "The export's file was deleted when its retention ended (EXPIRED)",
    413: "The body is larger than 1 MiB",
    415: "The body is not `application/json`",
    503: "A dependency is unavailable",
  };
  const body: number[] = (statuses as number[]).includes(415) ? [413] : [];
  return Object.fromEntries([...new Set<number>([...statuses, ...body, 503])].map((s) => [s, {
    description: descriptions[s] ?? "Error",
    content: { "application/json": { schema: s === 400 ? BadRequestSchema : ErrorSchema } },
  }])) as never;
}

/** A JSON response entry of a route's `responses`, described. */
export function jsonResponse<T extends z.ZodType>(
  schema: T,
  description: string,
): { description: string; content: { "application/json": { schema: T } } } {
  return { description, content: { "application/json": { schema } } };
}
