/**
 * webhookDeliveryWorkflow: delivers one webhook event (a `webhook_events` outbox row) with
 * at-least-once semantics. One POST per activity attempt; Temporal's retry policy spaces the
 * attempts (exponential backoff, initial `WEBHOOK_RETRY_INITIAL_SECONDS`, coefficient 2, at most
 * `WEBHOOK_RETRY_MAX_INTERVAL_SECONDS` apart) for `WEBHOOK_RETRY_TOTAL_SECONDS` in all
 * (scheduleToCloseTimeout). Workflow id `webhook-delivery-<event uuid>`, started with a reuse
 * policy that rejects duplicates, so an event is never delivered by two workflows.
 */
import { proxyActivities, workflowInfo } from "@temporalio/workflow";
import type { WebhookActivities } from "../activities/webhooks.ts";
import { controlTaskQueue } from "./task_queues.ts";
import type { WebhookDeliveryInput, WebhookDeliveryOutcome } from "./webhook_delivery_types.ts";

/**
 * Calls `deliverWebhookEvent` until a 2xx answer, a non-retryable failure (a 4xx other than 408
 * and 429, a refused address) or the end of the total retry time; then, when it did not
 * succeed, `abandonWebhookEvent` marks the event failed.
 */
export async function webhookDeliveryWorkflow(
  input: WebhookDeliveryInput,
): Promise<WebhookDeliveryOutcome> {
  const { retry } = input;
  const taskQueue = controlTaskQueue(workflowInfo().taskQueue);
  const deliver = proxyActivities<WebhookActivities>({
    taskQueue,
    startToCloseTimeout: `${retry.timeoutSeconds + 30} seconds`,
    scheduleToCloseTimeout: `${retry.totalSeconds} seconds`,
    retry: {
      initialInterval: `${retry.initialSeconds} seconds`,
      backoffCoefficient: 2,
      maximumInterval: `${retry.maxIntervalSeconds} seconds`,
      // no maximumAttempts (unlimited): bounded by scheduleToCloseTimeout
    },
  });
  const bookkeeping = proxyActivities<WebhookActivities>({
    taskQueue,
    startToCloseTimeout: "30 seconds",
    retry: { initialInterval: "1 second", maximumInterval: "1 minute", maximumAttempts: 20 },
  });
  try {
    return await deliver.deliverWebhookEvent(input);
  } catch (error) {
    await bookkeeping.abandonWebhookEvent({
      eventId: input.eventId,
      // an ActivityFailure's cause says why (the last attempt's error, or the timeout)
      reason: String((error as { cause?: Error }).cause?.message ?? error),
    });
    return "failed";
  }
}
