/**
 * What the webhook delivery workflow, its activities and the code that starts it share: the
 * workflow id and the input and outcome shapes (docs/webhooks.md). No imports: workflow code and
 * activities both use it.
 */

/** How an event is retried (from the config of the process that started its workflow). */
export interface WebhookRetrySettings {
  timeoutSeconds: number;
  initialSeconds: number;
  maxIntervalSeconds: number;
  totalSeconds: number;
}

/** Input of `webhookDeliveryWorkflow`: the event's id and how to retry it. */
export interface WebhookDeliveryInput {
  eventId: string;
  retry: WebhookRetrySettings;
}

/** What became of the event. `gone`: its export or webhook was deleted before delivery. */
export type WebhookDeliveryOutcome = "delivered" | "failed" | "gone";

/** The workflow id of event `eventId`'s delivery: `webhook-delivery-<event uuid>`. */
export function webhookDeliveryWorkflowId(eventId: string): string {
  return `webhook-delivery-${eventId}`;
}
