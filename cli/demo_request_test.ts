import { assertEquals } from "../tests/assert.ts";
import { isDemoRequest, type ListedExport } from "./demo_request.ts";

Deno.test("demo: follows only an export it would request itself", () => {
  const listed = (fields: Partial<ListedExport>): ListedExport => ({
    id: 1,
    filters: {},
    options: {},
    excel_compatible: false,
    columns: null,
    ...fields,
  });
  assertEquals(isDemoRequest(listed({}), {}), true);
  assertEquals(
    isDemoRequest(listed({ filters: { collection_id: 2 } }), { collection_id: 2 }),
    true,
  );
  assertEquals(
    isDemoRequest(listed({ filters: { b: 1, a: [1, { y: 2, x: 1 }] } }), {
      a: [1, { x: 1, y: 2 }],
      b: 1,
    }),
    true,
    "key order does not matter",
  );
  // someone else's request of the same format
  assertEquals(isDemoRequest(listed({ filters: { min_score: 0.3 } }), {}), false);
  assertEquals(isDemoRequest(listed({ filters: {} }), { collection_id: 2 }), false);
  assertEquals(
    isDemoRequest(listed({ filters: { collection_id: 3 } }), { collection_id: 2 }),
    false,
  );
  assertEquals(isDemoRequest(listed({ options: { jpeg_quality: 80 } }), {}), false);
  assertEquals(isDemoRequest(listed({ excel_compatible: true }), {}), false);
  assertEquals(isDemoRequest(listed({ columns: ["id"] }), {}), false);
});
