/**
 * Queries on the export tables (`data_exports`, `jobs`, `job_logs`). Both the API and the
 * activities use these, so that a status or a progress stage is written in one place only.
 */
import type { ExportFilters, ExportOptions } from "../registry/types.ts";
import type { Sql } from "./client.ts";
import type { SourceVersions } from "./snapshot.ts";
import { inTransaction } from "./transaction.ts";
import { insertEndEvents } from "./webhooks.ts";

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
  /** The change markers of the snapshot the file is made from (db/snapshot.ts); null before. */
  source_version: number | string | null;
  global_source_version: number | string | null;
  /** The settings that shaped the file (registry/settings_key.ts); null before it started. */
  settings_key: string | null;
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

/** Advisory lock namespace of identical export requests (see {@link createOrReuseExport}). */
const IDENTICAL_REQUESTS_LOCK = 727_002;

/** What {@link createOrReuseExport} did. */
export interface CreatedOrReused {
  export: ExportIdentity;
  /** True when an identical export (SUCCESS, or still running) was returned. */
  reused: boolean;
  /** SUCCESS exports of the same request found without their file, now marked FAILURE. */
  lost: number[];
}

/**
 * Creates the export and its job, or returns an identical one instead. Identical means same
 * project, format, stored filters (options included) and settings key (registry/settings_key.ts)
 * over unchanged data: a SUCCESS export whose recorded change markers (db/snapshot.ts) are still
 * current and whose file `fileExists` confirms, else a PENDING or STARTED one that has not
 * counted yet or counted this same data. A SUCCESS export whose file is gone is marked FAILURE
 * (`lost`) and never returned. One transaction under an advisory lock on the request, so
 * identical requests arriving together share the one export instead of starting one each.
 * Source of the rule: GBIF's reuse of identical downloads; issue "every read tells the truth".
 */
export async function createOrReuseExport(
  sql: Sql,
  input: {
    userId: number;
    projectId: number;
    format: string;
    filters: Record<string, unknown>;
    filtersDisplay: Record<string, unknown>;
    /** Only the options that are set are stored. */
    options?: ExportOptions;
    /** What this deployment's settings make of the format (`exportSettingsKey`). */
    settingsKey: string;
    /** False: always create (`force`). */
    reuse: boolean;
    /** Whether storage still holds the object at `key`. */
    fileExists(key: string): Promise<boolean>;
  },
): Promise<CreatedOrReused> {
  const filters = storedFilters(input.filters, input.options);
  return await inTransaction(sql, async (tx) => {
    const lost: number[] = [];
    if (input.reuse) {
      const request = JSON.stringify([input.projectId, input.format, filters]);
      await tx`select pg_advisory_xact_lock(${IDENTICAL_REQUESTS_LOCK}, hashtext(${request}))`;
      while (true) {
        const [same] = await tx<(ExportIdentity & { status: ExportStatus; file_key: string })[]>`
          select e.id, e.file_uuid::text, e.status, e.file_key from data_exports e
          where e.project_id = ${input.projectId} and e.format = ${input.format}
            and e.filters = ${tx.json(filters as never)}::jsonb
            and coalesce(e.settings_key, ${input.settingsKey}) = ${input.settingsKey}
            and (
              (e.status = 'SUCCESS' and e.settings_key is not null and e.file_key is not null
                and e.source_version = (select version from export_source_versions
                                        where project_id = e.project_id)
                and e.global_source_version = (select version from export_source_versions
                                               where project_id = 0))
              or (e.status in ('PENDING', 'STARTED') and (e.source_version is null or (
                e.source_version = (select version from export_source_versions
                                    where project_id = e.project_id)
                and e.global_source_version = (select version from export_source_versions
                                               where project_id = 0)))))
          order by (e.status = 'SUCCESS') desc, e.id desc limit 1`;
        if (!same) break;
        if (same.status !== "SUCCESS" || await input.fileExists(same.file_key)) {
          return { export: { id: same.id, file_uuid: same.file_uuid }, reused: true, lost };
        }
        await markFileLost(tx, same.id, same.file_key);
        lost.push(same.id);
      }
    }
    const created = await insertExportIn(tx, { ...input, filters });
    return { export: created, reused: false, lost };
  });
}

/**
 * SUCCESS → FAILURE for an export whose file storage no longer holds (removed by hand, a lost
 * bucket): inside `tx`, the export, its job and the log line, so that no read offers a
 * download that fails.
 */
async function markFileLost(tx: Transaction, exportId: number, fileKey: string): Promise<void> {
  const message = `the file is no longer in storage: ${fileKey}`;
  await tx`
    update data_exports set status = 'FAILURE', error = ${message}, error_stage = 'storage',
      file_key = null, updated_at = now()
    where id = ${exportId} and status = 'SUCCESS'`;
  await applyJobProgress(tx, exportId, (progress) => {
    progress.errors.push(message);
  }, "FAILURE");
  await insertJobLog(tx, exportId, message, "error");
}

/**
 * Records, in one transaction, the total a snapshot counted (the export stage's
 * `total_records`), its warnings and that snapshot's change markers (for {@link findReusableExport} and the
 * streaming activity's consistency check).
 */
export async function recordCount(
  sql: Sql,
  exportId: number,
  counted: {
    total: number;
    versions: SourceVersions;
    /** Warning lines for the job log (each written once, however often the count runs). */
    warnings?: readonly string[];
  },
): Promise<void> {
  await inTransaction(sql, async (tx) => {
    for (const line of counted.warnings ?? []) {
      await tx`
        insert into job_logs (job_id, level, message)
        select j.id, 'warning', ${line} from jobs j
        where j.data_export_id = ${exportId} and not exists (
          select 1 from job_logs l where l.job_id = j.id and l.message = ${line})`;
    }
    await tx`
      update data_exports set
        source_version = ${counted.versions.project || null}::bigint,
        global_source_version = ${counted.versions.global || null}::bigint
      where id = ${exportId}`;
    await applyJobProgress(tx, exportId, (progress) => {
      setStage(progress, STAGES.export.key, {
        status: "STARTED",
        params: { total_records: counted.total, records_exported: 0 },
      });
    });
  });
}

/** The change markers an export recorded (null before it counted), as {@link SourceVersions}. */
export function recordedSourceVersions(
  row: Pick<ExportRow, "source_version" | "global_source_version">,
): SourceVersions | null {
  if (row.source_version === null || row.global_source_version === null) return null;
  return { project: String(row.source_version), global: String(row.global_source_version) };
}

/** Creates the export row and its job in one transaction (no reuse: see {@link createOrReuseExport}). */
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
  return await inTransaction(sql, (tx) => insertExportIn(tx, { ...input, filters }));
}

async function insertExportIn(
  tx: Transaction,
  input: {
    userId: number;
    projectId: number;
    format: string;
    /** As stored (options included). */
    filters: Record<string, unknown>;
    filtersDisplay: Record<string, unknown>;
  },
): Promise<ExportIdentity> {
  const [row] = await tx<ExportIdentity[]>`
    insert into data_exports (user_id, project_id, format, filters, filters_display)
    values (${input.userId}, ${input.projectId}, ${input.format},
            ${tx.json(input.filters as never)}, ${tx.json(input.filtersDisplay as never)})
    returning id, file_uuid::text`;
  await tx`update data_exports set workflow_id = ${exportWorkflowId(row)} where id = ${row.id}`;
  await tx`
    insert into jobs (data_export_id, name, progress)
    values (${row.id}, ${`Export of ${input.format} #${row.id}`},
            ${tx.json(initialProgress() as never)})`;
  return row;
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

/** A connection inside a transaction (db/transaction.ts `inTransaction`). */
type Transaction = Sql;

/** The statuses in which an export has ended: its file and its job no longer change. */
export const ENDED_STATUSES: readonly ExportStatus[] = ["SUCCESS", "FAILURE", "REVOKED"];

/**
 * Names the transaction in `pg_stat_activity.application_name` (reverted at its end), so that an
 * operator sees which state transition is running or waiting on a lock; the tests use it to kill
 * a worker between the statements of one transition.
 */
async function nameTransition(tx: Transaction, name: string): Promise<void> {
  await tx`select set_config('application_name', ${`ami-exports ${name}`}, true)`;
}

/**
 * Applies `change` to the job's progress document inside `tx` under a row lock, recomputing the
 * summary. Without `jobStatus` (a progress report) it changes nothing once the job has ended:
 * a late report of an activity that was cancelled or retried never reopens an ended export.
 */
async function applyJobProgress(
  tx: Transaction,
  exportId: number,
  change: (progress: JobProgress) => void,
  jobStatus?: ExportStatus,
): Promise<void> {
  const [job] = await tx<{ id: number; status: ExportStatus; progress: JobProgress }[]>`
    select id, status, progress from jobs where data_export_id = ${exportId} for update`;
  if (!job) return;
  if (!jobStatus && ENDED_STATUSES.includes(job.status)) return;
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
      finished_at = case when ${jobStatus ?? null}::text in ('SUCCESS', 'FAILURE', 'REVOKED')
        then now() when ${jobStatus ?? null}::text is not null then null else finished_at end,
      updated_at = now()
    where id = ${job.id}`;
}

/**
 * Applies `change` to the job's progress document under a row lock, recomputing the summary,
 * so concurrent writers (activities of a retried attempt, the API) never lose an update. A
 * progress report (no `jobStatus`) on an ended job changes nothing. Status transitions use
 * {@link markExportStarted}, {@link markExportSucceeded} and {@link markExportEnded} instead,
 * which write the export and its job in one transaction.
 */
export async function updateJobProgress(
  sql: Sql,
  exportId: number,
  change: (progress: JobProgress) => void,
  jobStatus?: ExportStatus,
): Promise<void> {
  await inTransaction(sql, (tx) => applyJobProgress(tx, exportId, change, jobStatus));
}

async function insertJobLog(
  tx: Transaction,
  exportId: number,
  message: string,
  level: string,
): Promise<void> {
  await tx`
    insert into job_logs (job_id, level, message)
    select id, ${level}, ${message} from jobs where data_export_id = ${exportId}`;
}

/**
 * PENDING (or a run reset from the Temporal UI) → STARTED, in one transaction: the export's
 * status and run, its job's status (a job that had ended starts from a fresh progress
 * document) and the log line. Returns false when the export is gone, or when it has ended
 * under this same run (a late attempt after a cancel).
 */
export async function markExportStarted(
  sql: Sql,
  exportId: number,
  run: {
    runId: string | null;
    workflowId: string | null;
    /** The worker's `exportSettingsKey` for the export's format: what will shape its bytes. */
    settingsKey: string;
    message: string;
  },
): Promise<boolean> {
  return await inTransaction(sql, async (tx) => {
    await nameTransition(tx, "transition STARTED");
    const [row] = await tx<{ previous: ExportStatus; run_id: string | null }[]>`
      select status as previous, run_id from data_exports where id = ${exportId} for update`;
    if (!row) return false;
    // a late attempt of the run that already ended (cancelled meanwhile) never reopens it; a
    // new run (a retry, a reset in the Temporal UI) does
    if (ENDED_STATUSES.includes(row.previous) && row.run_id === run.runId) return false;
    await tx`
      update data_exports set status = 'STARTED', error = null, error_stage = null,
        run_id = ${run.runId}, workflow_id = ${run.workflowId}, settings_key = ${run.settingsKey},
        started_at = coalesce(started_at, now()), finished_at = null, updated_at = now()
      where id = ${exportId}`;
    const restart = ENDED_STATUSES.includes(row.previous);
    await applyJobProgress(tx, exportId, (progress) => {
      if (restart) Object.assign(progress, initialProgress());
    }, "STARTED");
    await insertJobLog(tx, exportId, run.message, "info");
    return true;
  });
}

/** What {@link markExportSucceeded} found. */
export type SucceededOutcome = "marked" | "already" | "missing";

/**
 * STARTED → SUCCESS, in one transaction: the export's status and statistics, every stage of its
 * job SUCCESS at progress 1 with `records_exported` and `total_records` equal to the records in
 * the file, the job SUCCESS, and the log line. Idempotent: a retry after it committed finds the
 * same checksum and changes nothing ("already").
 */
export async function markExportSucceeded(
  sql: Sql,
  exportId: number,
  stats: { records: number; fileSize: number; checksum: string; fileUrl: string },
): Promise<SucceededOutcome> {
  return await inTransaction(sql, async (tx) => {
    await nameTransition(tx, "transition SUCCESS");
    const [before] = await tx<{ status: ExportStatus; checksum: string | null }[]>`
      select status, checksum from data_exports where id = ${exportId} for update`;
    if (!before) return "missing";
    if (before.status === "SUCCESS" && before.checksum === stats.checksum) return "already";
    await tx`
      update data_exports set status = 'SUCCESS', record_count = ${stats.records},
        file_size = ${stats.fileSize}, checksum = ${stats.checksum}, upload_id = null,
        error = null, error_stage = null, finished_at = now(), updated_at = now()
      where id = ${exportId}`;
    await applyJobProgress(tx, exportId, (progress) => {
      setStage(progress, STAGES.export.key, {
        status: "SUCCESS",
        progress: 1,
        params: { records_exported: stats.records, total_records: stats.records },
      });
      setStage(progress, STAGES.upload.key, {
        status: "SUCCESS",
        progress: 1,
        params: { file_url: stats.fileUrl },
      });
      for (const stage of progress.stages) {
        stage.status = "SUCCESS";
        stage.progress = 1;
      }
    }, "SUCCESS");
    await insertJobLog(
      tx,
      exportId,
      `export finished: ${stats.records} records, ${stats.fileSize} bytes`,
      "info",
    );
    await insertEndEvents(tx, exportId, "SUCCESS"); // webhook outbox (docs/webhooks.md)
    return "marked";
  });
}

/**
 * PENDING or STARTED (or FAILURE, when a cancel follows) → FAILURE or REVOKED, in one
 * transaction: the export's status, error and stage, its file key cleared, every stage of its
 * job that had not succeeded set to `status` (no stage stays PENDING or STARTED), the error in
 * the job's errors, and the log line. A SUCCESS export and one already in `status` are left as
 * they are (returns false).
 */
export async function markExportEnded(
  sql: Sql,
  exportId: number,
  ending: { status: "FAILURE" | "REVOKED"; message?: string; stage?: string },
): Promise<boolean> {
  const { status } = ending;
  return await inTransaction(sql, async (tx) => {
    await nameTransition(tx, `transition ${status}`);
    const updated = await tx`
      update data_exports set status = ${status}, error = ${ending.message ?? null},
        error_stage = ${ending.stage ?? null}, file_key = null, finished_at = now(),
        updated_at = now()
      where id = ${exportId} and status not in ('SUCCESS', ${status})`;
    if (updated.count === 0) return false;
    await applyJobProgress(tx, exportId, (progress) => {
      for (const stage of progress.stages) {
        if (stage.status !== "SUCCESS") stage.status = status;
      }
      if (ending.message) progress.errors.push(ending.message);
    }, status);
    const text = status === "REVOKED"
      ? "export cancelled"
      : `export failed in ${ending.stage}: ${ending.message}`;
    await insertJobLog(tx, exportId, text, status === "REVOKED" ? "warning" : "error");
    await insertEndEvents(tx, exportId, status); // webhook outbox (docs/webhooks.md)
    return true;
  });
}

/**
 * FAILURE or REVOKED → PENDING for a retry, in one transaction: the export's error and
 * statistics cleared and its job back to a fresh progress document. Returns false when the
 * export is no longer FAILURE or REVOKED.
 */
export async function markExportPending(sql: Sql, exportId: number): Promise<boolean> {
  return await inTransaction(sql, async (tx) => {
    await nameTransition(tx, "transition PENDING");
    const reset = await tx`
      update data_exports set status = 'PENDING', error = null, error_stage = null,
        record_count = 0, file_size = 0, checksum = null, finished_at = null, updated_at = now(),
        source_version = null, global_source_version = null, settings_key = null
      where id = ${exportId} and status in ('FAILURE', 'REVOKED')`;
    if (reset.count === 0) return false;
    await tx`
      update jobs set status = 'PENDING', progress = ${tx.json(initialProgress() as never)},
        finished_at = null, updated_at = now()
      where data_export_id = ${exportId}`;
    await insertJobLog(tx, exportId, "export retried", "info");
    return true;
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
