/**
 * The job of an export (`jobs`, `job_logs`): its status, its progress document as the platform's
 * UI renders it, and its log. Export state transitions (`export_transitions.ts`) and progress
 * reports write it through these, under the job's row lock.
 */
import type { Sql } from "./client.ts";
import { inTransaction } from "./transaction.ts";

/**
 * Status of an export and of its job (the platform's Celery-style names), plus EXPIRED: a
 * SUCCESS export whose file housekeeping deleted when its retention ended (db/retention.ts).
 */
export type ExportStatus = "PENDING" | "STARTED" | "SUCCESS" | "FAILURE" | "REVOKED" | "EXPIRED";

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

/** A connection inside a transaction (db/transaction.ts `inTransaction`). */
export type Transaction = Sql;

/** The statuses in which an export has ended: its file and its job no longer change. */
export const ENDED_STATUSES: readonly ExportStatus[] = [
  "SUCCESS",
  "FAILURE",
  "REVOKED",
  "EXPIRED",
];

/**
 * Applies `change` to the job's progress document inside `tx` under a row lock, recomputing the
 * summary. Without `jobStatus` (a progress report) it changes nothing once the job has ended:
 * a late report of an activity that was cancelled or retried never reopens an ended export.
 * With `jobStatus`, the job's `finished_at` is set by SUCCESS, FAILURE and REVOKED, kept by
 * EXPIRED (the job ended when its export did) and cleared by any other (a retry's PENDING).
 */
export async function applyJobProgress(
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
        then now() when ${jobStatus ?? null}::text = 'EXPIRED' then finished_at
        when ${jobStatus ?? null}::text is not null then null else finished_at end,
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

/**
 * True when export `exportId` is STARTED under run `runId` (`data_exports.run_id`: the workflow
 * run that owns the row, recorded by its STARTED transition; null matches null), its row then
 * locked FOR NO KEY UPDATE until `tx` ends: a retry (`markExportPending`), a reset's new run or
 * an end waits for the write, and a write after them finds the row no longer its run's. The
 * fence of every write an activity makes on a running export. Source: a late progress write of
 * an earlier run overwrote a retried export's progress (docs/operations.md, "Retry").
 */
export async function ownsExport(
  tx: Transaction,
  exportId: number,
  runId: string | null,
): Promise<boolean> {
  const [row] = await tx`
    select 1 from data_exports
    where id = ${exportId} and status = 'STARTED' and run_id is not distinct from ${runId}
    for no key update`;
  return row !== undefined;
}

/**
 * {@link updateJobProgress} fenced to run `runId` ({@link ownsExport}): applies `change` (and
 * `also`, other writes of the same report, in the same transaction) only while the export is
 * STARTED under that run. Returns false, changing nothing, when it is not (ended, retried, a
 * newer run's, or gone).
 */
export async function updateRunProgress(
  sql: Sql,
  exportId: number,
  run: { runId: string | null; also?: (tx: Transaction) => Promise<void> },
  change: (progress: JobProgress) => void,
): Promise<boolean> {
  return await inTransaction(sql, async (tx) => {
    if (!(await ownsExport(tx, exportId, run.runId))) return false;
    await applyJobProgress(tx, exportId, change);
    if (run.also) await run.also(tx);
    return true;
  });
}

/** Appends a line to the job log inside `tx`. */
export async function insertJobLog(
  tx: Transaction,
  exportId: number,
  message: string,
  level: string,
): Promise<void> {
  await tx`
    insert into job_logs (job_id, level, message)
    select id, ${level}, ${message} from jobs where data_export_id = ${exportId}`;
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

/**
 * Sets one parameter of a stage, adding it after the others when the stage has none of its key
 * (a parameter only some formats have, such as `skipped_count`). A missing stage is ignored.
 */
export function putStageParam(progress: JobProgress, key: string, param: StageParam): void {
  const stage = progress.stages.find((s) => s.key === key);
  if (!stage) return;
  const found = stage.params.find((p) => p.key === param.key);
  if (found) found.value = param.value;
  else stage.params.push({ ...param });
}

/**
 * Sets the export stage's `skipped_count` (images left out, as in the archive's skipped.csv),
 * adding it when the stage has none yet: formats that fetch no images never have it.
 */
export function putSkippedCount(progress: JobProgress, skipped: number): void {
  putStageParam(progress, STAGES.export.key, {
    key: "skipped_count",
    name: "Number of images left out (skipped.csv)",
    value: skipped,
  });
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
