/**
 * What the activities of every stage share: their dependencies, and the export's row, format and
 * query context looked up the same way, and its files discarded the same way.
 */
import { Context } from "@temporalio/activity";
import type { Client } from "@temporalio/client";
import type { ApplicationFailure } from "@temporalio/common";
import type { Config } from "../config/mod.ts";
import type { Sql } from "../db/client.ts";
import { removeUnder } from "./export_folder.ts";
import { exportFilters, exportOptions, type ExportRow, findExport } from "../db/exports.ts";
import { exporterFor, getExporter, supportedFormats } from "../registry/mod.ts";
import { exportDownloadUrl } from "../domain/citation.ts";
import { asStream, withByteOrderMark } from "../registry/stream.ts";
import type {
  ExportCardFacts,
  ExportOptions,
  ExportQueryContext,
  StreamExporter,
} from "../registry/types.ts";
import type { ObjectStorage } from "../storage/types.ts";
import { exportEnded, exportNotFound, invalidFilters, unknownFormat } from "./failures.ts";
import { shardPrefix } from "./file_keys.ts";

/** What the activities need from the outside world. */
export interface ActivityDependencies {
  sql: Sql;
  storage: ObjectStorage;
  config: Config;
  /**
   * Where exports count and stream (`EXPORT_DATABASE_URL`, db/replica.ts `connectExportReads`);
   * absent: `sql`. Only reads in snapshots run there; every write goes to `sql`.
   */
  readSql?: Sql;
  /** Used by the delete workflow to stop a running export. */
  temporal?: Client;
}

/** The dependencies, and the lookups and clean-ups every stage's activities share. */
export interface ExportAccess extends ActivityDependencies {
  /** The export read database: `deps.readSql`, or `sql` when there is none. */
  readSql: Sql;
  /**
   * The URL of {@link ExportAccess.readSql} (`EXPORT_DATABASE_URL` with `deps.readSql`, else
   * `DATABASE_URL`): a snapshot's holder connects there, since a snapshot can only be imported
   * on the server that exported it.
   */
  readDatabaseUrl: string;
  /** The export's row; fails (non-retryable) when it is gone. */
  requireExport(exportId: number): Promise<ExportRow>;
  /**
   * The format's exporter as a stream, as the options make it (`exporterFor`: the variant of
   * its options, over the chosen `columns`), with a byte order mark when Excel-compatible.
   */
  requireExporter(format: string, options?: ExportOptions): StreamExporter;
  /** Fails (non-retryable) when the export's capture set was deleted meanwhile. */
  checkFilters(row: ExportRow): Promise<void>;
  /** The export's query context, after {@link ExportAccess.checkFilters}. */
  queryContext(row: ExportRow): Promise<ExportQueryContext>;
  /** Aborts the export's in-progress upload and removes a published file, if any. */
  discardFiles(row: ExportRow): Promise<void>;
  /**
   * Why export `exportId` no longer takes a file (`recordExportFile` refused): non-retryable
   * `ExportNotFound` when it is gone, else `ExportEnded` with its status.
   */
  notRunning(exportId: number): Promise<ApplicationFailure>;
  /** Aborts the incomplete uploads and removes the objects under a shard prefix. */
  discardShardFiles(prefix: string): Promise<void>;
}

/**
 * What the export's row says that its archive's data card states (`ExportCardFacts`), and
 * what dates its archive entries (`createdAt`): fixed for the export's life, so every shard
 * and every retry writes them alike.
 */
export function exportCardFacts(row: ExportRow, publicBaseUrl: string): ExportCardFacts {
  return {
    exportId: row.id,
    filtersDisplay: row.filters_display ?? {},
    requestedBy: row.user_name || row.user_email,
    createdAt: row.created_at.toISOString(),
    downloadUrl: exportDownloadUrl(publicBaseUrl, row.id),
  };
}

/**
 * The workflow run of the activity that calls it (null outside an activity): what fences its
 * writes on the export (`data_exports.run_id`, db/job_progress.ts `ownsExport`).
 */
export function currentRunId(): string | null {
  try {
    return Context.current().info.workflowExecution?.runId ?? null;
  } catch {
    return null;
  }
}

/** The {@link ExportAccess} over `deps`. */
export function createExportAccess(deps: ActivityDependencies): ExportAccess {
  const { sql, storage, config } = deps;

  async function requireExport(exportId: number): Promise<ExportRow> {
    const row = await findExport(sql, exportId);
    if (!row) throw exportNotFound(exportId);
    return row;
  }

  function requireExporter(format: string, options: ExportOptions = {}): StreamExporter {
    const found = getExporter(format);
    if (!found) throw unknownFormat(format, supportedFormats());
    const exporter = exporterFor(found, options);
    const excel = options.excel_compatible === true &&
      (exporter.acceptedOptions ?? []).includes("excel_compatible");
    return excel ? withByteOrderMark(asStream(exporter)) : asStream(exporter);
  }

  /** Fails (non-retryable) when the export's capture set was deleted meanwhile. */
  async function checkFilters(row: ExportRow): Promise<void> {
    const filters = exportFilters(row);
    if (filters.collection_id === undefined) return;
    const [found] = await sql`
      select 1 from source_image_collections
      where id = ${filters.collection_id} and project_id = ${row.project_id}`;
    if (!found) {
      throw invalidFilters(
        `capture set no longer exists in project ${row.project_id}: ${filters.collection_id}`,
      );
    }
  }

  async function queryContext(row: ExportRow): Promise<ExportQueryContext> {
    await checkFilters(row);
    return {
      sql,
      projectId: row.project_id,
      filters: exportFilters(row),
      settings: config.formats,
      card: exportCardFacts(row, config.publicBaseUrl),
      options: exportOptions(row),
    };
  }

  /** Aborts the export's in-progress upload and removes a published file, if any. */
  async function discardFiles(row: ExportRow): Promise<void> {
    if (row.upload_id && row.file_key) {
      await storage.abortUpload({ key: row.file_key, uploadId: row.upload_id });
    }
    if (row.file_key) await storage.deleteObject(row.file_key);
    await discardShardFiles(shardPrefix(config.storagePrefix, row.file_uuid));
    await sql`update data_exports set upload_id = null where id = ${row.id}`;
  }

  async function notRunning(exportId: number): Promise<ApplicationFailure> {
    const row = await findExport(sql, exportId);
    return row ? exportEnded(exportId, row.status) : exportNotFound(exportId);
  }

  /** Aborts the incomplete uploads and removes the objects under a shard prefix. */
  async function discardShardFiles(prefix: string): Promise<void> {
    await removeUnder(storage, prefix);
  }

  return {
    ...deps,
    readSql: deps.readSql ?? sql,
    readDatabaseUrl: deps.readSql ? config.exportDatabaseUrl : config.databaseUrl,
    requireExport,
    requireExporter,
    checkFilters,
    queryContext,
    discardFiles,
    notRunning,
    discardShardFiles,
  };
}
