import { assertEquals } from "../tests/assert.ts";
import { MAX_REQUESTED_BY, requestedBy } from "./search_attributes.ts";

Deno.test("RequestedBy: the e-mail address, bounded to 254 characters (RFC 5321)", () => {
  assertEquals(requestedBy({ user_id: 3, user_email: "ana@example.org" }), "ana@example.org");
  assertEquals(requestedBy({ user_id: 3, user_email: null }), "user 3");
  assertEquals(requestedBy({ user_id: null, user_email: null }), "nobody");
  const huge = `${"🦋".repeat(2_000)}@example.org`;
  const bounded = requestedBy({ user_id: 3, user_email: huge });
  assertEquals(bounded.length, MAX_REQUESTED_BY);
  assertEquals(bounded.endsWith("…"), true);
  assertEquals(bounded.isWellFormed(), true); // no half emoji at the cut
});
