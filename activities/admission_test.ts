import { assertEquals } from "../tests/assert.ts";
import { pollDelayMs } from "./admission.ts";

Deno.test("admission polls about every second with ±25 % jitter, slower for long queues", () => {
  assertEquals(pollDelayMs(0, () => 0), 750);
  assertEquals(pollDelayMs(0, () => 1), 1250);
  assertEquals(pollDelayMs(0, () => 0.5), 1000);
  assertEquals(pollDelayMs(100, () => 0.5), 2000);
  // at most 4 s are added, however long the queue
  assertEquals(pollDelayMs(100_000, () => 0.5), 5000);
});
