/**
 * The finished entries of a zip archive in a compact checkpoint form: one string, so that an
 * archive of 100,000 entries keeps its central directory's facts in a Temporal heartbeat (payloads
 * above 2 MB are refused) at about 18.5 bytes an entry (measured: `zip_entries_packed_test.ts`).
 *
 * Form: base64 of raw deflate (RFC 1951) of the entries one after the other, each as unsigned
 * LEB128 varints and bytes:
 * `shared` (bytes of the name shared with the previous name), `suffixLength`, the suffix (UTF-8),
 * `crc` (CRC-32, 4 bytes little-endian), `size` (bytes), the zigzag-encoded `compressedSize -
 * size` (a few bytes for a deflated JPEG), then the zigzag-encoded difference between
 * the entry's offset and the end of the previous entry (`entryLength` of `registry/zip.ts`; 0 in every archive
 * the driver writes, its entries lying back to back). These are the central directory's
 * per-entry values (APPNOTE.TXT 4.3.12: CRC-32, sizes, relative offset of local header, file
 * name); flags, method and time are the same for every entry (`registry/zip.ts`).
 */
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { Buffer } from "node:buffer";
import { entryLengthOf, type ZipEntry } from "./zip.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Appends `v` (a non-negative safe integer) as an unsigned LEB128 varint. */
function pushVarint(out: number[], v: number): void {
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

function zigzag(v: number): number {
  return v >= 0 ? v * 2 : -v * 2 - 1;
}

function unzigzag(v: number): number {
  return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
}

function sharedPrefix(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** The packed string of `entries` ("" for none). */
export function packEntries(entries: readonly ZipEntry[]): string {
  if (entries.length === 0) return "";
  const out: number[] = [];
  let previous = new Uint8Array(0);
  let end = 0;
  for (const entry of entries) {
    const name = encoder.encode(entry.name);
    const shared = sharedPrefix(previous, name);
    pushVarint(out, shared);
    pushVarint(out, name.length - shared);
    for (let i = shared; i < name.length; i++) out.push(name[i]);
    const crc = entry.crc >>> 0;
    out.push(crc & 0xff, (crc >>> 8) & 0xff, (crc >>> 16) & 0xff, crc >>> 24);
    pushVarint(out, entry.size);
    pushVarint(out, zigzag(entry.compressedSize - entry.size));
    pushVarint(out, zigzag(entry.offset - end));
    previous = name;
    end = entry.offset + entryLengthOf(name.length, entry);
  }
  return deflateRawSync(Uint8Array.from(out)).toString("base64");
}

/**
 * The entries of a packed string. Throws on a string that is not a packed form (corrupt
 * checkpoint).
 */
export function unpackEntries(packed: string): ZipEntry[] {
  if (packed === "") return [];
  const bytes = new Uint8Array(inflateRawSync(Buffer.from(packed, "base64")));
  const entries: ZipEntry[] = [];
  let at = 0;
  const varint = (): number => {
    let v = 0;
    let scale = 1;
    for (;;) {
      if (at >= bytes.length) throw new Error("packed zip entries end inside an entry");
      const b = bytes[at++];
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
      scale *= 0x80;
    }
  };
  let previous = new Uint8Array(0);
  let end = 0;
  while (at < bytes.length) {
    const shared = varint();
    const suffix = varint();
    const name = new Uint8Array(shared + suffix);
    name.set(previous.subarray(0, shared));
    name.set(bytes.subarray(at, at + suffix), shared);
    at += suffix;
    if (at + 4 > bytes.length) throw new Error("packed zip entries end inside an entry");
    const crc =
      (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
    at += 4;
    const size = varint();
    const compressedSize = size + unzigzag(varint());
    const offset = end + unzigzag(varint());
    const entry: ZipEntry = { name: decoder.decode(name), offset, crc, compressedSize, size };
    entries.push(entry);
    previous = name;
    end = offset + entryLengthOf(name.length, entry);
  }
  return entries;
}
