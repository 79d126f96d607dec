import { assert, assertEquals, assertThrows } from "../tests/assert.ts";
import {
  boundedFileName,
  EXPORT_DIR_BYTES,
  exportFileName,
  exportsDirProblem,
  keyBoundsProblem,
  MAX_GENERATED_KEY_BYTES,
  MAX_KEY_BYTES,
  MAX_NAME_BYTES,
  MAX_PATH_BYTES,
  pathBoundsProblem,
  safeNameSegment,
  storagePrefixProblem,
  truncateUtf8,
  utf8ByteLength,
} from "./key_bounds.ts";

const bytes = utf8ByteLength;
const decoder = new TextDecoder("utf-8", { fatal: true });

/** True when `text` survives a strict UTF-8 round trip unchanged (no split character). */
function roundTrips(text: string): boolean {
  return decoder.decode(new TextEncoder().encode(text)) === text;
}

Deno.test("utf8ByteLength counts bytes, not UTF-16 units", () => {
  assertEquals(bytes("abc"), 3);
  assertEquals(bytes("é"), 2);
  assertEquals(bytes("€"), 3);
  assertEquals(bytes("🦋"), 4); // 2 UTF-16 units
  assertEquals(bytes("\ud800"), 3); // a lone surrogate is written as U+FFFD
});

Deno.test("truncateUtf8 never splits a character, at every budget", () => {
  const samples = [
    "a".repeat(300),
    "é".repeat(200),
    "🦋".repeat(100),
    "a🦋é€".repeat(40),
    "👩🏽‍🔬".repeat(20), // one grapheme of 4 code points + a skin tone
    "עברית-مرحبا-".repeat(20),
  ];
  for (const text of samples) {
    for (let budget = 0; budget <= 260; budget++) {
      const cut = truncateUtf8(text, budget);
      assert(bytes(cut) <= budget, `${bytes(cut)} > ${budget}`);
      assert(text.startsWith(cut), `not a prefix at ${budget}`);
      assert(roundTrips(cut), `split character at ${budget}: ${JSON.stringify(cut)}`);
      // as long as possible: the next whole character (grapheme cluster) would not have fit
      const [next] = new Intl.Segmenter("en", { granularity: "grapheme" })
        .segment(text.slice(cut.length));
      if (next) assert(bytes(cut) + bytes(next.segment) > budget, `too short at ${budget}`);
    }
  }
});

Deno.test("truncateUtf8 drops a 4-byte character at the cut whole", () => {
  assertEquals(truncateUtf8("ab🦋", 5), "ab");
  assertEquals(truncateUtf8("ab🦋", 6), "ab🦋");
  assertEquals(truncateUtf8("é".repeat(3), 5), "éé");
});

Deno.test("truncateUtf8 keeps grapheme clusters whole, code points when one cluster is too long", () => {
  const family = "👨‍👩‍👧"; // 18 bytes
  assertEquals(truncateUtf8(`x${family}`, 18), "x");
  assertEquals(truncateUtf8("e\u0301e\u0301", 4), "e\u0301"); // the accent stays with its e
  const zalgo = `a${"\u0301".repeat(200)}`; // one cluster of 401 bytes
  const cut = truncateUtf8(zalgo, 255);
  assertEquals(bytes(cut), 255); // 1 + 127 × 2
  assert(roundTrips(cut));
  assertEquals(truncateUtf8("abc", 0), "");
  assertThrows(() => truncateUtf8("abc", -1), RangeError);
  assertEquals(truncateUtf8("a\ud800b", 10), "a\ufffdb");
});

Deno.test("safeNameSegment replaces separators, controls, bidi marks and a leading dot", () => {
  assertEquals(safeNameSegment("a/b\\c"), "a_b_c");
  assertEquals(safeNameSegment(".."), "_.");
  assertEquals(safeNameSegment(".hidden"), "_hidden");
  assertEquals(safeNameSegment("../../etc/passwd"), "_._.._etc_passwd");
  assertEquals(safeNameSegment("nul\0here\r\n\t\x7f\x85"), "nul_here_____");
  assertEquals(safeNameSegment("moths\u202egpj.exe"), "moths_gpj.exe"); // RLO
  assertEquals(safeNameSegment("\u200e\u200f\u2066\u2069\u061c"), "_____");
  assertEquals(safeNameSegment("line\u2028para\u2029bom\ufeff"), "line_para_bom_");
  assertEquals(safeNameSegment("\ud83d"), "\ufffd");
  // readable text stays as it is
  for (const kept of ["Moths of Québec 🦋", "עברית", "مرحبا", "a.b-c_d (e) [f] #1 %20 ?&", "👩🏽‍🔬"]) {
    assertEquals(safeNameSegment(kept), kept);
  }
});

Deno.test("exportFileName keeps short names as the original platform's", () => {
  assertEquals(
    exportFileName({ projectSlug: "moths-2024", exportId: 17, extension: "csv" }),
    "moths-2024_export-17.csv",
  );
  assertEquals(
    exportFileName({ projectSlug: "", exportId: 1, extension: "ndjson" }),
    "_export-1.ndjson",
  );
});

Deno.test("exportFileName bounds every slug to 255 bytes and keeps id and extension", () => {
  const slugs = [
    "s".repeat(250),
    "s".repeat(10_000),
    "é".repeat(200),
    "🦋".repeat(200),
    `${"a".repeat(233)}🦋🦋`, // a 4-byte character across the cut
    `${"a".repeat(234)}🦋`,
    "👨‍👩‍👧".repeat(30),
    `a${"\u0301".repeat(500)}`,
    "/".repeat(300),
    "\0".repeat(300),
    "\u202e".repeat(300),
    `..${"/..".repeat(100)}`,
  ];
  for (const projectSlug of slugs) {
    for (const exportId of [1, 123456, Number.MAX_SAFE_INTEGER]) {
      for (const extension of ["csv", "parquet", "tar.gz"]) {
        const name = exportFileName({ projectSlug, exportId, extension });
        assert(bytes(name) <= MAX_NAME_BYTES, `${bytes(name)} bytes: ${name}`);
        assert(name.endsWith(`_export-${exportId}.${extension}`), name);
        assert(roundTrips(name), JSON.stringify(name));
        assert(!name.includes("/") && !name.startsWith("."), name);
        assertEquals(keyBoundsProblem(name), null);
        assertEquals(pathBoundsProblem(100, name), null);
      }
    }
  }
  // as long as it can be: a 250-character ASCII slug fills the budget exactly
  const long = exportFileName({ projectSlug: "s".repeat(250), exportId: 7, extension: "csv" });
  assertEquals(bytes(long), MAX_NAME_BYTES);
  assertEquals(long, `${"s".repeat(255 - "_export-7.csv".length)}_export-7.csv`);
});

Deno.test("exportFileName: slugs differing only after the cut give one name (keys differ by uuid)", () => {
  const a = exportFileName({ projectSlug: `${"x".repeat(300)}-a`, exportId: 3, extension: "csv" });
  const b = exportFileName({ projectSlug: `${"x".repeat(300)}-b`, exportId: 3, extension: "csv" });
  assertEquals(a, b);
});

Deno.test("exportFileName honours a smaller budget and refuses one without room for the tail", () => {
  const name = exportFileName({ projectSlug: "é".repeat(100), exportId: 42, extension: "csv" }, 30);
  assert(bytes(name) <= 30);
  assertEquals(name, `${"é".repeat(8)}_export-42.csv`); // 16 + 14 bytes
  assertThrows(
    () => exportFileName({ projectSlug: "x", exportId: 42, extension: "csv" }, 10),
    RangeError,
    "no room",
  );
  assertThrows(
    () => exportFileName({ projectSlug: "x", exportId: -1, extension: "csv" }),
    RangeError,
  );
  assertThrows(
    () => exportFileName({ projectSlug: "x", exportId: 1, extension: "c/../sv" }),
    RangeError,
  );
});

Deno.test("keyBoundsProblem: S3's 1,024 bytes of UTF-8, well-formed", () => {
  assertEquals(keyBoundsProblem("exports/u/a.csv"), null);
  assertEquals(keyBoundsProblem("é".repeat(512)), null); // 1,024 bytes
  assert(keyBoundsProblem(`${"é".repeat(512)}a`)!.includes("1025 bytes of UTF-8"));
  assert(keyBoundsProblem("🦋".repeat(257))!.includes("1024 of an S3 object key")); // 514 units
  assertEquals(keyBoundsProblem(`d/${"é".repeat(300)}`), null); // segments are S3's business
  assert(keyBoundsProblem("a\ud800")!.includes("lone surrogate"));
});

Deno.test("pathBoundsProblem: NAME_MAX per segment and PATH_MAX for the whole path", () => {
  assertEquals(pathBoundsProblem(12, `d/${"é".repeat(127)}a`), null); // a 255-byte segment
  assert(pathBoundsProblem(12, `d/${"é".repeat(128)}`)!.includes("256-byte path segment"));
  assert(pathBoundsProblem(12, `${"s".repeat(256)}/x`)!.includes("NAME_MAX"));
  assertEquals(pathBoundsProblem(MAX_PATH_BYTES - 4, "a/b"), null);
  assert(pathBoundsProblem(MAX_PATH_BYTES - 4, "a/bc")!.includes("4096-byte path"));
  assert(pathBoundsProblem(1, "\udc00")!.includes("lone surrogate"));
  // longer than S3's 1,024 bytes, yet a file that can exist (read and delete must reach it)
  assertEquals(pathBoundsProblem(20, `${"é".repeat(100)}/`.repeat(6)), null);
});

Deno.test("the longest generated key fits with the longest accepted STORAGE_PREFIX", () => {
  assertEquals(EXPORT_DIR_BYTES, "exports/00000000-0000-0000-0000-000000000000/".length);
  const room = MAX_KEY_BYTES - MAX_GENERATED_KEY_BYTES;
  const prefix = `${"p".repeat(200)}/`.repeat(Math.floor(room / 201)) +
    "q".repeat(room % 201 - 1) + "/";
  assertEquals(bytes(prefix), room);
  assertEquals(storagePrefixProblem(prefix), null);
  const name = exportFileName({ projectSlug: "🦋".repeat(300), exportId: 9, extension: "csv" });
  const key = `${prefix}exports/${crypto.randomUUID()}/${name}`;
  assert(bytes(key) <= MAX_KEY_BYTES, String(bytes(key)));
  assertEquals(keyBoundsProblem(key), null);
  const longer = `x${prefix}`;
  assert(storagePrefixProblem(longer)!.includes(`at most ${room} bytes`));
  assert(storagePrefixProblem(`${"s".repeat(256)}/`)!.includes("NAME_MAX"));
});

Deno.test("EXPORTS_DIR and STORAGE_PREFIX together stay within PATH_MAX", () => {
  const dirRoom = MAX_PATH_BYTES - 1 - MAX_GENERATED_KEY_BYTES;
  const dir = `/${"d".repeat(200)}`.repeat(Math.ceil(dirRoom / 201)).slice(0, dirRoom);
  assertEquals(exportsDirProblem(dir), null);
  assert(exportsDirProblem(`${dir}d`)!.includes("PATH_MAX"));
  assert(exportsDirProblem(`/tmp/${"d".repeat(256)}`)!.includes("NAME_MAX"));
  assertEquals(storagePrefixProblem("", { exportsDirBytes: bytes(dir) }), null);
  assert(storagePrefixProblem("p/", { exportsDirBytes: bytes(dir) })!.includes("PATH_MAX"));
  assertEquals(storagePrefixProblem("prod/", { exportsDirBytes: 40 }), null);
});

Deno.test("boundedFileName bounds a name read back from an older key, tail kept", () => {
  assertEquals(boundedFileName("moths_export-3.csv"), "moths_export-3.csv");
  const legacy = `${"é".repeat(250)}_export-12.csv`; // 514 bytes, as S3 accepted before
  const bounded = boundedFileName(legacy);
  assert(bytes(bounded) <= MAX_NAME_BYTES);
  assertEquals(bounded, `${"é".repeat(120)}_export-12.csv`); // 240 + 14 bytes
  assertEquals(boundedFileName(`${"🦋".repeat(100)}.parquet`), `${"🦋".repeat(61)}.parquet`);
  assertEquals(boundedFileName("\u202eevil_export-1.csv"), "_evil_export-1.csv");
  assertEquals(boundedFileName("x".repeat(300)), "x".repeat(255));
  assertEquals(bytes(boundedFileName(`a.${"b".repeat(300)}`, 20)), 20);
});
