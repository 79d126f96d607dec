/**
 * emailDeliveryWorkflow: sends the email of an export's end (an `email_events` outbox row) to
 * the export's user, at least once (docs/email.md). One SMTP send per activity attempt;
 * Temporal's retry policy spaces the attempts (exponential backoff from
 * `EMAIL_RETRY_INITIAL_SECONDS`, coefficient 2, at most `EMAIL_RETRY_MAX_INTERVAL_SECONDS`
 * apart) for `EMAIL_RETRY_TOTAL_SECONDS` in all. Workflow id `export-email-<email uuid>`,
 * started with a reuse policy that rejects duplicates, so an email has one workflow only.
 */
import { proxyActivities, workflowInfo } from "@temporalio/workflow";
import type { EmailActivities } from "../activities/email.ts";
import type { EmailDeliveryInput, EmailDeliveryOutcome } from "./email_delivery_types.ts";
import { controlTaskQueue } from "./task_queues.ts";

/**
 * Calls `sendExportEmail` until the SMTP server accepts the message, a permanent refusal (an
 * SMTP 5xx other than an authentication failure) or the end of the total retry time; then,
 * when it was not sent, `abandonExportEmail` marks the email failed.
 */
export async function emailDeliveryWorkflow(
  input: EmailDeliveryInput,
): Promise<EmailDeliveryOutcome> {
  const { retry } = input;
  const taskQueue = controlTaskQueue(workflowInfo().taskQueue);
  const send = proxyActivities<EmailActivities>({
    taskQueue,
    startToCloseTimeout: `${retry.timeoutSeconds + 30} seconds`,
    heartbeatTimeout: `${retry.heartbeatSeconds} seconds`,
    scheduleToCloseTimeout: `${retry.totalSeconds} seconds`,
    retry: {
      initialInterval: `${retry.initialSeconds} seconds`,
      backoffCoefficient: 2,
      maximumInterval: `${retry.maxIntervalSeconds} seconds`,
      // no maximumAttempts (unlimited): bounded by scheduleToCloseTimeout
    },
  });
  const bookkeeping = proxyActivities<EmailActivities>({
    taskQueue,
    startToCloseTimeout: "30 seconds",
    retry: { initialInterval: "1 second", maximumInterval: "1 minute", maximumAttempts: 20 },
  });
  try {
    return await send.sendExportEmail(input);
  } catch (error) {
    await bookkeeping.abandonExportEmail({
      emailId: input.emailId,
      // an ActivityFailure's cause says why (the last attempt's error, or the timeout)
      reason: String((error as { cause?: Error }).cause?.message ?? error),
    });
    return "failed";
  }
}
