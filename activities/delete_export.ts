/** The delete workflow's stages: stop the export's workflow, remove its file, delete its rows. */
import { Context } from "@temporalio/activity";
import { exportWorkflowId, findExport, markExportDeleting } from "../db/exports.ts";
import type { ExportAccess } from "./export_access.ts";

/** `stopExportWorkflow`, `removeExportFile` and `deleteExportRows`. */
// deno-lint-ignore explicit-function-return-type
export function createDeleteExportActivities(access: ExportAccess) {
  const { sql, discardFiles } = access;

  return {
    /**
     * Marks the export as being deleted (`markExportDeleting`: identical requests no longer
     * reuse it), then cancels its workflow (if running) and waits until it has closed.
     */
    async stopExportWorkflow(input: { exportId: number }): Promise<void> {
      if (!access.temporal) throw new Error("stopExportWorkflow needs a Temporal client");
      await markExportDeleting(sql, input.exportId);
      const row = await findExport(sql, input.exportId);
      if (!row) return; // nothing left that its workflow could write to
      const handle = access.temporal.workflow.getHandle(exportWorkflowId(row));
      const isRunning = async () => {
        try {
          return (await handle.describe()).status.name === "RUNNING";
        } catch {
          return false; // never started or already gone
        }
      };
      if (!(await isRunning())) return;
      await handle.cancel().catch(() => {});
      while (await isRunning()) {
        Context.current().heartbeat();
        await Context.current().sleep(500);
      }
    },

    /** Removes the export's file and any incomplete upload. Idempotent. */
    async removeExportFile(input: { exportId: number }): Promise<void> {
      const row = await findExport(sql, input.exportId);
      if (row) await discardFiles(row);
    },

    /** Deletes the export row (its job and log lines cascade). Idempotent. */
    async deleteExportRows(input: { exportId: number }): Promise<void> {
      await sql`delete from data_exports where id = ${input.exportId}`;
    },
  };
}
