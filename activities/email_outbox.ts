/**
 * Starting email deliveries from the outbox (docs/email.md, "Delivery"): right after an
 * export's end committed, and from the housekeeping sweep for emails whose start was lost. The
 * same pattern as the webhook outbox (activities/webhook_outbox.ts).
 */
import { type Client, WorkflowExecutionAlreadyStartedError } from "@temporalio/client";
import type { Config } from "../config/mod.ts";
import type { Sql } from "../db/client.ts";
import { markEmailStarted, unstartedEmails } from "../db/emails.ts";
import type { OutboxRow } from "../db/outbox.ts";
import { EXPORT_ID } from "../workflows/search_attributes.ts";
import { logEvent } from "../domain/log.ts";
import type { emailDeliveryWorkflow } from "../workflows/email_delivery_workflow.ts";
import {
  emailDeliveryWorkflowId,
  type EmailRetrySettings,
} from "../workflows/email_delivery_types.ts";

/** The retry settings of `config` for an email delivery workflow's input. */
export function emailRetrySettings(config: Config): EmailRetrySettings {
  const e = config.email;
  return {
    timeoutSeconds: e.timeoutSeconds,
    heartbeatSeconds: config.heartbeatTimeoutSeconds,
    initialSeconds: e.retryInitialSeconds,
    maxIntervalSeconds: e.retryMaxIntervalSeconds,
    totalSeconds: e.retryTotalSeconds,
  };
}

/**
 * Starts the delivery workflow of each email (`export-email-<uuid>`, reuse policy
 * REJECT_DUPLICATE: "already started" means it runs or ran, which is success) and records it
 * as started. The run carries its export's `ExportId` search attribute and names the email's
 * type and export in its summary (`ExportId = 12` in the Temporal UI finds it). Returns the ids
 * started or found started; a failed start is logged and left for the housekeeping sweep
 * ({@link sweepEmailOutbox}).
 */
export async function startEmailDeliveries(
  deps: { sql: Sql; config: Config; temporal: Client },
  emails: readonly OutboxRow[],
): Promise<string[]> {
  const started: string[] = [];
  for (const { id: emailId, exportId, type } of emails) {
    try {
      await deps.temporal.workflow.start<typeof emailDeliveryWorkflow>("emailDeliveryWorkflow", {
        taskQueue: deps.config.temporalTaskQueue,
        workflowId: emailDeliveryWorkflowId(emailId),
        args: [{ emailId, retry: emailRetrySettings(deps.config) }],
        workflowIdReusePolicy: "REJECT_DUPLICATE",
        typedSearchAttributes: [{ key: EXPORT_ID, value: exportId }],
        staticSummary: `email ${type} of export ${exportId} (email ${emailId})`,
      });
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) {
        logEvent("email delivery not started", {
          event_id: emailId,
          error: String(error),
          stage: "email",
        }, "warning");
        continue;
      }
    }
    await markEmailStarted(deps.sql, emailId);
    started.push(emailId);
  }
  return started;
}

/**
 * Right after an export's end committed: starts the delivery of its emails not started yet.
 * Never throws (the transition has committed; the sweep starts what is left).
 */
export async function startExportEmails(
  deps: { sql: Sql; config: Config; temporal?: Client },
  exportId: number,
): Promise<void> {
  if (!deps.temporal) return;
  try {
    const emails = await unstartedEmails(deps.sql, { exportId });
    if (emails.length > 0) await startEmailDeliveries({ ...deps, temporal: deps.temporal }, emails);
  } catch (error) {
    logEvent("email deliveries not started", {
      export_id: exportId,
      error: String(error),
      stage: "email",
    }, "warning");
  }
}

/**
 * The housekeeping part of the email outbox: starts every email whose workflow was never
 * started and that is at least `minAgeSeconds` old. Returns the ids it started.
 */
export async function sweepEmailOutbox(
  deps: { sql: Sql; config: Config; temporal?: Client },
  options: { minAgeSeconds: number },
): Promise<string[]> {
  if (!deps.temporal) return [];
  const emails = await unstartedEmails(deps.sql, { minAgeSeconds: options.minAgeSeconds });
  return emails.length === 0
    ? []
    : await startEmailDeliveries({ ...deps, temporal: deps.temporal }, emails);
}
