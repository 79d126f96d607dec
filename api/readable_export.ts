/** The one rule for which export a caller may see, shared by every route that names an export. */
import type { Sql } from "../db/client.ts";
import { type ExportRow, findExport } from "../db/exports.ts";
import { canRead, type ProjectAccess } from "../domain/permissions.ts";
import { loadProjectAccess } from "../domain/project_access.ts";
import type { CurrentUser } from "../domain/users.ts";

/**
 * Export `id` with the caller's access to its project, or undefined when there is no such
 * export or `user` may not read its project (both answered as a 404 `export not found: <id>`,
 * so that a caller cannot tell one from the other).
 */
export async function findReadableExport(
  sql: Sql,
  request: { user: CurrentUser; id: number },
): Promise<{ row: ExportRow; access: ProjectAccess } | undefined> {
  const row = await findExport(sql, request.id);
  const access = row && await loadProjectAccess(sql, request.user, row.project_id);
  return row && access && canRead(access) ? { row, access } : undefined;
}
