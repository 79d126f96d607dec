/** The signature scheme of domain/webhook_signature.ts, against an independent HMAC. */
import { createHmac } from "node:crypto";
import { assert, assertEquals } from "../tests/assert.ts";
import { newWebhookSecret, signWebhook, verifyWebhookSignature } from "./webhook_signature.ts";

Deno.test("webhook signature: v1=hex HMAC-SHA256(secret, '<timestamp>.<body>')", async () => {
  const secret = "whsec_test";
  const body = '{"id":"e1","type":"export.succeeded"}';
  const expected = createHmac("sha256", secret).update(`1700000000.${body}`).digest("hex");
  assertEquals(await signWebhook(secret, 1700000000, body), `v1=${expected}`);
  // a fixed vector, so that a change of the scheme cannot go unnoticed
  assertEquals(
    await signWebhook("key", 0, "The quick brown fox jumps over the lazy dog"),
    `v1=${
      createHmac("sha256", "key").update("0.The quick brown fox jumps over the lazy dog").digest(
        "hex",
      )
    }`,
  );
});

Deno.test("webhook signature: verification checks the body, the secret and the timestamp", async () => {
  const secret = newWebhookSecret();
  assert(/^whsec_[0-9a-f]{64}$/.test(secret), secret);
  const now = new Date(1700000000_000);
  const body = '{"a":1}';
  const signature = await signWebhook(secret, 1700000000, body);
  const request = { timestamp: "1700000000", signature, body };
  assertEquals(await verifyWebhookSignature(secret, request, { now }), true);
  assertEquals(
    await verifyWebhookSignature(secret, { ...request, body: '{"a":2}' }, { now }),
    false,
  );
  assertEquals(await verifyWebhookSignature(newWebhookSecret(), request, { now }), false);
  assertEquals(
    await verifyWebhookSignature(secret, { ...request, timestamp: "1700000001" }, { now }),
    false,
  );
  const late = new Date(1700000000_000 + 301_000);
  assertEquals(await verifyWebhookSignature(secret, request, { now: late }), false);
  assertEquals(
    await verifyWebhookSignature(secret, { ...request, signature: `v1=00 ${signature}` }, { now }),
    true,
  );
  assertEquals(
    await verifyWebhookSignature(secret, { ...request, signature: null }, { now }),
    false,
  );
});
