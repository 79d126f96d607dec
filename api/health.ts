/** `/healthz`: can this API do its job right now? Each dependency answers, a worker polls. */
import { controlTaskQueue } from "../workflows/task_queues.ts";
import type { ExportsApiDependencies } from "./env.ts";

/** What each check found: `"ok"`, or a sentence saying what is wrong. */
export interface HealthChecks {
  database: string;
  temporal: string;
  storage: string;
  /** At least one worker polls the task queue for workflow and for activity tasks. */
  workers: string;
}

/** Temporal API `TaskQueueType` values (temporal/api/enums/v1/task_queue.proto). */
const TASK_QUEUE_TYPE_WORKFLOW = 1;
const TASK_QUEUE_TYPE_ACTIVITY = 2;
/**
 * A poller counts as live when it polled within this many seconds. A worker keeps one long poll
 * open at a time; the matching service answers an empty long poll after about 60 s, and the
 * worker polls again at once, so a live worker's last access is never older than ~70 s.
 */
const LIVE_POLLER_SECONDS = 90;
const CHECK_TIMEOUT_MS = 5000;

/** Runs every check concurrently, each bounded by 5 s. */
export async function checkHealth(deps: ExportsApiDependencies): Promise<HealthChecks> {
  const [database, temporal, storage, workers] = await Promise.all([
    outcome(() => deps.sql`select 1`),
    outcome(() => deps.temporal.workflowService.getSystemInfo({})),
    outcome(() => deps.storage.listObjects("healthz/")),
    outcome(() => checkPollers(deps)),
  ]);
  return { database, temporal, storage, workers };
}

/**
 * Throws unless a live worker polls the task queue for both task types and its control queue
 * (`<queue>-control`, see workflows/task_queues.ts) for activity tasks. The pollers may be one
 * `WORKER_ROLE=all` worker or split ones: a `workflows` worker polls the queue's workflow tasks
 * and the control queue, a `streaming` worker the queue's activity tasks.
 */
async function checkPollers(deps: ExportsApiDependencies): Promise<void> {
  const { temporalNamespace: namespace, temporalTaskQueue: queue } = deps.config;
  const now = Date.now() / 1000;
  for (
    const [name, type, label, split] of [
      [queue, TASK_QUEUE_TYPE_WORKFLOW, "workflow", "worker:workflows"],
      [queue, TASK_QUEUE_TYPE_ACTIVITY, "activity", "worker:streaming"],
      [controlTaskQueue(queue), TASK_QUEUE_TYPE_ACTIVITY, "activity", "worker:workflows"],
    ] as const
  ) {
    const described = await deps.temporal.workflowService.describeTaskQueue({
      namespace,
      taskQueue: { name },
      taskQueueType: type,
    });
    const live = (described.pollers ?? []).filter((p) =>
      now - Number(p.lastAccessTime?.seconds ?? 0) <= LIVE_POLLER_SECONDS
    );
    if (live.length === 0) {
      throw new Error(
        `no worker polls task queue ${name} for ${label} tasks ` +
          `(start one: deno task worker, or deno task ${split})`,
      );
    }
  }
}

/** `"ok"` when `check` resolves within the timeout, else the error's message. */
async function outcome(check: () => Promise<unknown>): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      Promise.resolve().then(check), // a synchronous throw becomes a rejection
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("timed out after 5 s")), CHECK_TIMEOUT_MS);
      }),
    ]);
    return "ok";
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    clearTimeout(timer);
  }
}
