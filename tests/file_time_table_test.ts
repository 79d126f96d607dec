import { assert, assertEquals } from "./assert.ts";
import { fileTimeTable } from "./file_time_table.ts";

Deno.test("the time table lists files slowest first, with counts, crashes and the sum", () => {
  const table = fileTimeTable(
    new Map([
      ["tests/a_test.ts", { seconds: 3.2, lane: 0, passed: 4, failed: 0 }],
      ["tests/slow_test.ts", { seconds: 120.6, lane: 1, passed: 2, failed: 1 }],
      ["tests/crash_test.ts", { seconds: 10, lane: 0, passed: 0, failed: 0, crashed: "signal 9" }],
    ]),
  );
  const rows = table.trim().split("\n");
  assert(rows[0].startsWith("file"));
  assertEquals(rows.slice(1, 4).map((row) => row.split(/\s+/)[0]), [
    "tests/slow_test.ts",
    "tests/crash_test.ts",
    "tests/a_test.ts",
  ]);
  assertEquals(rows[1].split(/\s+/).slice(1), ["121", "1", "2", "1"]);
  assertEquals(rows[2].split(/\s+/).slice(1), ["10", "0", "0", "1", "crashed"]);
  assert(rows[4].includes("134"), rows[4]);
});
