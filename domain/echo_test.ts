/** The echo limits of domain/echo.ts: cut strings, lists, values and display documents. */
import { assert, assertEquals } from "../tests/assert.ts";
import {
  echoValue,
  ELLIPSIS,
  joinTruncated,
  MAX_DISPLAY_CHARS,
  MAX_ECHO_CHARS,
  MAX_ECHO_ITEMS,
  MAX_MESSAGE_CHARS,
  truncateDisplay,
  truncateText,
} from "./echo.ts";

const graphemeCount = (text: string): number =>
  [...new Intl.Segmenter("en", { granularity: "grapheme" }).segment(text)].length;

Deno.test("echo: a string within the limit is unchanged, a longer one ends with the ellipsis", () => {
  assertEquals(truncateText("North"), "North");
  assertEquals(truncateText("x".repeat(MAX_DISPLAY_CHARS)), "x".repeat(MAX_DISPLAY_CHARS));
  const cut = truncateText("x".repeat(5 * 1024 * 1024));
  assertEquals(cut, `${"x".repeat(MAX_DISPLAY_CHARS - 1)}${ELLIPSIS}`);
  assertEquals(truncateText("abcdef", 3), `ab${ELLIPSIS}`);
  assertEquals(truncateText("abcdef", 1), ELLIPSIS);
});

Deno.test("echo: a cut never splits a grapheme (accents, emoji, surrogate pairs)", () => {
  // 150 family emoji: 11 UTF-16 units each, far beyond 200 units, 150 graphemes: not cut
  const family = "👨‍👩‍👧‍👦".repeat(150);
  assertEquals(truncateText(family), family);
  const long = "e\u0301🦋".repeat(300); // é as e + combining acute, then a butterfly
  const cut = truncateText(long);
  assertEquals(graphemeCount(cut), MAX_DISPLAY_CHARS);
  assert(cut.endsWith(`🦋${ELLIPSIS}`) || cut.endsWith(`e\u0301${ELLIPSIS}`), cut.slice(-8));
  assertEquals(cut.toWellFormed(), cut);
});

Deno.test("echo: a joined list fits its budget and always ends with '… and N more'", () => {
  const names = Array.from({ length: 1000 }, (_, i) => `station ${i}`);
  const joined = joinTruncated(names);
  assert(graphemeCount(joined) <= MAX_DISPLAY_CHARS, joined);
  const shown = joined.split(", ").filter((part) => part.startsWith("station"));
  assertEquals(shown, names.slice(0, shown.length));
  assert(joined.endsWith(`, ${ELLIPSIS} and ${1000 - shown.length} more`), joined);
  assertEquals(joinTruncated(["a", "b"]), "a, b");
  const few = Array.from({ length: 30 }, (_, i) => String(i));
  assertEquals(
    joinTruncated(few),
    `${few.slice(0, MAX_ECHO_ITEMS).join(", ")}, ${ELLIPSIS} and 10 more`,
  );
  // a 5 MB first name is cut so that the count of the others still shows
  const huge = "N".repeat(5 * 1024 * 1024);
  const label = joinTruncated([huge, "South", "East"], { prefix: "Deployments: " });
  assertEquals(graphemeCount(label), MAX_DISPLAY_CHARS);
  assert(label.startsWith("Deployments: NNN"), label);
  assert(label.endsWith(`N${ELLIPSIS}, ${ELLIPSIS} and 2 more`), label);
  const one = joinTruncated([huge], { prefix: "Taxon: ", suffix: " and its descendants" });
  assertEquals(graphemeCount(one), MAX_DISPLAY_CHARS);
  assert(one.endsWith(`N${ELLIPSIS} and its descendants`), one);
  assertEquals(
    joinTruncated(["y".repeat(MAX_ECHO_CHARS * 10)]),
    `${"y".repeat(MAX_DISPLAY_CHARS - 1)}${ELLIPSIS}`,
  );
});

Deno.test("echo: an echoed value is bounded whatever its size or depth", () => {
  assertEquals(echoValue([1, 2, 3]), "[1,2,3]");
  assertEquals(echoValue("2024-13-01"), '"2024-13-01"');
  const ids = Array.from({ length: 10_000 }, (_, i) => i + 1);
  assertEquals(
    echoValue(ids),
    `[${ids.slice(0, MAX_ECHO_ITEMS).join(",")},${ELLIPSIS} and 9980 more]`,
  );
  // 100,000 levels deep: JSON.stringify overflows the stack, the echo does not
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = [deep];
  assertEquals(echoValue(deep), `[[[[${ELLIPSIS}]]]]`);
  const wide = Object.fromEntries(
    Array.from({ length: 5000 }, (_, i) => [`k${i}`, "v".repeat(10_000)]),
  );
  const echoed = echoValue(wide);
  assert(graphemeCount(echoed) <= MAX_MESSAGE_CHARS, String(echoed.length));
  assert(echoed.startsWith(`{"k0":"${"v".repeat(MAX_ECHO_CHARS - 1)}${ELLIPSIS}"`), echoed);
});

Deno.test("echo: a display document keeps its shape with strings and lists cut", () => {
  const name = "N".repeat(5 * 1024 * 1024);
  const ids = Array.from({ length: 1000 }, (_, i) => i + 1);
  const display = truncateDisplay({
    deployment_ids: { ids, names: ids.map(() => name), label: `Deployments: ${name}` },
    min_score: { value: 0.5, label: "Determination score at least 0.5" },
  });
  assertEquals(display.min_score, { value: 0.5, label: "Determination score at least 0.5" });
  const deployments = display.deployment_ids as Record<string, unknown>;
  assertEquals(deployments.ids, ids.slice(0, MAX_ECHO_ITEMS));
  assertEquals(deployments.ids_omitted, 980);
  assertEquals((deployments.names as string[]).length, MAX_ECHO_ITEMS);
  assertEquals(deployments.names_omitted, 980);
  assertEquals(
    deployments.label as string,
    `Deployments: ${"N".repeat(MAX_DISPLAY_CHARS - "Deployments: ".length - 1)}${ELLIPSIS}`,
  );
  assert(JSON.stringify(display).length < 10_000, String(JSON.stringify(display).length));
});
