/**
 * Fair admission of exports to the streaming slots (docs/fair-scheduling.md): running exports
 * are capped per user (`EXPORT_MAX_RUNNING_PER_USER`) and per project
 * (`EXPORT_MAX_RUNNING_PER_PROJECT`); the others wait, PENDING, in an order that is round-robin
 * across users and FIFO within a user. Pure: no I/O, so the API (positions), the admission
 * activity (who goes next) and the unit tests compute the very same thing.
 *
 * Source of the rule: the fleet must not be starved by one client that requests hundreds of
 * exports at once; the round-robin over owners with the fewest running jobs is the "fair share"
 * of batch schedulers (Slurm's fair-share, Kubernetes' Kueue fair sharing), reduced to equal
 * shares per user.
 */

/** A waiting export (PENDING, not yet admitted). */
export interface WaitingExport {
  id: number;
  /** The owner: the requesting user, or the schedule's owner for a scheduled export; null when the user was deleted. */
  userId: number | null;
  projectId: number;
}

/** A running export (admitted, or STARTED): it holds a slot of its user and of its project. */
export interface RunningExport {
  userId: number | null;
  projectId: number;
}

/** The caps; 0 means unlimited. */
export interface AdmissionCaps {
  perUser: number;
  perProject: number;
}

/** What {@link admissionPlan} decides. */
export interface AdmissionPlan {
  /** Every waiting export's id in admission order (`queue_position` is the 1-based index). */
  order: number[];
  /** The ids admissible now without exceeding a cap, in admission order. */
  admit: number[];
}

/** The group key of a user (the exports of deleted users share one group). */
function userKey(userId: number | null): string {
  return userId === null ? "none" : String(userId);
}

function increment(counts: Map<string | number, number>, key: string | number): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

/**
 * The admission order and who is admitted now.
 *
 * `waiting` must be in arrival order (oldest first: `created_at, id`). The order repeatedly takes
 * the oldest waiting export of the user with the fewest exports running or already placed in the
 * order (ties: the user whose oldest waiting export is oldest) — round-robin across users, FIFO
 * within a user. Then, walking that order, an export is admitted when its user and its project
 * are both under their caps, counting the running exports and those admitted before it in the
 * walk; one that would exceed a cap is skipped (it stays waiting, and keeps its place).
 *
 * Shapes: `admissionPlan([{id: 1, userId: 7, projectId: 3}, …], [{userId: 7, projectId: 3}],
 * {perUser: 2, perProject: 8})` → `{order: [1, …], admit: [1, …]}`.
 */
export function admissionPlan(
  waiting: readonly WaitingExport[],
  running: readonly RunningExport[],
  caps: AdmissionCaps,
): AdmissionPlan {
  // per user: their waiting exports, oldest first; and their running counts
  const queues = new Map<string, WaitingExport[]>();
  for (const w of waiting) {
    const key = userKey(w.userId);
    const queue = queues.get(key);
    if (queue) queue.push(w);
    else queues.set(key, [w]);
  }
  const runningByUser = new Map<string | number, number>();
  const runningByProject = new Map<string | number, number>();
  for (const r of running) {
    increment(runningByUser, userKey(r.userId));
    increment(runningByProject, r.projectId);
  }
  // arrival rank of each waiting export, for the ties
  const rank = new Map<number, number>();
  waiting.forEach((w, i) => rank.set(w.id, i));

  const placed = new Map<string | number, number>(runningByUser);
  const heads = new Map<string, number>(); // next index into each user's queue
  const ordered: WaitingExport[] = [];
  while (ordered.length < waiting.length) {
    let best: string | undefined;
    let bestLoad = Infinity;
    let bestRank = Infinity;
    for (const [key, queue] of queues) {
      const head = heads.get(key) ?? 0;
      if (head >= queue.length) continue;
      const load = placed.get(key) ?? 0;
      const r = rank.get(queue[head].id)!;
      if (load < bestLoad || (load === bestLoad && r < bestRank)) {
        best = key;
        bestLoad = load;
        bestRank = r;
      }
    }
    const queue = queues.get(best!)!;
    const head = heads.get(best!) ?? 0;
    ordered.push(queue[head]);
    heads.set(best!, head + 1);
    increment(placed, best!);
  }

  const users = new Map(runningByUser);
  const projects = new Map(runningByProject);
  const admit: number[] = [];
  for (const w of ordered) {
    const user = users.get(userKey(w.userId)) ?? 0;
    const project = projects.get(w.projectId) ?? 0;
    if (caps.perUser > 0 && user >= caps.perUser) continue;
    if (caps.perProject > 0 && project >= caps.perProject) continue;
    admit.push(w.id);
    increment(users, userKey(w.userId));
    increment(projects, w.projectId);
  }
  return { order: ordered.map((w) => w.id), admit };
}
