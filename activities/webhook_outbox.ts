/**
 * Starting webhook deliveries from the outbox (docs/webhooks.md, "Delivery"): right after an
 * export's end committed, and from the housekeeping sweep for events whose start was lost.
 */
import { type Client, WorkflowExecutionAlreadyStartedError } from "@temporalio/client";
import type { Config } from "../config/mod.ts";
import type { Sql } from "../db/client.ts";
import type { OutboxRow } from "../db/outbox.ts";
import { markEventStarted, unstartedEvents } from "../db/webhooks.ts";
import { logEvent } from "../domain/log.ts";
import { EXPORT_ID } from "../workflows/search_attributes.ts";
import type { webhookDeliveryWorkflow } from "../workflows/webhook_delivery_workflow.ts";
import {
  webhookDeliveryWorkflowId,
  type WebhookRetrySettings,
} from "../workflows/webhook_delivery_types.ts";

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

/**
 * Starts the delivery workflow of each event (`webhook-delivery-<event uuid>`, reuse policy
 * REJECT_DUPLICATE: an "already started" answer means it runs or ran, which is success) and
 * records it as started. The run carries its export's `ExportId` search attribute and says in
 * its summary which event of which export it delivers, so that `ExportId = 12` in the Temporal
 * UI finds an export's deliveries beside its run. Returns the ids it started or found started;
 * a failed start is logged and left for the housekeeping sweep ({@link sweepWebhookOutbox}).
 */
export async function startEventDeliveries(
  deps: { sql: Sql; config: Config; temporal: Client },
  events: readonly OutboxRow[],
): Promise<string[]> {
  const started: string[] = [];
  for (const { id: eventId, exportId, type } of events) {
    try {
      await deps.temporal.workflow.start<typeof webhookDeliveryWorkflow>(
        "webhookDeliveryWorkflow",
        {
          taskQueue: deps.config.temporalTaskQueue,
          workflowId: webhookDeliveryWorkflowId(eventId),
          args: [{ eventId, retry: webhookRetrySettings(deps.config) }],
          workflowIdReusePolicy: "REJECT_DUPLICATE",
          typedSearchAttributes: [{ key: EXPORT_ID, value: exportId }],
          staticSummary: `webhook ${type} of export ${exportId} (event ${eventId})`,
        },
      );
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) {
        logEvent("webhook delivery not started", {
          event_id: eventId,
          error: String(error),
          stage: "webhook",
        }, "warning");
        continue;
      }
    }
    await markEventStarted(deps.sql, eventId);
    started.push(eventId);
  }
  return started;
}

/**
 * Right after an export's end committed: starts the deliveries of its events not started yet.
 * Never throws (the transition has committed; the sweep starts what is left).
 */
export async function startExportDeliveries(
  deps: { sql: Sql; config: Config; temporal?: Client },
  exportId: number,
): Promise<void> {
  if (!deps.temporal) return;
  try {
    const events = await unstartedEvents(deps.sql, { exportId });
    if (events.length > 0) await startEventDeliveries({ ...deps, temporal: deps.temporal }, events);
  } catch (error) {
    logEvent("webhook deliveries not started", {
      export_id: exportId,
      error: String(error),
      stage: "webhook",
    }, "warning");
  }
}

/**
 * The housekeeping part of the outbox: starts every event whose workflow was never started (a
 * worker that died between the transition's commit and the start) and that is at least
 * `minAgeSeconds` old. Returns the ids it started.
 */
export async function sweepWebhookOutbox(
  deps: { sql: Sql; config: Config; temporal?: Client },
  options: { minAgeSeconds: number },
): Promise<string[]> {
  if (!deps.temporal) return [];
  const events = await unstartedEvents(deps.sql, { minAgeSeconds: options.minAgeSeconds });
  return events.length === 0
    ? []
    : await startEventDeliveries({ ...deps, temporal: deps.temporal }, events);
}
