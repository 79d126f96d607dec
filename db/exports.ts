/**
 * Queries on the export tables (`data_exports`, `jobs`, `job_logs`). Both the API and the
 * activities use these, so that a status or a progress stage is written in one place only.
 */
import type { ExportFilters, ExportOptions } from "../registry/types.ts";
import type { Sql } from "./client.ts";

/** Status of an export and of its job (the platform's Celery-style names). */
export type ExportStatus = "PENDING" | "STARTED" | "SUCCESS" | "FAILURE" | "REVOKED";

/** One name/value pair shown under a progress stage. */
export interface StageParam {
  key: string;
  name: string;
  value: string | number | null;
}

/** A stage of the job's progress, as the platform's UI renders it. */
export interface ProgressStage {
  key: string;
  name: string;
  status: ExportStatus;
  progress: number;
  params: StageParam[];
}

/** The `jobs.progress` document. */
export interface JobProgress {
  summary: { status: ExportStatus; progress: number };
  stages: ProgressStage[];
  errors: string[];
}

/** A `data_exports` row joined with its job. */
export interface ExportRow {
  id: number;
  user_id: number | null;
  user_name: string | null;
  user_email: string | null;
  project_id: number;
  project_slug: string;
  format: string;
  filters: Record<string, unknown>;
  filters_display: Record<string, unknown>;
  status: ExportStatus;
  error: string | null;
  error_stage: string | null;
  file_key: string | null;
  /** Unique to the export across databases: part of its object key (`exportFileKey`). */
  file_uuid: string;
  upload_id: string | null;
  record_count: number;
  file_size: number;
  checksum: string | null;
  workflow_id: string | null;
  run_id: string | null;
  resumed_count: number;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  job_id: number;
  job_name: string;
  job_status: ExportStatus;
  job_progress: JobProgress;
}

/** Stage keys and labels (kept from the original platform). */
export const STAGES = {
  export: { key: "data_export", name: "Exporting data" },
  upload: { key: "uploading_snapshot", name: "Uploading snapshot" },
} as const;

/** The progress document of a job that has not started. */
export function initialProgress(): JobProgress {
  return {
    summary: { status: "PENDING", progress: 0 },
    stages: [
      {
        ...STAGES.export,
        status: "PENDING",
        progress: 0,
        params: [
          { key: "records_exported", name: "Number of records exported", value: 0 },
          { key: "total_records", name: "Total records to export", value: null },
        ],
      },
      {
        ...STAGES.upload,
        status: "PENDING",
        progress: 0,
        params: [{ key: "file_url", name: "File URL", value: null }],
      },
    ],
    errors: [],
  };
}

/**
 * The key under which an export's options ride in its `filters` document (no schema change: an
 * export without options stores exactly what it stored before).
 */
const OPTIONS_KEY = "_options";

/** The export's filters, without its options. */
export function exportFilters(row: Pick<ExportRow, "filters">): ExportFilters {
  const { [OPTIONS_KEY]: _options, ...filters } = row.filters;
  return filters as ExportFilters;
}

/** The export's options (`excel_compatible`, …); `{}` when it has none. */
export function exportOptions(row: Pick<ExportRow, "filters">): ExportOptions {
  const options = row.filters[OPTIONS_KEY];
  return options && typeof options === "object" ? options as ExportOptions : {};
}

/**
 * The `filters` document an export stores: the validated filters plus the options that are set
 * (under `_options`). Two requests with equal documents ask for the same file.
 */
export function storedFilters(
  filters: Record<string, unknown>,
  options: ExportOptions = {},
): Record<string, unknown> {
  const set = Object.fromEntries(Object.entries(options).filter(([, value]) => value === true));
  return Object.keys(set).length === 0 ? filters : { ...filters, [OPTIONS_KEY]: set };
}

/**
 * The newest SUCCESS export of the same project, format and stored filters (options included)
 * whose source data has not changed since it started, or undefined. Exact, not a guess: the
 * export recorded the change markers of its project and of the global tables
 * (`export_source_versions`, moved by a trigger on every write to an exported table, migration
 * 00007) when it started, and both must still be current. Exports older than the markers
 * (null) are never reused. Source of the rule: issue 14 (GBIF's reuse of identical downloads).
 */
export async function findReusableExport(
  sql: Sql,
  request: { projectId: number; format: string; filters: Record<string, unknown> },
): Promise<ExportIdentity | undefined> {
  const [row] = await sql<ExportIdentity[]>`
    select e.id, e.file_uuid::text from data_exports e
    where e.project_id = ${request.projectId} and e.format = ${request.format}
      and e.status = 'SUCCESS'
      and e.filters = ${sql.json(request.filters as never)}::jsonb
      and e.source_version = (
        select version from export_source_versions where project_id = e.project_id)
      and e.global_source_version = (
        select version from export_source_versions where project_id = 0)
    order by e.id desc limit 1`;
  return row;
}

/**
 * Records on the export the change markers of its project and of the global tables as they are
 * now (before it counts or reads a row), for {@link findReusableExport}.
 */
export async function recordSourceVersions(sql: Sql, exportId: number): Promise<void> {
  await sql`
    update data_exports e set
      source_version = (select version from export_source_versions where project_id = e.project_id),
      global_source_version = (select version from export_source_versions where project_id = 0)
    where e.id = ${exportId}`;
}

/** Creates the export row and its job in one transaction. */
export async function insertExport(
  sql: Sql,
  input: {
    userId: number;
    projectId: number;
    format: string;
    filters: Record<string, unknown>;
    filtersDisplay: Record<string, unknown>;
    /** Only the options that are set are stored. */
    options?: ExportOptions;
  },
): Promise<ExportIdentity> {
  const filters = storedFilters(input.filters, input.options);
  return await sql.begin(async (tx) => {
    const [row] = await tx<ExportIdentity[]>`
      insert into data_exports (user_id, project_id, format, filters, filters_display)
      values (${input.userId}, ${input.projectId}, ${input.format},
              ${tx.json(filters as never)}, ${tx.json(input.filtersDisplay as never)})
      returning id, file_uuid::text`;
    await tx`
      update data_exports set workflow_id = ${exportWorkflowId(row)} where id = ${row.id}`;
    await tx`
      insert into jobs (data_export_id, name, progress)
      values (${row.id}, ${`Export of ${input.format} #${row.id}`}, ${
      tx.json(initialProgress() as never)
    })`;
    return row;
  });
}

/** What names an export everywhere: its id in this database and its UUID across databases. */
export interface ExportIdentity {
  id: number;
  file_uuid: string;
}

/**
 * The workflow id of an export: one export, one workflow. `data-export-<id>-<file_uuid>`: the
 * UUID keeps exports of two databases sharing a Temporal namespace apart (equal ids would
 * otherwise attach one's request to the other's workflow); search the Temporal UI with
 * `WorkflowId STARTS_WITH "data-export-<id>-"`.
 */
export function exportWorkflowId(export_: ExportIdentity): string {
  return `data-export-${export_.id}-${export_.file_uuid}`;
}

/** The workflow id of an export's deletion: `data-export-delete-<id>-<file_uuid>`. */
export function deleteWorkflowId(export_: ExportIdentity): string {
  return `data-export-delete-${export_.id}-${export_.file_uuid}`;
}

const exportColumns = (sql: Sql) =>
  sql`
  e.*, u.name as user_name, u.email as user_email, p.slug as project_slug,
  j.id as job_id, j.name as job_name, j.status as job_status, j.progress as job_progress`;

/** One export with its job, or undefined. */
export async function findExport(sql: Sql, id: number): Promise<ExportRow | undefined> {
  const [row] = await sql<ExportRow[]>`
    select ${exportColumns(sql)}
    from data_exports e
    join projects p on p.id = e.project_id
    join jobs j on j.data_export_id = e.id
    left join users u on u.id = e.user_id
    where e.id = ${id}`;
  return row;
}

/** Fields an export list can be ordered by (`-field` for descending). */
export const EXPORT_ORDERINGS = ["id", "format", "file_size", "created_at", "updated_at"] as const;

/** A field of {@link EXPORT_ORDERINGS}, optionally prefixed with `-`. */
export type ExportOrdering =
  | (typeof EXPORT_ORDERINGS)[number]
  | `-${(typeof EXPORT_ORDERINGS)[number]}`;

/**
 * A page of exports (default newest first), restricted to one project, to what a user may read,
 * to a status and to a format when given.
 */
export async function listExports(
  sql: Sql,
  options: {
    projectId?: number;
    readableBy?: { userId: number; superuser: boolean };
    status?: ExportStatus;
    format?: string;
    ordering?: ExportOrdering;
    limit: number;
    offset: number;
  },
): Promise<{ count: number; rows: ExportRow[] }> {
  const project = options.projectId === undefined
    ? sql``
    : sql`and e.project_id = ${options.projectId}`;
  const readable = !options.readableBy || options.readableBy.superuser ? sql`` : sql`
    and (not p.draft or p.owner_id = ${options.readableBy.userId} or exists (
      select 1 from project_memberships m
      where m.project_id = p.id and m.user_id = ${options.readableBy.userId}))`;
  const status = options.status === undefined ? sql`` : sql`and e.status = ${options.status}`;
  const format = options.format === undefined ? sql`` : sql`and e.format = ${options.format}`;
  const ordering = options.ordering ?? "-id";
  const field = ordering.replace(/^-/, "");
  if (!(EXPORT_ORDERINGS as readonly string[]).includes(field)) {
    throw new RangeError(`unknown ordering: ${ordering}`);
  }
  const direction = ordering.startsWith("-") ? sql`desc` : sql`asc`;
  const [{ n }] = await sql<{ n: number }[]>`
    select count(*)::bigint as n from data_exports e join projects p on p.id = e.project_id
    where true ${project} ${readable} ${status} ${format}`;
  const rows = await sql<ExportRow[]>`
    select ${exportColumns(sql)}
    from data_exports e
    join projects p on p.id = e.project_id
    join jobs j on j.data_export_id = e.id
    left join users u on u.id = e.user_id
    where true ${project} ${readable} ${status} ${format}
    order by ${sql(`e.${field}`)} ${direction}, e.id ${direction}
    limit ${options.limit} offset ${options.offset}`;
  return { count: n, rows };
}

/**
 * Applies `change` to the job's progress document under a row lock, recomputing the summary,
 * so concurrent writers (activities of a retried attempt, the API) never lose an update.
 */
export async function updateJobProgress(
  sql: Sql,
  exportId: number,
  change: (progress: JobProgress) => void,
  jobStatus?: ExportStatus,
): Promise<void> {
  await sql.begin(async (tx) => {
    const [job] = await tx<{ id: number; progress: JobProgress }[]>`
      select id, progress from jobs where data_export_id = ${exportId} for update`;
    if (!job) return;
    const progress = job.progress;
    change(progress);
    const stages = progress.stages;
    progress.summary.progress = stages.reduce((a, s) => a + s.progress, 0) / (stages.length || 1);
    if (jobStatus) progress.summary.status = jobStatus;
    await tx`
      update jobs set
        progress = ${tx.json(progress as never)},
        status = ${jobStatus ?? tx`status`},
        started_at = case when ${
      jobStatus ?? null
    }::text = 'STARTED' then coalesce(started_at, now()) else started_at end,
        finished_at = case when ${
      jobStatus ?? null
    }::text in ('SUCCESS', 'FAILURE', 'REVOKED') then now() else finished_at end,
        updated_at = now()
      where id = ${job.id}`;
  });
}

/** Sets one stage's status, progress and parameter values. */
export function setStage(
  progress: JobProgress,
  key: string,
  update: {
    status?: ExportStatus;
    progress?: number;
    params?: Record<string, string | number | null>;
  },
): void {
  const stage = progress.stages.find((s) => s.key === key);
  if (!stage) return;
  if (update.status) stage.status = update.status;
  if (update.progress !== undefined) stage.progress = Math.max(0, Math.min(1, update.progress));
  for (const [k, v] of Object.entries(update.params ?? {})) {
    const param = stage.params.find((p) => p.key === k);
    if (param) param.value = v;
  }
}

/** Appends a line to the job log. */
export async function appendJobLog(
  sql: Sql,
  exportId: number,
  message: string,
  level = "info",
): Promise<void> {
  await sql`
    insert into job_logs (job_id, level, message)
    select id, ${level}, ${message} from jobs where data_export_id = ${exportId}`;
}

/** The job's log lines, oldest first. */
export async function jobLogs(
  sql: Sql,
  exportId: number,
): Promise<{ level: string; message: string; created_at: Date }[]> {
  return await sql`
    select l.level, l.message, l.created_at from job_logs l join jobs j on j.id = l.job_id
    where j.data_export_id = ${exportId} order by l.id`;
}
