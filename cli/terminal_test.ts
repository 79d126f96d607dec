import { assertEquals } from "../tests/assert.ts";
import { formatEta, formatRecords } from "./terminal.ts";

Deno.test("ETAs are readable and never Infinity or NaN", () => {
  assertEquals(formatEta(0, null, 0), "–");
  assertEquals(formatEta(0, 1000, 0), "–");
  assertEquals(formatEta(0, 1000, Infinity), "–");
  assertEquals(formatEta(500, 1000, 100), "5s");
  assertEquals(formatEta(0, 10_000, 50), "3m20s");
  assertEquals(formatEta(0, 1_000_000, 100), "2h46m");
  assertEquals(formatEta(1000, 1000, 0), "done");
  assertEquals(formatEta(0, 0, 0), "done");
});

Deno.test("record counts say when the total is not known yet", () => {
  assertEquals(formatRecords(0, null), "counting records…");
  assertEquals(formatRecords(1234, 20000), "1,234/20,000 records");
});
