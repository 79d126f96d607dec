import { assertEquals } from "../tests/assert.ts";
import { ENDED_STATUSES } from "../db/exports.ts";
import { EXPORT_STATUS_VALUES, MAX_REQUESTED_BY, requestedBy } from "./search_attributes.ts";

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

Deno.test("ExportStatus: every status an export row can hold is a value, EXPIRED included", () => {
  for (const status of ["PENDING", "STARTED", ...ENDED_STATUSES]) {
    assertEquals((EXPORT_STATUS_VALUES as readonly string[]).includes(status), true, status);
  }
  assertEquals(ENDED_STATUSES.includes("EXPIRED"), true);
});
