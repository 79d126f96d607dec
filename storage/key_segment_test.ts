/** keySegment: any project slug becomes one storable, URL-stable object-key segment. */
import { assert, assertEquals } from "../tests/assert.ts";
import { resolveFilePath } from "./fs.ts";
import { keySegment, MAX_KEY_SEGMENT_BYTES } from "./key_segment.ts";

const HOSTILE = [
  "..",
  ".",
  "../../etc/passwd",
  "a/../b",
  "/leading",
  "trailing/",
  "back\\slash",
  "tab\tline\nNUL\u0000DEL\u007fC1\u0085",
  ".hidden",
  '100% {moths} [2024] <x> #1 |pipe| ~tilde^ `tick` "q"',
  "x".repeat(300),
  "ü".repeat(300),
  "🦋‍⬛".repeat(100),
  "lone \ud800 surrogate",
  "",
  "Écaille e\u0301te\u0301 夜の蛾",
];

Deno.test("keySegment: every slug makes a key both backends store and URLs keep", () => {
  for (const slug of HOSTILE) {
    const segment = keySegment(slug);
    const key = `exports/0b5c1b4e-0000-4000-8000-000000000000/${segment}_export-12345.csv`;
    assert(!segment.includes("/"), segment);
    assert(new TextEncoder().encode(segment).byteLength <= MAX_KEY_SEGMENT_BYTES, slug);
    assert(new TextEncoder().encode(key.split("/").at(-1)!).byteLength <= 255, slug);
    // the filesystem backend accepts it (no dot segment, control character or backslash)
    resolveFilePath("/tmp/ami-exports-keys", key);
    // a URL naming it (percent-encoded segments, RFC 3986 §2.1) is not normalized away
    const url = new URL(
      `https://s3.test/bucket/${key.split("/").map(encodeURIComponent).join("/")}`,
    );
    assertEquals(url.pathname.split("/").map(decodeURIComponent).join("/"), `/bucket/${key}`);
    assertEquals(keySegment(segment), segment, `not idempotent: ${slug}`);
    assertEquals(segment.toWellFormed(), segment);
  }
});

Deno.test("keySegment: ordinary and non-ASCII slugs stay readable", () => {
  assertEquals(keySegment("moths-2024"), "moths-2024");
  assertEquals(keySegment("hostile-1a2b3c4d"), "hostile-1a2b3c4d");
  assertEquals(keySegment("Écaille été 夜の蛾"), "Écaille été 夜の蛾");
  assertEquals(keySegment("e\u0301te\u0301"), "été"); // NFC
  assertEquals(keySegment("../x"), "___x");
  assertEquals(keySegment(".."), "__");
  assertEquals(keySegment(""), "_");
  assertEquals(keySegment("a#b%c"), "a_b_c");
  assertEquals(keySegment("ü".repeat(300)), "ü".repeat(MAX_KEY_SEGMENT_BYTES / 2));
});
