/**
 * Property tests of the encoders (issue 12): random strings over all of Unicode round-trip
 * through each text format and an independent reader (Python's csv, json and lxml), random
 * floats come out as exact plain decimals, random ids up to 2^63 − 1 come out exact.
 */
import { stringify } from "csv-stringify/sync";
import { parseBigint } from "../db/client.ts";
import { assert, assertEquals } from "../tests/assert.ts";
import { readWith } from "../tests/readers.ts";
import {
  csvFormulaGuard,
  decimalText,
  jsonLineSafe,
  wgs84,
  xmlChars,
  xmlText,
} from "./encoding.ts";
import { tsvCell } from "./formats/dwca.ts";
import { recordId } from "./types.ts";

/** A seeded PRNG (mulberry32), so that a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return (): number => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(Deno.env.get("PROPERTY_SEED") ?? 12);

/** Characters the formats must survive, picked often. */
const NASTY = [
  0x0,
  0x1,
  0x2,
  0x8,
  0x9,
  0xA,
  0xB,
  0xC,
  0xD,
  0x1B,
  0x1F,
  0x7F,
  0x85,
  0xA0,
  0x2028,
  0x2029,
  0xFEFF,
  0xFFFE,
  0xFFFF,
  0xFFFD,
  0x1F600,
  0x10FFFF,
  0x22,
  0x27,
  0x2C,
  0x3C,
  0x3E,
  0x26,
  0x3D,
  0x2B,
  0x2D,
  0x40,
  0x5C,
  0xC9,
].map((c) => String.fromCodePoint(c));

/**
 * Random strings over all of Unicode: scalar values from every plane, the nasty characters
 * above, and lone surrogates only when `surrogates` (a database text never holds one).
 */
function randomStrings(
  n: number,
  options: { seed: number; surrogates?: boolean; nul?: boolean },
): string[] {
  const rand = prng(options.seed);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const length = Math.floor(rand() * 12);
    let s = "";
    for (let j = 0; j < length; j++) {
      const r = rand();
      if (r < 0.4) s += NASTY[Math.floor(rand() * NASTY.length)];
      else if (r < 0.5 && options.surrogates) {
        s += String.fromCharCode(0xD800 + Math.floor(rand() * 0x800));
      } else {
        let cp = Math.floor(rand() * 0x110000);
        if (cp >= 0xD800 && cp <= 0xDFFF) cp -= 0x800;
        s += String.fromCodePoint(cp);
      }
    }
    if (!options.nul) s = s.replaceAll("\0", "");
    out.push(s);
  }
  return out;
}

Deno.test("encoding: XML text round-trips through lxml (XML 1.0 §2.2 characters removed)", async () => {
  const strings = randomStrings(400, { seed: SEED, surrogates: true, nul: true });
  const doc = `<?xml version="1.0" encoding="UTF-8"?>\n<r>${
    strings.map((s) => `<s a="${xmlText(s)}">${xmlText(s)}</s>`).join("")
  }</r>`;
  const read = await readWith("xml", doc) as { texts: string[] };
  assertEquals(read.texts, strings.map(xmlChars));
  // nothing allowed is lost: a string of allowed characters comes back whole
  assertEquals(xmlChars("a\tb\r\nc\u{10FFFF}\uFFFD"), "a\tb\r\nc\u{10FFFF}\uFFFD");
  assertEquals(xmlChars("\u0000\u0002\uFFFE\uFFFF\uD800x"), "x");
});

Deno.test("encoding: NDJSON lines round-trip through str.splitlines and strict json", async () => {
  const strings = randomStrings(400, { seed: SEED + 1 });
  strings.push("\u2028", "a\u2029b", "\u0085", "\r", "\u001C\u001D\u001E"); // splitlines breaks
  const text = strings.map((s) => jsonLineSafe(JSON.stringify({ v: s })) + "\n").join("");
  assert(!/[\u0085\u2028\u2029]/.test(text), "a raw line separator is left");
  const read = await readWith("ndjson", text) as { lines: number; records: { v: string }[] };
  assertEquals(Number(read.lines), strings.length);
  assertEquals(read.records.map((r) => r.v), strings);
});

Deno.test("encoding: CSV cells round-trip through Python's csv, formula-guarded", async () => {
  const strings = randomStrings(400, { seed: SEED + 2 });
  const options = {
    record_delimiter: "\r\n",
    quoted_match: /[\r\n]/,
    cast: { string: csvFormulaGuard },
  };
  const text = stringify(strings.map((s, i) => [s, i]), options);
  const read = await readWith("csv", text) as { rows: string[][] };
  assertEquals(read.rows.length, strings.length);
  assertEquals(read.rows.map((r) => r[0]), strings.map(csvFormulaGuard));
  assertEquals(read.rows.map((r) => r[1]), strings.map((_, i) => String(i)));
  for (const s of strings) {
    const guarded = csvFormulaGuard(s);
    assert(!/^[=+\-@\t\r]/.test(guarded) || /^-?[0-9.]/.test(guarded), JSON.stringify(s));
  }
  assertEquals(csvFormulaGuard("=1+2"), "'=1+2");
  assertEquals(csvFormulaGuard("+cmd|' /C calc'!A0"), "'+cmd|' /C calc'!A0");
  assertEquals(csvFormulaGuard("@SUM(A1)"), "'@SUM(A1)");
  assertEquals(csvFormulaGuard("\tx"), "'\tx");
  assertEquals(csvFormulaGuard("\rx"), "'\rx");
  assertEquals(csvFormulaGuard("-x"), "'-x");
  assertEquals(csvFormulaGuard("-3.5"), "-3.5");
  assertEquals(csvFormulaGuard("-1e-7"), "-1e-7");
  assertEquals(csvFormulaGuard("a=b"), "a=b");
});

Deno.test("encoding: TSV cells of the archive keep one row of fixed width", async () => {
  const strings = randomStrings(400, { seed: SEED + 3 });
  const text = strings.map((s, i) => `${tsvCell(s)}\t${i}\n`).join("");
  const read = await readWith("tsv", text) as { rows: string[][] };
  assertEquals(read.rows.length, strings.length);
  assertEquals(read.rows.map((r) => r.length), strings.map(() => 2));
  assertEquals(read.rows.map((r) => r[0]), strings.map(tsvCell));
  assertEquals(tsvCell("a\tb\r\nc"), "a b c");
});

Deno.test("encoding: random finite floats are exact plain decimals, non-finite ones refused", () => {
  const rand = prng(SEED + 4);
  const view = new DataView(new ArrayBuffer(8));
  const values = [0, -0, 1e-7, -5e-324, 5e-324, 1.7976931348623157e308, 1e21, 123456789e-20];
  for (let i = 0; i < 5000; i++) {
    view.setUint32(0, Math.floor(rand() * 2 ** 32));
    view.setUint32(4, Math.floor(rand() * 2 ** 32));
    values.push(view.getFloat64(0));
  }
  for (const x of values) {
    if (!Number.isFinite(x)) {
      let threw = false;
      try {
        decimalText(x);
      } catch {
        threw = true;
      }
      assert(threw, `decimalText(${x}) must throw`);
      continue;
    }
    const text = decimalText(x);
    assert(/^-?[0-9]+([.][0-9]+)?$/.test(text), `${x} → ${text}`);
    assertEquals(Number(text), x === 0 ? 0 : x, text);
  }
  assertEquals(decimalText(1e-7), "0.0000001");
  assertEquals(decimalText(-2.5e-7), "-0.00000025");
  assertEquals(decimalText(1.5e21), "1500000000000000000000");
  assertEquals(decimalText(45.5), "45.5");
});

Deno.test("encoding: WGS84 pairs are both finite and in range, or nothing", () => {
  assertEquals(wgs84(45.5, -73.25), { latitude: 45.5, longitude: -73.25 });
  assertEquals(wgs84(90, 180), { latitude: 90, longitude: 180 });
  assertEquals(wgs84(-90, -180), { latitude: -90, longitude: -180 });
  for (
    const [lat, lon] of [
      [91, 0],
      [0, 180.5],
      [-90.0001, 0],
      [null, 5],
      [5, null],
      [NaN, 1],
      [1, Infinity],
      [-Infinity, 1],
      ["45", 1],
    ] as [unknown, unknown][]
  ) {
    assertEquals(wgs84(lat, lon), null, `${lat}, ${lon}`);
  }
});

Deno.test("encoding: random ids up to 2^63 − 1 come out of the bigint parser exact", () => {
  const rand = prng(SEED + 5);
  const ids = [
    0n,
    1n,
    2n ** 53n - 1n,
    2n ** 53n,
    2n ** 53n + 1n,
    9007199254740995n,
    2n ** 63n - 1n,
  ];
  for (let i = 0; i < 5000; i++) {
    const bits = BigInt(Math.floor(rand() * 64));
    const hi = BigInt(Math.floor(rand() * 2 ** 32));
    const lo = BigInt(Math.floor(rand() * 2 ** 32));
    ids.push(((hi << 32n) | lo) % (2n ** bits + 1n));
  }
  for (const id of ids) {
    const text = id.toString();
    const parsed = parseBigint(text);
    assertEquals(String(parsed), text);
    assertEquals(String(recordId(parsed)), text);
    assertEquals(recordId(parsed), parsed);
    assertEquals(typeof parsed, id <= BigInt(Number.MAX_SAFE_INTEGER) ? "number" : "string");
  }
  assertEquals(recordId(9007199254740995n), "9007199254740995");
  assertEquals(recordId("9007199254740996"), "9007199254740996");
  assertEquals(recordId("42"), 42);
});
