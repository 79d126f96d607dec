/**
 * Starting email deliveries from the outbox (docs/email.md, "Delivery"): right after an
 * export's end committed, and from the housekeeping sweep for emails whose start was lost. The
 * same pattern as the webhook outbox (activities/webhook_outbox.ts), started by activities/outbox.ts.
 */
import type { Config } from "../config/mod.ts";
import { markEmailStarted, unstartedEmails } from "../db/emails.ts";
import type { OutboxRow } from "../db/outbox.ts";
import type { emailDeliveryWorkflow } from "../workflows/email_delivery_workflow.ts";
import {
  emailDeliveryWorkflowId,
  type EmailRetrySettings,
} from "../workflows/email_delivery_types.ts";
import { type OptionalTemporalDeps, type OutboxDeps, outboxStarter } from "./outbox.ts";

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

/** The email outbox (`email_events`) and its delivery workflow, `export-email-<uuid>`. */
const emails = outboxStarter({
  stage: "email",
  rowName: "email",
  workflowType: "emailDeliveryWorkflow",
  workflowId: emailDeliveryWorkflowId,
  args: (emailId, config): Parameters<typeof emailDeliveryWorkflow> => [
    { emailId, retry: emailRetrySettings(config) },
  ],
  unstarted: unstartedEmails,
  markStarted: markEmailStarted,
});

/**
 * Starts the delivery workflow of each email (`export-email-<uuid>`, reuse policy
 * REJECT_DUPLICATE: "already started" means it runs or ran, which is success) and records it
 * as started. The run carries its export's `ExportId` search attribute and names the email's
 * type and export in its summary (`ExportId = 12` in the Temporal UI finds it). Returns the ids
 * started or found started; a failed start is logged and left for the housekeeping sweep
 * ({@link sweepEmailOutbox}).
 */
export function startEmailDeliveries(
  deps: OutboxDeps,
  rows: readonly OutboxRow[],
): Promise<string[]> {
  return emails.start(deps, rows);
}

/**
 * Right after an export's end committed: starts the delivery of its emails not started yet.
 * Never throws (the transition has committed; the sweep starts what is left).
 */
export function startExportEmails(deps: OptionalTemporalDeps, exportId: number): Promise<void> {
  return emails.startForExport(deps, exportId);
}

/**
 * The housekeeping part of the email outbox: starts every email whose workflow was never
 * started and that is at least `minAgeSeconds` old. Returns the ids it started.
 */
export function sweepEmailOutbox(
  deps: OptionalTemporalDeps,
  options: { minAgeSeconds: number },
): Promise<string[]> {
  return emails.sweep(deps, options);
}
