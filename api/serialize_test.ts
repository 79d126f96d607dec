/** signedUrlSeconds of api/serialize.ts: a signed URL never outlives its export's file. */
import { assertEquals } from "../tests/assert.ts";
import { signedUrlSeconds } from "./serialize.ts";

Deno.test("signedUrlSeconds: the configured lifetime, capped by expires_at, at least 1 s", () => {
  const now = new Date("2026-12-07T12:00:00Z");
  const at = (seconds: number) => new Date(now.getTime() + seconds * 1000);
  assertEquals(signedUrlSeconds(3600, null, now), 3600);
  assertEquals(signedUrlSeconds(3600, at(86_400), now), 3600);
  assertEquals(signedUrlSeconds(3600, at(90.9), now), 90);
  assertEquals(signedUrlSeconds(3600, at(0.5), now), 1);
  assertEquals(signedUrlSeconds(3600, at(-600), now), 1);
});
