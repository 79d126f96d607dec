/**
 * Webhook delivery activities (docs/webhooks.md): one POST per attempt, signed, without
 * following redirects, to an address checked again at each attempt; every attempt recorded in
 * `webhook_deliveries`. Starting the delivery workflows is activities/webhook_outbox.ts.
 */
import { Context } from "@temporalio/activity";
import { ApplicationFailure } from "@temporalio/common";
import type { Config } from "../config/mod.ts";
import type { Sql } from "../db/client.ts";
import { type ExportRow, findExport } from "../db/exports.ts";
import { endEvent, findEventTarget, freezePayload, recordAttempt } from "../db/webhooks.ts";
import { logEvent } from "../domain/log.ts";
import { checkWebhookUrl, dnsResolver } from "../domain/webhook_url.ts";
import { signWebhook } from "../domain/webhook_signature.ts";
import type {
  WebhookDeliveryOutcome,
  WebhookRetrySettings,
} from "../workflows/webhook_delivery_types.ts";
import { errorText } from "../domain/error_text.ts";

/** What the webhook activities need. */
export interface WebhookDependencies {
  sql: Sql;
  config: Config;
  /**
   * The export object exactly as `GET /api/v2/exports/<id>/` serializes it (the worker passes
   * api/serialize.ts `serializeExport` with no caller permissions: this layer never imports
   * the HTTP layer).
   */
  serializeExport(row: ExportRow): Promise<unknown>;
}

/**
 * Whether an answer or error is worth another attempt: network errors, timeouts, 3xx (never
 * followed), 5xx, 408 and 429 are; any other 4xx is not (the receiver refuses this request;
 * the same bytes would be refused again).
 */
export function isRetryableStatus(status: number | null): boolean {
  if (status === null) return true;
  if (status >= 400 && status < 500) return status === 408 || status === 429;
  return true;
}

/** Builds the webhook activities over their dependencies. */
// deno-lint-ignore explicit-function-return-type
export function createWebhookActivities(deps: WebhookDependencies) {
  const { sql, config } = deps;
  const resolve = dnsResolver();
  return {
    /**
     * One delivery attempt of event `eventId`: freezes its body on the first attempt
     * (`{id, type, created_at, data: <the export object>}`), checks the URL's addresses again,
     * POSTs once with `WEBHOOK_TIMEOUT_SECONDS`, no redirect followed, and records the attempt.
     * Returns on a 2xx; throws a retryable failure otherwise, a non-retryable one for a 4xx
     * other than 408/429 and for a refused address.
     */
    async deliverWebhookEvent(
      input: { eventId: string; retry: WebhookRetrySettings },
    ): Promise<WebhookDeliveryOutcome> {
      const info = Context.current().info;
      const event = await findEventTarget(sql, input.eventId);
      if (!event || !event.url || !event.secret) return "gone";
      if (event.state !== "pending") return event.state;
      let body = event.payload;
      if (body === null) {
        const row = await findExport(sql, event.export_id);
        if (!row) return "gone";
        body = await freezePayload(
          sql,
          event.id,
          JSON.stringify({
            id: event.id,
            type: event.type,
            created_at: event.created_at.toISOString(),
            data: await deps.serializeExport(row),
          }),
        );
      }
      let statusCode: number | null = null;
      let error: string | null = null;
      let retryable: boolean;
      const check = await checkWebhookUrl(event.url, {
        allowPrivate: config.webhooks.allowPrivate,
        resolve,
      });
      if (!check.ok) {
        error = `webhook URL refused: ${check.reason}`;
        retryable = /does not resolve|has no address/.test(check.reason); // DNS may come back
      } else {
        const timestamp = Math.floor(Date.now() / 1000);
        try {
          const response = await fetch(check.url, {
            method: "POST",
            redirect: "manual",
            signal: AbortSignal.timeout(config.webhooks.timeoutSeconds * 1000),
            headers: {
              "Content-Type": "application/json",
              "User-Agent": "ami-exports-webhooks/1",
              "Webhook-Id": event.id,
              "Webhook-Timestamp": String(timestamp),
              "Webhook-Signature": await signWebhook(event.secret, timestamp, body),
            },
            body,
          });
          statusCode = response.status;
          await response.body?.cancel();
          if (statusCode >= 300 && statusCode < 400) {
            error = `redirect not followed: ${statusCode} to ${
              (response.headers.get("location") ?? "").slice(0, 200)
            }`;
          } else if (statusCode < 200 || statusCode >= 300) {
            error = `answered ${statusCode}`;
          }
        } catch (cause) {
          // fetch's "TypeError: fetch failed" names its reason (refused, reset, DNS) in its cause
          error = errorText(cause);
        }
        retryable = isRetryableStatus(error === null ? 200 : statusCode);
      }
      if (error === null) {
        await recordAttempt(sql, {
          eventId: event.id,
          attempt: info.attempt,
          statusCode,
          error: null,
          nextTryAt: null,
        });
        await endEvent(sql, event.id, "delivered");
        return "delivered";
      }
      const delaySeconds = Math.min(
        input.retry.initialSeconds * 2 ** (info.attempt - 1),
        input.retry.maxIntervalSeconds,
      );
      const next = Date.now() + delaySeconds * 1000;
      const deadline = info.scheduledTimestampMs + info.scheduleToCloseTimeoutMs;
      const nextTryAt = retryable && next < deadline ? new Date(next) : null;
      await recordAttempt(sql, {
        eventId: event.id,
        attempt: info.attempt,
        statusCode,
        error: error.slice(0, 1000),
        nextTryAt,
      });
      if (!retryable) {
        await endEvent(sql, event.id, "failed");
        throw ApplicationFailure.nonRetryable(error, "WebhookRefused");
      }
      throw ApplicationFailure.retryable(error, "WebhookDeliveryFailed");
    },

    /** Marks an event failed once its workflow gives up (non-retryable, or out of time). */
    async abandonWebhookEvent(input: { eventId: string; reason: string }): Promise<void> {
      await endEvent(sql, input.eventId, "failed");
      logEvent("webhook event abandoned", {
        event_id: input.eventId,
        error: input.reason,
        stage: "webhook",
      }, "warning");
    },
  };
}

/** The webhook activity functions, as workflows see them. */
export type WebhookActivities = ReturnType<typeof createWebhookActivities>;
