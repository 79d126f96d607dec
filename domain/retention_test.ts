import { assertEquals } from "../tests/assert.ts";
import { extensionSeconds } from "./retention.ts";

Deno.test("retention: extend with no days gives the configured retention", () => {
  assertEquals(extensionSeconds(undefined, { seconds: 30 * 86_400, maxDays: 365 }), {
    ok: true,
    seconds: 30 * 86_400,
  });
  // retention 0 keeps files forever: an extension with no days removes the expiry
  assertEquals(extensionSeconds(undefined, { seconds: 0, maxDays: 365 }), {
    ok: true,
    seconds: null,
  });
});

Deno.test("retention: extend with no days never passes EXPORT_RETENTION_MAX_DAYS", () => {
  // EXPORT_RETENTION_DAYS=400 with EXPORT_RETENTION_MAX_DAYS=365: 365 days, as `days: 365` gives
  assertEquals(extensionSeconds(undefined, { seconds: 400 * 86_400, maxDays: 365 }), {
    ok: true,
    seconds: 365 * 86_400,
  });
  assertEquals(extensionSeconds(365, { seconds: 400 * 86_400, maxDays: 365 }), {
    ok: true,
    seconds: 365 * 86_400,
  });
  assertEquals(extensionSeconds(366, { seconds: 400 * 86_400, maxDays: 365 }).ok, false);
});
