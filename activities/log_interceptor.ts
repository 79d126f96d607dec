/**
 * Structured worker logs: one JSON line when an activity starts, completes or fails, with the
 * export id, the workflow id and the stage (the activity's name), for log pipelines that cannot
 * read Temporal's history.
 */
import type { Context } from "@temporalio/activity";
import type {
  ActivityExecuteInput,
  ActivityInboundCallsInterceptor,
  ActivityInterceptors,
  Next,
} from "@temporalio/worker";
import { logEvent } from "../domain/log.ts";

/** Logs each activity execution of the worker it is installed on. */
export function activityLogInterceptor(ctx: Context): ActivityInterceptors {
  return { inbound: new ActivityLogInbound(ctx) };
}

class ActivityLogInbound implements ActivityInboundCallsInterceptor {
  constructor(private readonly ctx: Context) {}

  async execute(
    input: ActivityExecuteInput,
    next: Next<ActivityInboundCallsInterceptor, "execute">,
  ): Promise<unknown> {
    const info = this.ctx.info;
    const first = input.args[0] as { exportId?: number; scheduleId?: number } | undefined;
    const fields = {
      export_id: first?.exportId,
      schedule_id: first?.scheduleId,
      workflow_id: info.workflowExecution?.workflowId,
      run_id: info.workflowExecution?.runId,
      stage: info.activityType,
      attempt: info.attempt,
      task_queue: info.taskQueue,
    };
    const started = performance.now();
    logEvent("activity started", fields);
    try {
      const result = await next(input);
      logEvent("activity completed", {
        ...fields,
        duration_ms: Math.round(performance.now() - started),
      });
      return result;
    } catch (error) {
      logEvent("activity failed", {
        ...fields,
        duration_ms: Math.round(performance.now() - started),
        error: error instanceof Error ? error.message : String(error),
      }, "error");
      throw error;
    }
  }
}
