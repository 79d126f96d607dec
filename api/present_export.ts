/** An export as its caller sees it, the same from every route that answers with one. */
import type { Config } from "../config/mod.ts";
import type { Sql } from "../db/client.ts";
import { queuePositions } from "../db/export_queue.ts";
import type { ExportRow } from "../db/exports.ts";
import { permittedActions, type ProjectAccess } from "../domain/permissions.ts";
import type { ObjectStorage } from "../storage/types.ts";
import type { ExportJson } from "./schemas.ts";
import { serializeExport } from "./serialize.ts";

/**
 * `row` serialized for a caller with `access` to its project ({@link serializeExport}); a
 * waiting (PENDING) export's `queue_position` comes from `positions` (read once for a page of
 * exports) or, when not given, from its own read of the admission queue
 * (db/export_queue.ts `queuePositions`). Every route that answers with an export uses it, so
 * that a rerun, a retry or a list shows the same position a GET does.
 */
export async function presentExport(
  deps: { sql: Sql; storage: ObjectStorage; config: Config },
  row: ExportRow,
  access: ProjectAccess,
  positions?: Map<number, number>,
): Promise<ExportJson> {
  const queue = row.status !== "PENDING"
    ? undefined
    : positions ?? await queuePositions(deps.sql, deps.config.exportMaxRunning);
  return await serializeExport(row, {
    storage: deps.storage,
    config: deps.config,
    permissions: permittedActions(access),
    queuePosition: queue?.get(row.id) ?? null,
  });
}
