import type { Sql } from "../db/client.ts";
import type { CurrentUser } from "./users.ts";
import type { ProjectAccess, ProjectRole } from "./permissions.ts";

/** The caller's access to a project, or undefined when the project does not exist. */
export async function loadProjectAccess(
  sql: Sql,
  user: CurrentUser,
  projectId: number,
): Promise<ProjectAccess | undefined> {
  const [row] = await sql<{ draft: boolean; owner_id: number | null; role: ProjectRole | null }[]>`
    select p.draft, p.owner_id, m.role
    from projects p
    left join project_memberships m on m.project_id = p.id and m.user_id = ${user.id}
    where p.id = ${projectId}`;
  if (!row) return undefined;
  const role: ProjectRole | null = row.owner_id === user.id ? "owner" : row.role;
  return { superuser: user.superuser, role, draft: row.draft };
}
