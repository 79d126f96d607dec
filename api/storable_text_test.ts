import { assertEquals } from "../tests/assert.ts";
import { unstorableText } from "./storable_text.ts";

Deno.test("unstorableText finds NUL and unpaired surrogates in values and keys, with their path", () => {
  assertEquals(unstorableText({ a: ["ok", { b: "x\u0000" }] }), {
    path: "a[1].b",
    problem: "holds U+0000 (NUL), which cannot be stored",
  });
  assertEquals(unstorableText({ options: { split_seed: "\ud800" } })?.path, "options.split_seed");
  assertEquals(unstorableText({ ["k\udc00"]: 1 })?.problem.startsWith("its key holds"), true);
  assertEquals(unstorableText("\u0000")?.path, "(body)");
});

Deno.test("unstorableText passes every storable document, surrogate pairs included", () => {
  for (const value of [{ a: "🦋 Noctuidae", b: [1, null, true, "ß"] }, [], "", 0, null]) {
    assertEquals(unstorableText(value), undefined);
  }
});

Deno.test("unstorableText walks 100,000 nested arrays without overflowing the stack", () => {
  let deep: unknown = "\u0000";
  for (let i = 0; i < 100_000; i++) deep = [deep];
  assertEquals(unstorableText(deep)?.problem.startsWith("holds U+0000"), true);
});
