/** The first stages: resolve the export's format and file key (marking it STARTED), count its records. */
import { Context } from "@temporalio/activity";
import { exportOptions, findExport, markExportStarted, recordCount } from "../db/exports.ts";
import { readConsistently, readSnapshot } from "../db/snapshot.ts";
import { withoutParallelWorkers } from "../db/client.ts";
import { impossibleTimeLogLines } from "../registry/impossible_times.ts";
import { exportSettingsDocument, exportSettingsKey } from "../registry/settings_key.ts";
import { requestedBy } from "../workflows/search_attributes.ts";
import type { ExportAccess } from "./export_access.ts";
import { exportEnded, exportNotFound } from "./failures.ts";
import { exportFileKey } from "./file_keys.ts";
import { endStatementsWithAttempt, keepAlive } from "./keep_alive.ts";
import type { ResolvedExport } from "./types.ts";

/** `resolveExporter` and `countRecords`. */
// deno-lint-ignore explicit-function-return-type
export function createResolveAndCountActivities(access: ExportAccess) {
  const { sql, readSql, config, requireExport, requireExporter, queryContext } = access;
  return {
    /** Looks up the export and its format; marks the export STARTED. */
    async resolveExporter(input: { exportId: number }): Promise<ResolvedExport> {
      return await keepAlive(async () => {
        const row = await requireExport(input.exportId);
        // the options may choose another container (extension, content type): the file's key
        const exporter = requireExporter(row.format, exportOptions(row));
        await queryContext(row);
        const fileKey = exportFileKey({
          storagePrefix: config.storagePrefix,
          fileUuid: row.file_uuid,
          projectSlug: row.project_slug,
          exportId: row.id,
        }, exporter.extension);
        const { workflowExecution } = Context.current().info;
        const runId = workflowExecution?.runId ?? null;
        const started = await markExportStarted(sql, row.id, {
          runId,
          workflowId: workflowExecution?.workflowId ?? null,
          settingsKey: await exportSettingsKey(exporter, config.formats),
          settings: exportSettingsDocument(exporter, config.formats),
          message: `export started: format ${row.format}, run ${runId}`,
        });
        if (!started) {
          // gone, or ended under this very run while this attempt was in flight (a cancel), or
          // cancelled (REVOKED: only a retry reopens it)
          const now = await findExport(sql, row.id);
          if (!now) throw exportNotFound(row.id);
          throw exportEnded(row.id, now.status);
        }
        return {
          exportId: row.id,
          projectId: row.project_id,
          requestedBy: requestedBy(row),
          format: row.format,
          extension: exporter.extension,
          contentType: exporter.contentType,
          fileKey,
        };
      });
    },

    /**
     * One COUNT with the export's filters, in a repeatable-read snapshot that also reads the
     * source change markers; stores both (the stage's total, `source_version`) in one
     * transaction. The streaming activity compares its own snapshot's markers with these. Its
     * statements end with the attempt (`endStatementsWithAttempt`).
     */
    async countRecords(input: { exportId: number }): Promise<number> {
      return await keepAlive(async () => {
        const row = await requireExport(input.exportId);
        const exporter = requireExporter(row.format);
        const query = await queryContext(row);
        const { total, versions, warnings } = await readConsistently(readSql, async (tx) => {
          // a count the attempt gives up on is cancelled, not left running beside its retry;
          // one backend's work (parallel hash joins stall on a busy server)
          await endStatementsWithAttempt(tx);
          await withoutParallelWorkers(tx);
          return {
            versions: await readSnapshot(tx, row.project_id),
            total: await exporter.count({ ...query, sql: tx }),
            // impossible source times the file leaves empty (registry/time_sql.ts), counted once
            warnings: await impossibleTimeLogLines(row.format, { ...query, sql: tx }),
          };
        });
        // only while this run owns the export: a late count of an earlier run changes nothing
        const runId = Context.current().info.workflowExecution?.runId ?? null;
        if (!(await recordCount(sql, row.id, { total, versions, warnings, runId }))) {
          throw await access.notRunning(row.id);
        }
        return total;
      });
    },
  };
}
