/**
 * Who may do what with exports: the platform's roles, with its listing leak fixed (a draft
 * project's exports are visible only to its members, owner and superusers).
 */

/** An action on an export. */
export type ExportAction = "create" | "delete" | "cancel" | "retry";

/** Project roles (memberships), plus the owner. */
export type ProjectRole =
  | "basic_member"
  | "researcher"
  | "ml_data_manager"
  | "project_manager"
  | "owner";

const ALLOWED: Record<ProjectRole, readonly ExportAction[]> = {
  basic_member: [],
  researcher: ["create", "delete"],
  ml_data_manager: ["cancel", "retry"],
  project_manager: ["create", "delete", "cancel", "retry"],
  owner: ["create", "delete", "cancel", "retry"],
};

/** What the API knows about a caller in one project. */
export interface ProjectAccess {
  superuser: boolean;
  /** The caller's role in the project, or null for a non-member. */
  role: ProjectRole | null;
  draft: boolean;
}

/** Whether the caller may read the project's exports. */
export function canRead(access: ProjectAccess): boolean {
  return access.superuser || !access.draft || access.role !== null;
}

/** Whether the caller may perform `action` on the project's exports. */
export function can(access: ProjectAccess, action: ExportAction): boolean {
  if (access.superuser) return true;
  return access.role !== null && ALLOWED[access.role].includes(action);
}

/** The actions the caller may perform, for the `user_permissions` field. */
export function permittedActions(access: ProjectAccess): ExportAction[] {
  return (["create", "delete", "cancel", "retry"] as const).filter((a) => can(access, a));
}

/**
 * Whether the caller may extend an export's retention (docs/retention.md): the user who
 * requested it, while they may still read the project, or whoever may manage the project's
 * exports (project manager, owner, superuser). Source of the rule: GBIF, where a download's
 * creator (or an administrator) postpones its `eraseAfter`.
 */
export function canExtend(
  access: ProjectAccess,
  caller: { userId: number; exportUserId: number | null },
): boolean {
  if (!canRead(access)) return false;
  if (access.superuser || access.role === "owner" || access.role === "project_manager") {
    return true;
  }
  return caller.exportUserId !== null && caller.exportUserId === caller.userId;
}

/**
 * Whether the caller may see where one of an export's webhook events goes (its URL, and the
 * error texts of its attempts, which name it) on `GET /api/v2/exports/<id>/deliveries/`
 * (docs/webhooks.md). A project webhook's URL: whoever may manage the project's webhooks (the
 * right to create exports, as `GET /api/v2/projects/<id>/webhooks/` requires). A `notify_url`:
 * the user who requested the export, and superusers. Such URLs are often capabilities in
 * themselves (Slack's and Teams' incoming webhooks carry their secret in the path), so a reader
 * of the export who may not list the webhooks sees neither.
 */
export function canSeeDeliveryDestination(
  access: ProjectAccess,
  caller: { userId: number; exportUserId: number | null; projectWebhook: boolean },
): boolean {
  if (!canRead(access)) return false;
  if (caller.projectWebhook) return can(access, "create");
  return access.superuser ||
    (caller.exportUserId !== null && caller.exportUserId === caller.userId);
}

/**
 * Whether the caller may see the admission queue of every project (`GET
 * /api/v2/exports/queue/`): operators, i.e. superusers (the platform's staff); the queue names
 * users and projects the caller may not otherwise read.
 */
export function canSeeQueue(user: { superuser: boolean }): boolean {
  return user.superuser;
}
