/**
 * How a webhook delivery is signed (docs/webhooks.md, "Verifying a delivery"): the scheme Stripe
 * and GitHub document, an HMAC-SHA256 over `<timestamp>.<body>` keyed by the webhook's secret,
 * sent as `Webhook-Signature: v1=<lower-case hex>` beside `Webhook-Timestamp: <unix seconds>`
 * (Stripe's "Verify webhook signatures": signing the timestamp with the body stops replays of an
 * old body with a new timestamp). Web Crypto only, so it runs anywhere.
 */

/** The header prefix of a signature of this scheme's version 1. */
export const SIGNATURE_VERSION = "v1";

function hex(bytes: ArrayBuffer | Uint8Array): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A new secret: `whsec_` and 32 random bytes in hex (256 bits, the HMAC-SHA256 key size,
 * RFC 2104 §3).
 */
export function newWebhookSecret(): string {
  return `whsec_${hex(crypto.getRandomValues(new Uint8Array(32)))}`;
}

/**
 * The `Webhook-Signature` value of `body` sent at `timestamp` (unix seconds):
 * `v1=` + hex(HMAC-SHA256(key = UTF-8 of `secret`, message = UTF-8 of `<timestamp>.<body>`)).
 */
export async function signWebhook(
  secret: string,
  timestamp: number,
  body: string,
): Promise<string> {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(`${timestamp}.${body}`));
  return `${SIGNATURE_VERSION}=${hex(mac)}`;
}

/**
 * Whether `header` (a `Webhook-Signature` value, possibly several space- or comma-separated
 * `v1=` entries during a secret rotation) signs `body` at `timestamp` with `secret`, and the
 * timestamp is within `toleranceSeconds` (default 300, Stripe's) of `now`. Compares in constant
 * time. What a receiver runs; the tests use it too.
 */
export async function verifyWebhookSignature(
  secret: string,
  request: { timestamp: string | null; signature: string | null; body: string },
  options: { now?: Date; toleranceSeconds?: number } = {},
): Promise<boolean> {
  const timestamp = Number(request.timestamp);
  if (!request.timestamp || !Number.isInteger(timestamp) || !request.signature) return false;
  const now = (options.now ?? new Date()).getTime() / 1000;
  if (Math.abs(now - timestamp) > (options.toleranceSeconds ?? 300)) return false;
  const expected = await signWebhook(secret, timestamp, request.body);
  return request.signature.split(/[\s,]+/).some((given) => constantTimeEqual(given, expected));
}

function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
