import { constants, crc32, inflateRawSync } from "node:zlib";
import { assertEquals } from "../tests/assert.ts";
import {
  appendEntryPiece,
  beginEntry,
  centralDirectory,
  crc32Combine,
  endEntry,
  entryLength,
  writeEntryData,
} from "./zip.ts";

const encoder = new TextEncoder();

function u32(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(at, true);
}

function indexOfSignature(bytes: Uint8Array, signature: number): number {
  for (let i = 0; i + 4 <= bytes.length; i++) if (u32(bytes, i) === signature) return i;
  return -1;
}

Deno.test("zip: independently compressed chunks make one deflate stream with the right CRC", () => {
  const begun = beginEntry("a.txt", { offset: 0, modified: "2024-06-01T12:00:00Z" });
  let entry = begun.entry;
  const compressed: Uint8Array[] = [];
  const pieces = ["hello ", "", "hello again ", "x".repeat(70_000)];
  for (const piece of pieces) {
    const written = writeEntryData(entry, encoder.encode(piece));
    compressed.push(written.bytes);
    entry = written.entry;
  }
  const ended = endEntry(entry);
  const data = new Uint8Array(ended.entry.compressedSize);
  let at = 0;
  for (const part of [...compressed, ended.bytes.subarray(0, ended.bytes.length - 16)]) {
    data.set(part, at);
    at += part.length;
  }
  const text = new TextDecoder().decode(inflateRawSync(data));
  assertEquals(text, pieces.join(""));
  assertEquals(ended.entry.size, encoder.encode(pieces.join("")).length);
  // data descriptor: signature, crc, 32-bit sizes
  const descriptor = ended.bytes.subarray(ended.bytes.length - 16);
  assertEquals(u32(descriptor, 0), 0x08074b50);
  assertEquals(u32(descriptor, 8), ended.entry.compressedSize);
  assertEquals(
    entryLength(ended.entry),
    begun.bytes.length + ended.entry.compressedSize + 16,
  );
});

Deno.test("zip: data compressed already is stored in deflate's stored blocks, not deflated again", () => {
  const begun = beginEntry("a.jpg", { offset: 0, modified: "2024-06-01T12:00:00Z" });
  // compressible bytes, so that deflating them would show: 100 KB of one repeated byte
  const data = new Uint8Array(100_000).fill(0x41);
  const deflated = writeEntryData(begun.entry, data);
  const stored = writeEntryData(begun.entry, data, { compressed: true });
  // RFC 1951 §3.2.3: BTYPE (bits 1–2 of the first byte) 00 = stored, 01/10 = compressed
  assertEquals((stored.bytes[0] >> 1) & 3, 0);
  assertEquals(((deflated.bytes[0] >> 1) & 3) !== 0, true);
  assertEquals(deflated.bytes.length < 1_000, true);
  // the bytes as they are, with 5 bytes of block header per stored block (0.02 % here)
  assertEquals(stored.bytes.length > data.length, true);
  assertEquals(stored.bytes.length < data.length * 1.001, true);
  // a piece ends in a sync flush, not a final block: inflate it as such
  const inflate = (bytes: Uint8Array) =>
    new Uint8Array(inflateRawSync(bytes, { finishFlush: constants.Z_SYNC_FLUSH }));
  assertEquals(inflate(stored.bytes), data);
  assertEquals(inflate(deflated.bytes), data);
  assertEquals(stored.entry.crc, deflated.entry.crc);
  assertEquals(stored.entry.size, data.length);
  assertEquals(stored.entry.compressedSize, stored.bytes.length);
});

Deno.test("zip: sizes and offsets over 4 GiB get ZIP64 records", () => {
  const big = { name: "occurrence.txt", offset: 5e9, crc: 1, compressedSize: 4.5e9, size: 9e9 };
  const ended = endEntry({ ...big, compressedSize: big.compressedSize - 2 });
  assertEquals(ended.bytes.length, 2 + 24); // final block + 64-bit descriptor
  const cd = centralDirectory([big], { offset: 2e10, modified: "2024-06-01T12:00:00Z" });
  assertEquals(u32(cd, 0), 0x02014b50);
  assertEquals(u32(cd, 20), 0xffffffff); // compressed size in the extra field
  assertEquals(u32(cd, 42), 0xffffffff); // offset in the extra field
  const extraAt = 46 + "occurrence.txt".length;
  assertEquals(new DataView(cd.buffer).getUint16(extraAt, true), 0x0001);
  assertEquals(new DataView(cd.buffer).getUint16(extraAt + 2, true), 24);
  const zip64End = indexOfSignature(cd, 0x06064b50);
  const locator = indexOfSignature(cd, 0x07064b50);
  const end = indexOfSignature(cd, 0x06054b50);
  assertEquals([zip64End > 0, locator > zip64End, end > locator], [true, true, true]);
  const view = new DataView(cd.buffer);
  assertEquals(Number(view.getBigUint64(zip64End + 48, true)), 2e10); // central directory offset
  assertEquals(u32(cd, end + 16), 0xffffffff);

  const small = centralDirectory([{ ...big, offset: 0, compressedSize: 10, size: 20 }], {
    offset: 100,
    modified: "2024-06-01T12:00:00Z",
  });
  assertEquals(indexOfSignature(small, 0x06064b50), -1);
});

Deno.test("crc32Combine gives the CRC-32 of the concatenation from the parts' CRCs", () => {
  const a = new TextEncoder().encode("occurrenceID\tscientificName\n1\tAgrotis ipsilon\n");
  const b = new Uint8Array(70_001).map((_, i) => (i * 31 + 7) & 0xff);
  const whole = new Uint8Array(a.length + b.length);
  whole.set(a);
  whole.set(b, a.length);
  assertEquals(crc32Combine(crc32(a), crc32(b), b.length), crc32(whole) >>> 0);
  assertEquals(crc32Combine(crc32(a), 0, 0), crc32(a) >>> 0);
  assertEquals(crc32Combine(0, crc32(b), b.length), crc32(b) >>> 0);
  // the entry state continued by a piece written apart: as if written in one entry
  let entry = beginEntry("x.txt", { offset: 0, modified: "2026-01-01T00:00:00Z" }).entry;
  entry = writeEntryData(entry, a).entry;
  const apart = writeEntryData(
    beginEntry("x.txt", { offset: 0, modified: "2026-01-01T00:00:00Z" }).entry,
    b,
  );
  const joined = appendEntryPiece(entry, apart.entry);
  const straight = writeEntryData(entry, b).entry;
  assertEquals(joined, straight);
});
