/**
 * Starting webhook deliveries from the outbox (docs/webhooks.md, "Delivery"): right after an
 * export's end committed, and from the housekeeping sweep for events whose start was lost; started by activities/outbox.ts.
 */
import type { Config } from "../config/mod.ts";
import type { OutboxRow } from "../db/outbox.ts";
import { markEventStarted, unstartedEvents } from "../db/webhooks.ts";
import type { webhookDeliveryWorkflow } from "../workflows/webhook_delivery_workflow.ts";
import {
  webhookDeliveryWorkflowId,
  type WebhookRetrySettings,
} from "../workflows/webhook_delivery_types.ts";
import { type OptionalTemporalDeps, type OutboxDeps, outboxStarter } from "./outbox.ts";

/** The retry settings of `config` for a delivery workflow's input. */
export function webhookRetrySettings(config: Config): WebhookRetrySettings {
  const w = config.webhooks;
  return {
    timeoutSeconds: w.timeoutSeconds,
    initialSeconds: w.retryInitialSeconds,
    maxIntervalSeconds: w.retryMaxIntervalSeconds,
    totalSeconds: w.retryTotalSeconds,
  };
}

/** The webhook outbox (`webhook_events`) and its delivery workflow, `webhook-delivery-<uuid>`. */
const events = outboxStarter({
  stage: "webhook",
  rowName: "event",
  workflowType: "webhookDeliveryWorkflow",
  workflowId: webhookDeliveryWorkflowId,
  args: (eventId, config): Parameters<typeof webhookDeliveryWorkflow> => [
    { eventId, retry: webhookRetrySettings(config) },
  ],
  unstarted: unstartedEvents,
  markStarted: markEventStarted,
});

/**
 * Starts the delivery workflow of each event (`webhook-delivery-<event uuid>`, reuse policy
 * REJECT_DUPLICATE: an "already started" answer means it runs or ran, which is success) and
 * records it as started. The run carries its export's `ExportId` search attribute and says in
 * its summary which event of which export it delivers, so that `ExportId = 12` in the Temporal
 * UI finds an export's deliveries beside its run. Returns the ids it started or found started;
 * a failed start is logged and left for the housekeeping sweep ({@link sweepWebhookOutbox}).
 */
export function startEventDeliveries(
  deps: OutboxDeps,
  rows: readonly OutboxRow[],
): Promise<string[]> {
  return events.start(deps, rows);
}

/**
 * Right after an export's end committed: starts the deliveries of its events not started yet.
 * Never throws (the transition has committed; the sweep starts what is left).
 */
export function startExportDeliveries(
  deps: OptionalTemporalDeps,
  exportId: number,
): Promise<void> {
  return events.startForExport(deps, exportId);
}

/**
 * The housekeeping part of the outbox: starts every event whose workflow was never started (a
 * worker that died between the transition's commit and the start) and that is at least
 * `minAgeSeconds` old. Returns the ids it started.
 */
export function sweepWebhookOutbox(
  deps: OptionalTemporalDeps,
  options: { minAgeSeconds: number },
): Promise<string[]> {
  return events.sweep(deps, options);
}
