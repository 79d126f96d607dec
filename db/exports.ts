// Long because it holds the export row, its reads and the reuse rule; transitions and job progress are in their own files.
/**
 * Queries on the export tables (`data_exports`, `jobs`, `job_logs`). Both the API and the
 * activities use these, so that a status or a progress stage is written in one place only: the
 * export rows here, their state transitions in `export_transitions.ts`, their jobs' progress and
 * log in `job_progress.ts` (re-exported here, so that callers import the export tables from one
 * module).
 */
import type { ExportFilters, ExportOptions } from "../registry/types.ts";
import { normalizeOptions } from "../registry/option_defaults.ts";
import type postgres from "postgres";
import type { Sql } from "./client.ts";
import type { SourceVersions } from "./snapshot.ts";
import { inTransaction } from "./transaction.ts";

import {
  applyJobProgress,
  type ExportStatus,
  initialProgress,
  insertJobLog,
  type JobProgress,
  ownsExport,
  setStage,
  STAGES,
  type Transaction,
} from "./job_progress.ts";

export {
  appendJobLog,
  applyJobProgress,
  ENDED_STATUSES,
  type ExportStatus,
  initialProgress,
  jobLogs,
  type JobProgress,
  ownsExport,
  type ProgressStage,
  putSkippedCount,
  putStageParam,
  setStage,
  type StageParam,
  STAGES,
  updateJobProgress,
  updateRunProgress,
} from "./job_progress.ts";
export {
  type EndedFiles,
  markExportEnded,
  markExportPending,
  markExportStarted,
  markExportSucceeded,
  recordExportFile,
  type SucceededOutcome,
} from "./export_transitions.ts";

/** A `data_exports` row joined with its job. */
export interface ExportRow {
  id: number;
  user_id: number | null;
  user_name: string | null;
  user_email: string | null;
  project_id: number;
  project_slug: string;
  project_name: string;
  /** The project owner's name, else e-mail; null without an owner. */
  project_owner_name: string | null;
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
  /** Images (crops, frames) left out, as in skipped.csv; null for formats without images. */
  skipped_count: number | null;
  /** The change markers of the snapshot the file is made from (db/snapshot.ts); null before. */
  source_version: number | string | null;
  global_source_version: number | string | null;
  /** The settings that shaped the file (registry/settings_key.ts); null before it started. */
  settings_key: string | null;
  /** The settings themselves, by name (registry/settings_key.ts `exportSettingsDocument`). */
  settings: Record<string, unknown> | null;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  /** When housekeeping deletes the file of this SUCCESS export; null: kept forever. */
  expires_at: Date | null;
  job_id: number;
  job_name: string;
  job_status: ExportStatus;
  job_progress: JobProgress;
  /** Seconds since `updated_at` by the database's clock, as of the read. */
  unchanged_seconds: number;
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
 * The export's format options: all but `excel_compatible` and `columns`, which are fields of
 * the request and of the export object themselves (an image format's `split`, …).
 */
export function formatOptions(row: Pick<ExportRow, "filters">): Record<string, unknown> {
  const { excel_compatible: _excel, columns: _columns, ...options } = exportOptions(row);
  return options;
}

/**
 * The `filters` document an export stores: the validated filters plus the options that are set
 * and differ from their declared default (under `_options`, normalised by `normalizeOptions`,
 * registry/option_defaults.ts: `{"split_seed": ""}` stores as no option at all). Two requests
 * with equal documents ask for the same file, so a request with other `columns` is another
 * request, and one naming a default is the request that leaves it out.
 */
export function storedFilters(
  filters: Record<string, unknown>,
  options: ExportOptions = {},
): Record<string, unknown> {
  const set = normalizeOptions(options);
  return Object.keys(set).length === 0 ? filters : { ...filters, [OPTIONS_KEY]: set };
}

/** Advisory lock namespace of identical export requests (see {@link createOrReuseExport}). */
const IDENTICAL_REQUESTS_LOCK = 727_002;

/**
 * A SUCCESS export is reused only while at least this much of its retention is left (or half of
 * its retention, `expires_at - finished_at`, when that is shorter): a reuse answers with a file
 * the caller can still download, not one housekeeping deletes moments later (docs/retention.md).
 */
export const REUSE_MIN_RETENTION_SECONDS = 3600;

/** What {@link createOrReuseExport} did. */
export interface CreatedOrReused {
  export: ExportIdentity;
  /** True when an identical export (SUCCESS, or still running) was returned. */
  reused: boolean;
  /** SUCCESS exports of the same request found without their file, now marked FAILURE. */
  lost: number[];
}

/**
 * What an export request names, as its row stores it: who asks (`userId`), for which project
 * and format, the filters (`filters`, as the registry reads them) and their display form
 * (`filtersDisplay`, names as the user gave them); a schedule stores the same.
 */
export interface ExportScope {
  userId: number;
  projectId: number;
  format: string;
  filters: Record<string, unknown>;
  filtersDisplay: Record<string, unknown>;
}

/** An export request's row: its {@link ExportScope} and format options (only those set are stored). */
export interface ExportRequestRow extends ExportScope {
  options?: ExportOptions;
}

/**
 * Creates the export and its job, or returns an identical one instead. Identical means same
 * project, format, stored filters (options included) and settings key (registry/settings_key.ts)
 * over unchanged data: a SUCCESS export whose recorded change markers (db/snapshot.ts) are still
 * current and whose file `headFile` finds at its recorded size, else a PENDING or STARTED one that has not
 * counted yet or counted this same data. A SUCCESS export whose file is gone is marked FAILURE
 * (`lost`) and never returned, and so is a running one whose workflow is gone (`workflowLost`).
 * One transaction under an advisory lock on the request, so identical requests arriving
 * together share the one export instead of starting one each.
 *
 * Races it closes: the export found is held `FOR SHARE` until the transaction ends (after
 * asking `workflowLost`, whose ending of the export updates the row from another connection),
 * so expiry (`expireExport`, which locks the row to delete its file) and the delete workflow's
 * first step ({@link markExportDeleting}) wait for the reuse, and then find it answered; expiry
 * is judged by `clock_timestamp()`, not the transaction's start, and a SUCCESS export is not
 * reused within {@link REUSE_MIN_RETENTION_SECONDS} (or half its retention) of its
 * `expires_at`; an export being deleted (`delete_requested_at`) is never reused. A running
 * export that has not counted is reused only while its reads are not fixed yet (`read_lsn`
 * differs from `request_lsn`: `awaitReplica`, db/replica.ts `fixReadPosition`), and its
 * `request_lsn` is raised to this transaction's `pg_current_wal_lsn()`, so that its count
 * waits for (and sees) every write committed before this request (docs/replica.md).
 * Source of the rule: GBIF's reuse of identical downloads; issue "every read tells the truth";
 * review of reuse races (replica read-your-writes, expiry, delete).
 */
export async function createOrReuseExport(
  sql: Sql,
  input: ExportRequestRow & {
    /** What this deployment's settings make of the format (`exportSettingsKey`). */
    settingsKey: string;
    /** False: always create (`force`). */
    reuse: boolean;
    /** What storage holds at `key`: its size in bytes, or null when it holds nothing. */
    headFile(key: string): Promise<{ size: number } | null>;
    /**
     * Asked of a PENDING or STARTED export unchanged for `settledSeconds` (`unchangedSeconds`)
     * before it is reused: true when its workflow is not running, which ended it
     * (activities/lost_exports.ts); it is then not reused. Absent: running exports are reused
     * as they are.
     */
    workflowLost?(export_: ExportIdentity, unchangedSeconds: number): Promise<boolean>;
    /**
     * Seconds a running export must be unchanged before `workflowLost` is asked
     * (`LOST_EXPORT_GRACE_SECONDS`, activities/lost_exports.ts): younger rows may still await
     * their workflow's start.
     */
    settledSeconds: number;
  },
): Promise<CreatedOrReused> {
  const filters = storedFilters(input.filters, input.options);
  return await inTransaction(sql, async (tx) => {
    const lost: number[] = [];
    if (input.reuse) {
      // keyed by the request as jsonb prints it (keys sorted): requests naming the same options
      // in another key order take the same lock (keyed by their JSON text, they took two, both
      // share-locked the one export they match, and deadlocked updating it)
      await tx`select pg_advisory_xact_lock(${IDENTICAL_REQUESTS_LOCK}, hashtext(
        jsonb_build_array(${input.projectId}::bigint, ${input.format}::text,
          ${tx.json(filters as never)}::jsonb)::text))`;
      // what makes an export `e` reusable, in the search and again under the row lock
      const reusable = () =>
        tx`
          e.project_id = ${input.projectId} and e.format = ${input.format}
          and e.filters = ${tx.json(filters as never)}::jsonb
          and coalesce(e.settings_key, ${input.settingsKey}) = ${input.settingsKey}
          and e.delete_requested_at is null
          and (
            (e.status = 'SUCCESS' and e.settings_key is not null and e.file_key is not null
              and (e.expires_at is null or e.expires_at > clock_timestamp() + least(
                make_interval(secs => ${REUSE_MIN_RETENTION_SECONDS}::int),
                (e.expires_at - e.finished_at) / 2))
              and e.source_version = (select version from export_source_versions
                                      where project_id = e.project_id)
              and e.global_source_version = (select version from export_source_versions
                                             where project_id = 0))
            or (e.status in ('PENDING', 'STARTED') and (
              (e.source_version is null and e.read_lsn is distinct from e.request_lsn) or (
              e.source_version = (select version from export_source_versions
                                  where project_id = e.project_id)
              and e.global_source_version = (select version from export_source_versions
                                             where project_id = 0)))))`;
      while (true) {
        const [same] = await tx<
          (ExportIdentity & {
            status: ExportStatus;
            file_key: string;
            file_size: number;
            unchanged: number;
          })[]
        >`
          select e.id, e.file_uuid::text, e.status, e.file_key, e.file_size,
            ${unchangedSeconds(tx)} as unchanged
          from data_exports e
          where ${reusable()}
          order by (e.status = 'SUCCESS') desc, e.id desc limit 1`;
        if (!same) break;
        const identity = { id: same.id, file_uuid: same.file_uuid };
        if (same.status !== "SUCCESS") {
          // a running export whose workflow is gone was just ended FAILURE: look again (asked
          // before the row lock below: ending it updates the row from another connection)
          const settled = same.unchanged >= input.settledSeconds;
          if (settled && await input.workflowLost?.(identity, same.unchanged)) continue;
        }
        // Held FOR SHARE until this transaction ends: expiry, the delete workflow's mark and
        // awaitReplica's fixing of the reads (all UPDATE the row) wait for this answer. Changed
        // since the search: look again.
        const [held] = await tx<{ uncounted: boolean }[]>`
          select e.source_version is null as uncounted from data_exports e
          where e.id = ${same.id} and e.status = ${same.status} and ${reusable()}
          for share of e`;
        if (!held) continue;
        if (same.status !== "SUCCESS") {
          if (held.uncounted) {
            // not counted yet: its reads must cover what this request's writer committed
            // (docs/replica.md); awaitReplica cannot fix them while the row is held
            await tx`
              update data_exports set request_lsn = greatest(request_lsn, pg_current_wal_lsn())
              where id = ${same.id}`;
          }
          return { export: identity, reused: true, lost };
        }
        const head = await input.headFile(same.file_key);
        if (head?.size === Number(same.file_size)) {
          return { export: identity, reused: true, lost };
        }
        if (await markFileLost(tx, same, head)) lost.push(same.id);
      }
    }
    const created = await insertExportIn(tx, { ...input, filters });
    return { export: created, reused: false, lost };
  });
}

/**
 * SUCCESS → FAILURE for an export whose file storage no longer holds as it was written (`head`:
 * what storage holds at its key, null for nothing: removed by hand, a lost bucket; another size:
 * overwritten or truncated): inside `tx`, the export (no file key, size or checksum: there is no
 * such file), its job (the upload stage FAILURE without its `file_url`) and the log line, so
 * that no read offers a download that fails or describes a file that is not there. A row no
 * longer SUCCESS is left as it is. Returns true when it ended the export.
 */
export async function markFileLost(
  tx: Transaction,
  export_: { id: number; file_key: string; file_size: number | string },
  head: { size: number } | null,
): Promise<boolean> {
  const message = head === null
    ? `the file is no longer in storage: ${export_.file_key}`
    : `the file in storage is not the one exported: ${export_.file_key} holds ${head.size} ` +
      `bytes, the export wrote ${export_.file_size}`;
  const ended = await tx`
    update data_exports set status = 'FAILURE', error = ${message}, error_stage = 'storage',
      file_key = null, file_size = 0, checksum = null, updated_at = now()
    where id = ${export_.id} and status = 'SUCCESS'
    returning 1`;
  if (ended.length === 0) return false;
  await applyJobProgress(tx, export_.id, (progress) => {
    progress.errors.push(message);
    setStage(progress, STAGES.upload.key, { status: "FAILURE", params: { file_url: null } });
  }, "FAILURE");
  await insertJobLog(tx, export_.id, message, "error");
  return true;
}

/**
 * Records, in one transaction, the total a snapshot counted (the export stage's
 * `total_records`), its warnings and that snapshot's change markers (for {@link findReusableExport} and the
 * streaming activity's consistency check), only while the export is STARTED under run
 * `counted.runId` ({@link ownsExport}): a count of an earlier run arriving after a retry or a
 * reset changes nothing. Returns false then.
 */
export async function recordCount(
  sql: Sql,
  exportId: number,
  counted: {
    total: number;
    versions: SourceVersions;
    /** Warning lines for the job log (each written once, however often the count runs). */
    warnings?: readonly string[];
    /** The workflow run of the activity that counted. */
    runId: string | null;
  },
): Promise<boolean> {
  return await inTransaction(sql, async (tx) => {
    if (!(await ownsExport(tx, exportId, counted.runId))) return false;
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
    return true;
  });
}

/** The change markers an export recorded (null before it counted), as {@link SourceVersions}. */
export function recordedSourceVersions(
  row: Pick<ExportRow, "source_version" | "global_source_version">,
): SourceVersions | null {
  if (row.source_version === null || row.global_source_version === null) return null;
  return { project: String(row.source_version), global: String(row.global_source_version) };
}

/**
 * Creates the export row and its job in one transaction (no reuse: see {@link createOrReuseExport}).
 * With `schedule`, the row names its schedule and scheduled run (`schedule_id`,
 * `schedule_run_id`) in the same INSERT, so that no committed row of a scheduled run lacks the
 * run id that a retried attempt looks it up by. Throws the database's unique violation (23505)
 * when a row of that run exists already, and its foreign key violation (23503) when the schedule
 * is gone.
 */
export async function insertExport(
  sql: Sql,
  input: ExportRequestRow & { schedule?: ScheduledRunRef },
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
    schedule?: ScheduledRunRef;
  },
): Promise<ExportIdentity> {
  const [row] = await tx<ExportIdentity[]>`
    insert into data_exports (user_id, project_id, format, filters, filters_display,
                              schedule_id, schedule_run_id)
    values (${input.userId}, ${input.projectId}, ${input.format},
            ${tx.json(input.filters as never)}, ${tx.json(input.filtersDisplay as never)},
            ${input.schedule?.scheduleId ?? null}, ${input.schedule?.runId ?? null})
    returning id, file_uuid::text`;
  await tx`update data_exports set workflow_id = ${exportWorkflowId(row)} where id = ${row.id}`;
  await tx`
    insert into jobs (data_export_id, name, progress)
    values (${row.id}, ${`Export of ${input.format} #${row.id}`},
            ${tx.json(initialProgress() as never)})`;
  return row;
}

/** The scheduled run an export is made for: its schedule's id and the run's workflow id. */
export interface ScheduledRunRef {
  scheduleId: number;
  /** Unique per export (`data_exports.schedule_run_id`). */
  runId: string;
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

/**
 * Marks the export as being deleted (`delete_requested_at`, kept when set), the delete
 * workflow's first step: from then on {@link createOrReuseExport} never hands it out. The UPDATE
 * takes the row lock, so it waits for a reuse in flight (which holds the row `FOR SHARE`).
 * Returns false when the row is gone.
 */
export async function markExportDeleting(sql: Sql, exportId: number): Promise<boolean> {
  const marked = await sql`
    update data_exports set delete_requested_at = coalesce(delete_requested_at, now())
    where id = ${exportId}
    returning 1`;
  return marked.length > 0;
}

/** The workflow id of an export's deletion: `data-export-delete-<id>-<file_uuid>`. */
export function deleteWorkflowId(export_: ExportIdentity): string {
  return `data-export-delete-${export_.id}-${export_.file_uuid}`;
}

/**
 * The seconds (float8) an export row `e` (the table aliased `e`) has been unchanged: `now() -
 * updated_at` by the database's clock, the one clock that decides when a running export whose
 * workflow is gone counts as lost (`LOST_EXPORT_GRACE_SECONDS`, activities/lost_exports.ts):
 * `createOrReuseExport`, the rows the API reads (`ExportRow.unchanged_seconds`) and
 * housekeeping all measure it so.
 */
export function unchangedSeconds(sql: Sql): postgres.PendingQuery<postgres.Row[]> {
  return sql`extract(epoch from now() - e.updated_at)::float8`;
}

const exportColumns = (sql: Sql) =>
  sql`
  e.*, u.name as user_name, u.email as user_email, p.slug as project_slug,
  p.name as project_name,
  (select coalesce(nullif(ow.name, ''), ow.email) from users ow where ow.id = p.owner_id)
    as project_owner_name,
  j.id as job_id, j.name as job_name, j.status as job_status, j.progress as job_progress,
  ${unchangedSeconds(sql)} as unchanged_seconds`;

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
