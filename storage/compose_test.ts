import { assert, assertEquals } from "../tests/assert.ts";
import { type ComposePart, planComposition } from "./compose.ts";

/** Concatenates `sizes` by the plan and checks the part sizes; returns the byte map. */
function check(sizes: number[], minPart: number, maxCopy: number): ComposePart[] {
  const parts = planComposition(sizes, { minPart, maxCopy });
  const covered: string[] = [];
  parts.forEach((part, i) => {
    const ranges = part.kind === "copy" ? [part.range] : part.ranges;
    const size = ranges.reduce((n, r) => n + r.end - r.start, 0);
    if (part.kind === "upload") assertEquals(part.size, size);
    if (i < parts.length - 1) assert(size >= minPart, `part ${i} of ${size} < ${minPart}`);
    if (part.kind === "copy") assert(size <= maxCopy && size >= minPart, `copy of ${size}`);
    for (const r of ranges) {
      assert(r.end > r.start, "empty range");
      for (let b = r.start; b < r.end; b++) covered.push(`${r.source}:${b}`);
    }
  });
  const expected = sizes.flatMap((n, s) => Array.from({ length: n }, (_, b) => `${s}:${b}`));
  assertEquals(covered, expected);
  return parts;
}

Deno.test("planComposition: every byte once, in order; parts but the last ≥ the minimum", () => {
  const cases = [
    [],
    [0, 0],
    [3],
    [1, 1, 1, 1, 1, 1, 1],
    [10, 2, 0, 25, 4, 9],
    [4, 30, 4, 30],
    [5, 5, 5],
    [12, 1],
    [11, 11, 11],
    [31, 7],
  ];
  for (const sizes of cases) check(sizes, 5, 12);
});

Deno.test("planComposition: large shards are copied server-side, small ones merged", () => {
  const parts = check([20, 2, 2, 30], 5, 100);
  assertEquals(parts.map((p) => p.kind), ["copy", "upload", "copy"]);
  assertEquals(parts[1].kind === "upload" && parts[1].ranges.length, 3);
  // a source over the copy limit is split into several copies, none under the minimum
  assertEquals(check([26], 5, 12).map((p) => p.kind), ["copy", "copy", "copy"]);
});
