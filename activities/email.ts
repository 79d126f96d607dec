/**
 * Email delivery activities (docs/email.md): one SMTP send per attempt of the email a user gets
 * when an export of theirs ends, through nodemailer. The Message-ID is derived from the email's
 * id, so every attempt sends the same message id and receivers can drop a repeat. Starting the
 * delivery workflows is activities/email_outbox.ts.
 */
import { Context } from "@temporalio/activity";
import { ApplicationFailure } from "@temporalio/common";
// @ts-types="@types/nodemailer"
import nodemailer from "nodemailer";
import type { Config } from "../config/mod.ts";
import type { Sql } from "../db/client.ts";
import {
  beginEmailAttempt,
  findEmailEvent,
  markEmailFailed,
  markEmailSent,
  recordEmailError,
} from "../db/emails.ts";
import { downloadLinkExpiry, signedDownloadUrl } from "../domain/download_link.ts";
import { composeExportEmail } from "../domain/export_email.ts";
import { logEvent } from "../domain/log.ts";
import type {
  EmailDeliveryInput,
  EmailDeliveryOutcome,
} from "../workflows/email_delivery_types.ts";

/** What the email activities need. */
export interface EmailDependencies {
  sql: Sql;
  config: Config;
}

/**
 * The Message-ID of email `emailId` (RFC 5322 §3.6.4): `<export-email-<uuid>@<domain of
 * EMAIL_FROM>>`, the same on every attempt.
 */
export function emailMessageId(emailId: string, from: string): string {
  const domain = /@([^\s<>@]+)>?\s*$/.exec(from)?.[1] ?? "ami-exports.invalid";
  return `<export-email-${emailId}@${domain}>`;
}

/**
 * Whether an SMTP error is worth another attempt: connection errors, timeouts, 4xx replies and
 * authentication failures (an operator may fix the credentials) are; other 5xx replies (a
 * refused recipient, RFC 5321 §4.2.1) are not.
 */
export function isRetryableSmtpError(error: { code?: string; responseCode?: number }): boolean {
  if (error.code === "EAUTH") return true;
  return !(typeof error.responseCode === "number" && error.responseCode >= 500);
}

/** Builds the email activities over their dependencies. */
// deno-lint-ignore explicit-function-return-type
export function createEmailActivities(deps: EmailDependencies) {
  const { sql, config } = deps;
  return {
    /**
     * One attempt of email `emailId`: composes it from the export (SUCCESS: counts, size and a
     * signed download link valid until the export's `expires_at`, else `EMAIL_LINK_MAX_DAYS`
     * after the email's creation; FAILURE/REVOKED: the error), counts the attempt, sends it
     * (heartbeating) and records `sent` once the SMTP server accepted it. A worker that dies
     * between the acceptance and that record leaves the email pending: the retry sends it again
     * with the same Message-ID (at least once, docs/email.md). Throws a retryable failure for a
     * connection error, a timeout or a 4xx reply, a non-retryable one for another 5xx.
     */
    async sendExportEmail(input: EmailDeliveryInput): Promise<EmailDeliveryOutcome> {
      const email = await findEmailEvent(sql, input.emailId);
      if (!email) return "gone";
      if (email.state !== "pending") return email.state;
      const smtpUrl = config.email.smtpUrl;
      if (!smtpUrl) {
        await markEmailFailed(sql, email.id, "SMTP_URL is not set: no email is sent");
        return "failed";
      }
      const succeeded = email.type === "export.succeeded";
      const linkExpiresAt = downloadLinkExpiry(email.expires_at, {
        from: email.created_at,
        linkMaxDays: config.email.linkMaxDays,
      });
      const message = composeExportEmail({
        exportId: email.export_id,
        projectName: email.project_name,
        format: email.format,
        status: succeeded ? "SUCCESS" : email.type === "export.revoked" ? "REVOKED" : "FAILURE",
        recordCount: Number(email.record_count),
        fileSize: Number(email.file_size),
        checksum: email.checksum,
        error: email.error,
        errorStage: email.error_stage,
        link: succeeded
          ? signedDownloadUrl(config.publicBaseUrl, email.export_id, {
            secret: config.signingSecret,
            expiresAt: linkExpiresAt,
          })
          : undefined,
        linkExpiresAt: succeeded ? linkExpiresAt : undefined,
      });
      const attempt = await beginEmailAttempt(sql, email.id);
      const context = Context.current();
      context.heartbeat({ attempt });
      const beat = setInterval(() => context.heartbeat({ attempt }), 1000);
      const timeoutMs = config.email.timeoutSeconds * 1000;
      const transport = nodemailer.createTransport(smtpUrl, {
        connectionTimeout: timeoutMs,
        greetingTimeout: timeoutMs,
        socketTimeout: timeoutMs,
      });
      try {
        await transport.sendMail({
          from: config.email.from,
          to: email.to_address,
          subject: message.subject,
          text: message.text,
          messageId: emailMessageId(email.id, config.email.from),
          date: email.created_at,
          headers: { "Auto-Submitted": "auto-generated" }, // RFC 3834 §5: no auto-replies
        });
        await markEmailSent(sql, email.id);
        logEvent("export email sent", {
          export_id: email.export_id,
          event_id: email.id,
          attempt,
          stage: "email",
        });
        return "sent";
      } catch (cause) {
        const error = cause as Error & { code?: string; responseCode?: number };
        const text = `${error.code ?? error.name}: ${error.message}`;
        await recordEmailError(sql, email.id, text);
        if (!isRetryableSmtpError(error)) {
          await markEmailFailed(sql, email.id, text);
          throw ApplicationFailure.nonRetryable(text, "EmailRefused");
        }
        throw ApplicationFailure.retryable(text, "EmailNotSent");
      } finally {
        clearInterval(beat);
        transport.close();
      }
    },

    /** Marks an email failed once its workflow gives up (refused, or out of time). */
    async abandonExportEmail(input: { emailId: string; reason: string }): Promise<void> {
      await markEmailFailed(sql, input.emailId, input.reason);
      logEvent("export email abandoned", {
        event_id: input.emailId,
        error: input.reason,
        stage: "email",
      }, "warning");
    },
  };
}

/** The email activity functions, as workflows see them. */
export type EmailActivities = ReturnType<typeof createEmailActivities>;
