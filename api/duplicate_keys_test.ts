import { assertEquals } from "../tests/assert.ts";
import { duplicateKey } from "./duplicate_keys.ts";

Deno.test("duplicateKey names a name repeated in one object, with its path", () => {
  assertEquals(duplicateKey('{"a": 1, "a": 2}'), { path: "a", key: "a" });
  assertEquals(
    duplicateKey('{"format": "x", "options": {"split_seed": "a", "split_seed": "b"}}'),
    { path: "options.split_seed", key: "split_seed" },
  );
  assertEquals(
    duplicateKey('{"filters": {"deployment_ids": [1, 2]}, "x": [{}, {"k": 1, "k": 1}]}'),
    { path: "x[1].k", key: "k" },
  );
  // the same name once escaped: one name for JSON.parse, so a duplicate
  assertEquals(duplicateKey('{"project": 1, "\\u0070roject": 2}')?.key, "project");
  assertEquals(duplicateKey('[{"a": {"b": [{"c": 0, "c": 0}]}}]')?.path, "[0].a.b[0].c");
});

Deno.test("duplicateKey passes unique names, the same name in other objects, and names in strings", () => {
  for (
    const text of [
      '{"a": 1, "b": {"a": 1}, "c": [{"a": 1}, {"a": 2}]}',
      '{"a": "\\"a\\": 1, \\"a\\": 2", "b": "{\\"c\\":1,\\"c\\":2}"}',
      '{"a": ["b", "b"], "b": {}, "c": []}',
      '"a"',
      "[]",
      "{}",
      '{"k\\\\": 1, "k": 2}',
      '{"": 1, " ": 2}',
    ]
  ) {
    assertEquals(duplicateKey(text), undefined, text);
  }
});

Deno.test("duplicateKey reads 100,000 nested objects without overflowing the stack", () => {
  const depth = 100_000;
  const text = `${'{"a":'.repeat(depth)}{"b": 1, "b": 2}${"}".repeat(depth)}`;
  assertEquals(duplicateKey(text)?.key, "b");
  assertEquals(duplicateKey(text)?.path.length, depth * 2 + 1);
});
