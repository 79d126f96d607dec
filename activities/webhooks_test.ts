/** Which answers of a webhook receiver are retried (activities/webhooks.ts, docs/webhooks.md). */
import { assertEquals } from "../tests/assert.ts";
import { isRetryableStatus } from "./webhooks.ts";

Deno.test("webhook retries: network errors, 3xx, 5xx, 408 and 429 retry; other 4xx do not", () => {
  for (const status of [null, 301, 302, 307, 408, 429, 500, 502, 503, 504]) {
    assertEquals(isRetryableStatus(status), true, String(status));
  }
  for (const status of [400, 401, 403, 404, 405, 410, 413, 422]) {
    assertEquals(isRetryableStatus(status), false, String(status));
  }
});
