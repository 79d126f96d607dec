/** The zod schemas of `/api/v2/export-schedules/` (built from the shared pieces of `schemas.ts`). */
import { z } from "@hono/zod-openapi";
import { supportedFormats } from "../registry/mod.ts";
import {
  boundedInteger,
  filtersDocument,
  filtersObject,
  idSchema,
  MAX_ID,
  pageOf,
  perFormatVariants,
} from "./schemas.ts";

/**
 * `interval`: seconds, or a number with a unit (`90s`, `15m`, `6h`, `1d`), at most 999,999,999
 * seconds (~31 years; Temporal's durations end at ~292 years, and the document states the bound
 * in both forms: 9 digits of s, 7 of m, 5 of h, 4 of d).
 */
const IntervalSchema = z.union([
  z.number().int().positive().max(999_999_999),
  z.string().regex(
    /^([1-9]\d{0,8}s|[1-9]\d{0,6}m|[1-9]\d{0,4}h|[1-9]\d{0,3}d)$/,
    "must be seconds or a positive number with s, m, h or d (e.g. 15m), at most 999999999 s",
  ),
]).openapi({
  description:
    "Run every N seconds, or e.g. `15m`, `6h`, `1d`; at least the deployment's `SCHEDULE_MIN_INTERVAL_SECONDS` (default 60), else 400",
});

/** Seconds of an interval given as {@link IntervalSchema}. */
export function intervalSeconds(value: number | string): number {
  if (typeof value === "number") return value;
  const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
  return Number(value.slice(0, -1)) * units[value.slice(-1)];
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/**
 * A cron expression's shape: 5 fields of printable ASCII (`!` to `~`) separated by single
 * spaces. Enforced, not only documented: a NUL byte or a line break would otherwise reach the
 * database (PostgreSQL refuses NUL in text, a 500) before Temporal reads the fields.
 */
const CRON_PATTERN = /^[!-~]+( [!-~]+){4}$/;

export const CreateScheduleSchema = z.object({
  project: idSchema().openapi({ example: 1 }),
  format: z.string().min(1).openapi({
    enum: supportedFormats(),
    example: "occurrences_simple_csv",
  }),
  filters: filtersObject().nullish().openapi(filtersDocument()),
  cron: z.string().min(1).max(200).regex(
    CRON_PATTERN,
    "must be 5 fields of printable ASCII separated by single spaces, e.g. 0 3 * * *",
  ).optional().openapi({
    description: "Cron expression (5 fields), e.g. `0 3 * * *`; give cron or interval. " +
      "Temporal checks the fields' ranges: an expression it refuses is a 400",
    pattern: CRON_PATTERN.source,
    example: "0 3 * * *",
  }),
  interval: IntervalSchema.optional(),
  timezone: z.string().default("UTC").refine(
    isTimeZone,
    "must be a time zone of the IANA database, e.g. Europe/Amsterdam",
  ).openapi({
    description: "IANA time zone of the cron expression",
    enum: [...new Set(["UTC", ...Intl.supportedValuesOf("timeZone")])],
    example: "Europe/Paris",
  }),
  keep_last: z.number().int().min(1).max(1000).nullish().openapi({
    description: "Keep only the newest N exports of this schedule; older ones are deleted",
  }),
}).strict().superRefine((value, ctx) => {
  if ((value.cron === undefined) === (value.interval === undefined)) {
    ctx.addIssue({
      code: "custom",
      path: ["cron"],
      message: "give exactly one of cron and interval",
    });
  }
}).openapi("CreateExportSchedule", {
  anyOf: perFormatVariants(false),
  // what the refinement above checks, stated in the document (exactly one of cron, interval)
  oneOf: [{ required: ["cron"] }, { required: ["interval"] }],
  example: { project: 1, format: "occurrences_simple_csv", cron: "0 3 * * *", keep_last: 7 },
});

export const ScheduleSchema = z.object({
  id: z.number().int(),
  schedule_id: z.string().openapi({
    description: "Temporal Schedule id",
    example: "export-schedule-3",
  }),
  user: z.object({ id: z.number().int(), name: z.string().nullable() }),
  project: z.number().int(),
  format: z.string(),
  filters: z.record(z.string(), z.unknown()),
  filters_display: z.record(z.string(), z.unknown()),
  cron: z.string().nullable(),
  interval_seconds: z.number().int().nullable(),
  timezone: z.string(),
  keep_last: z.number().int().nullable(),
  paused: z.boolean(),
  recent_exports: z.array(z.number().int()).openapi({
    description: "Ids of the newest exports this schedule made",
  }),
  next_run_times: z.array(z.string()).optional().openapi({
    description: "Upcoming runs (retrieve only)",
  }),
  runs: z.number().int().optional().openapi({
    description: "Runs started so far (retrieve only)",
  }),
  created_at: z.string(),
  updated_at: z.string(),
}).openapi("ExportSchedule");

/** The JSON type of a schedule. */
export type ScheduleJson = z.infer<typeof ScheduleSchema>;

export const SchedulePageSchema = pageOf(ScheduleSchema, "ExportSchedulePage");

export const ListSchedulesQuerySchema = z.object({
  project_id: idSchema().optional(),
  limit: boundedInteger(1, 100).default(10).openapi({ description: "Page size (1–100)" }),
  offset: boundedInteger(0, MAX_ID).default(0).openapi({ description: "Items to skip" }),
});
