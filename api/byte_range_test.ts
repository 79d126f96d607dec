import { assertEquals } from "../tests/assert.ts";
import { fileSlice, fileValidators, ifRangeHolds, parseRange } from "./byte_range.ts";

Deno.test("parseRange reads one range of bytes, clamped to the file", () => {
  assertEquals(parseRange("bytes=0-9", 100), { kind: "range", start: 0, end: 9 });
  assertEquals(parseRange("bytes=90-", 100), { kind: "range", start: 90, end: 99 });
  assertEquals(parseRange("bytes=90-1000", 100), { kind: "range", start: 90, end: 99 });
  assertEquals(parseRange("bytes=-10", 100), { kind: "range", start: 90, end: 99 });
  assertEquals(parseRange("bytes=-1000", 100), { kind: "range", start: 0, end: 99 });
  assertEquals(parseRange("Bytes = 5 - 5", 100), { kind: "range", start: 5, end: 5 });
  assertEquals(parseRange("bytes=99-99", 100), { kind: "range", start: 99, end: 99 });
});

Deno.test("parseRange: past the end is unsatisfiable; several, other units, junk: the whole file", () => {
  assertEquals(parseRange("bytes=100-", 100), { kind: "unsatisfiable" });
  assertEquals(parseRange("bytes=100-200", 100), { kind: "unsatisfiable" });
  assertEquals(parseRange("bytes=-0", 100), { kind: "unsatisfiable" });
  assertEquals(parseRange("bytes=0-", 0), { kind: "unsatisfiable" });
  assertEquals(parseRange("bytes=-0", 0), { kind: "unsatisfiable" });
  // RFC 9110 §14.1.1: of an empty file, a suffix range is satisfiable, yet no 206 can state it
  // (`bytes 0--1/0`): the whole (empty) file, 200; a client asking for the tail of a file that
  // turned out empty gets it instead of an error
  assertEquals(parseRange("bytes=-5", 0), { kind: "whole" });
  for (
    const header of [
      null,
      "",
      "bytes=0-1,5-6",
      "bytes=0-1, 5-",
      "items=0-1",
      "bytes=5-1",
      "bytes=a-b",
      "bytes=-",
      "bytes=0x1-2",
      "bytes=1e3-",
    ]
  ) {
    assertEquals(parseRange(header, 100), { kind: "whole" }, String(header));
  }
});

Deno.test("fileSlice streams the slice and closes the file", async () => {
  const path = await Deno.makeTempFile();
  try {
    const bytes = new Uint8Array(200_000).map((_, i) => i % 251);
    await Deno.writeFile(path, bytes);
    const file = await Deno.open(path);
    const got = new Uint8Array(await new Response(fileSlice(file, 70_000, 100_001)).arrayBuffer());
    assertEquals(got, bytes.subarray(70_000, 170_001));
    // closed: a second close throws BadResource
    let closedAlready = false;
    try {
      file.close();
    } catch (error) {
      closedAlready = error instanceof Deno.errors.BadResource;
    }
    assertEquals(closedAlready, true);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("ifRangeHolds: the range applies only for the file's own strong tag or date", () => {
  const mtime = new Date(Date.UTC(2026, 11, 7, 16, 0, 0, 250));
  const v = fileValidators(200_000, mtime)!;
  assertEquals(v.etag, `"30d40-${mtime.getTime().toString(16)}"`);
  assertEquals(v.lastModified, "Mon, 07 Dec 2026 16:00:00 GMT");
  assertEquals(ifRangeHolds(undefined, v), true);
  assertEquals(ifRangeHolds(v.etag, v), true);
  assertEquals(ifRangeHolds(` ${v.etag} `, v), true);
  assertEquals(ifRangeHolds(v.lastModified, v), true);
  // another file, a weak tag (never for ranges, §13.1.5), another second, junk
  assertEquals(ifRangeHolds('"30d40-0"', v), false);
  assertEquals(ifRangeHolds(`W/${v.etag}`, v), false);
  assertEquals(ifRangeHolds("Mon, 07 Dec 2026 16:00:01 GMT", v), false);
  assertEquals(ifRangeHolds("yesterday", v), false);
  assertEquals(ifRangeHolds(v.etag, fileValidators(200_000, null)), false);
});
