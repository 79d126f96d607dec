/**
 * What the email delivery workflow, its activities and the code that starts it share: the
 * workflow id and the input and outcome shapes (docs/email.md). No imports: workflow code and
 * activities both use it.
 */

/** How an email is retried (from the config of the process that started its workflow). */
export interface EmailRetrySettings {
  /** One SMTP conversation's timeout (`SMTP_TIMEOUT_SECONDS`). */
  timeoutSeconds: number;
  /** The send activity's heartbeat timeout: how soon a dead worker's send is retried. */
  heartbeatSeconds: number;
  initialSeconds: number;
  maxIntervalSeconds: number;
  totalSeconds: number;
}

/** Input of `emailDeliveryWorkflow`: the email's id (an `email_events` row) and its retries. */
export interface EmailDeliveryInput {
  emailId: string;
  retry: EmailRetrySettings;
}

/** What became of the email. `gone`: its export was deleted before it was sent. */
export type EmailDeliveryOutcome = "sent" | "failed" | "gone";

/** The workflow id of email `emailId`'s delivery: `export-email-<email uuid>`. */
export function emailDeliveryWorkflowId(emailId: string): string {
  return `export-email-${emailId}`;
}
