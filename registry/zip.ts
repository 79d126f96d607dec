/**
 * A streamed, resumable ZIP writer made of pure functions over a small JSON state.
 *
 * Entries are written with data descriptors (sizes and CRC after the data), so an entry can be
 * written chunk by chunk without knowing its size. Each chunk is compressed on its own as raw
 * deflate ending in a sync flush (byte-aligned, non-final blocks, no back-references to earlier
 * chunks), and an entry ends with one final empty block. The concatenation is a valid deflate
 * stream, and no compressor state has to survive a checkpoint: resuming needs only the offsets,
 * the running CRC-32 and the sizes kept in {@link ZipEntryState}, plus the finished entries for
 * the central directory. ZIP64 records are written where a size or offset needs them (> 4 GiB).
 */
import { constants, crc32, deflateRawSync } from "node:zlib";

const MAX32 = 0xffffffff;
const encoder = new TextEncoder();

/** A finished entry, as the central directory needs it. */
export interface ZipEntry {
  [key: string]: string | number;
  name: string;
  offset: number;
  crc: number;
  compressedSize: number;
  size: number;
}

/** The entry being written: the same fields, its CRC and sizes so far. */
export type ZipEntryState = ZipEntry;

/** MS-DOS time and date of an ISO timestamp (UTC fields; DOS time has no zone). */
function dosDateTime(iso: string): { time: number; date: number } {
  const d = new Date(iso);
  const year = Math.max(1980, d.getUTCFullYear());
  return {
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2),
    date: ((year - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
  };
}

/** Little-endian byte builder. */
class Bytes {
  #parts: number[] = [];
  u16(v: number): this {
    this.#parts.push(v & 0xff, (v >>> 8) & 0xff);
    return this;
  }
  u32(v: number): this {
    this.#parts.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
    return this;
  }
  u64(v: number): this {
    return this.u32(v % 0x100000000).u32(Math.floor(v / 0x100000000));
  }
  raw(bytes: Uint8Array): this {
    for (const b of bytes) this.#parts.push(b);
    return this;
  }
  done(): Uint8Array {
    return Uint8Array.from(this.#parts);
  }
}

/** General purpose flags: sizes in a data descriptor (bit 3), UTF-8 names (bit 11). */
const FLAGS = 0x0808;
const DEFLATE = 8;

/** Starts an entry at byte `at.offset`: its local file header, and the open entry's state. */
export function beginEntry(
  name: string,
  at: { offset: number; modified: string },
): { bytes: Uint8Array; entry: ZipEntryState } {
  const { offset, modified } = at;
  const nameBytes = encoder.encode(name);
  const { time, date } = dosDateTime(modified);
  const bytes = new Bytes()
    .u32(0x04034b50)
    .u16(20)
    .u16(FLAGS)
    .u16(DEFLATE)
    .u16(time)
    .u16(date)
    .u32(0) // crc: in the data descriptor
    .u32(0) // compressed size: idem
    .u32(0) // size: idem
    .u16(nameBytes.length)
    .u16(0)
    .raw(nameBytes)
    .done();
  return { bytes, entry: { name, offset, crc: 0, compressedSize: 0, size: 0 } };
}

/**
 * Compresses `data` as the next independent piece of the open entry, at zlib's default level
 * (6), or at level 0 when `options.compressed` says the data is compressed already (a JPEG):
 * stored deflate blocks (RFC 1951 §3.2.4), what zip tools do for such files (Info-ZIP's `-n`).
 * Deflating a photograph's JPEG gains 0.1–0.3 % at 17–32 MB/s of one core; level 0 adds
 * 0.02–0.12 % at 232–281 MB/s (docs/benchmarks.md, "JPEG members stored").
 */
export function writeEntryData(
  entry: ZipEntryState,
  data: Uint8Array,
  options: { compressed?: boolean } = {},
): { bytes: Uint8Array; entry: ZipEntryState } {
  if (data.length === 0) return { bytes: data, entry };
  const bytes = new Uint8Array(
    deflateRawSync(data, {
      finishFlush: constants.Z_SYNC_FLUSH,
      ...(options.compressed ? { level: 0 } : {}),
    }),
  );
  return {
    bytes,
    entry: {
      ...entry,
      crc: crc32(data, entry.crc) >>> 0,
      compressedSize: entry.compressedSize + bytes.length,
      size: entry.size + data.length,
    },
  };
}

/** The CRC-32 polynomial, reflected (ISO 3309; zlib's `POLY`). */
const CRC32_POLY = 0xedb88320;

/** `a(x) · b(x)` modulo the CRC-32 polynomial, both reflected (zlib's `multmodp`). */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ CRC32_POLY : b >>> 1;
  }
  return p >>> 0;
}

/** `x^(2^k)` modulo the polynomial for k = 0…31 (zlib's `x2n_table`). */
const X2N_TABLE: number[] = (() => {
  const table = [0x40000000]; // x^1
  for (let k = 1; k < 32; k++) table.push(multModP(table[k - 1], table[k - 1]));
  return table;
})();

/** `x^(n·2^k)` modulo the polynomial (zlib's `x2nmodp`); `n` any non-negative safe integer. */
function x2nModP(n: number, k: number): number {
  let p = 0x80000000; // x^0
  while (n > 0) {
    if (n % 2 === 1) p = multModP(X2N_TABLE[k & 31], p);
    n = Math.floor(n / 2);
    k++;
  }
  return p;
}

/**
 * The CRC-32 of `A ‖ B` from `crc32(A)`, `crc32(B)` and B's length in bytes, without the data
 * (zlib's `crc32_combine`, as pigz joins the CRCs of blocks compressed apart): a sharded
 * archive's entry is its shards' pieces, each checksummed on its own.
 */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  if (!(Number.isSafeInteger(lengthB) && lengthB >= 0)) {
    throw new RangeError(`length must be a non-negative integer: ${lengthB}`);
  }
  return (multModP(x2nModP(lengthB, 3), crcA >>> 0) ^ (crcB >>> 0)) >>> 0;
}

/**
 * The open entry continued by data written apart (a shard's pieces of it): `piece` gives that
 * data's CRC-32 and sizes as if it had started an entry of its own.
 */
export function appendEntryPiece(
  entry: ZipEntryState,
  piece: { crc: number; size: number; compressedSize: number },
): ZipEntryState {
  return {
    ...entry,
    crc: crc32Combine(entry.crc, piece.crc, piece.size),
    compressedSize: entry.compressedSize + piece.compressedSize,
    size: entry.size + piece.size,
  };
}

/** The final empty deflate block and the data descriptor: the entry is complete. */
export function endEntry(entry: ZipEntryState): { bytes: Uint8Array; entry: ZipEntry } {
  const last = new Uint8Array(deflateRawSync(new Uint8Array(0)));
  const compressedSize = entry.compressedSize + last.length;
  const zip64 = compressedSize > MAX32 || entry.size > MAX32;
  const descriptor = new Bytes().u32(0x08074b50).u32(entry.crc);
  if (zip64) descriptor.u64(compressedSize).u64(entry.size);
  else descriptor.u32(compressedSize).u32(entry.size);
  const tail = descriptor.done();
  const bytes = new Uint8Array(last.length + tail.length);
  bytes.set(last);
  bytes.set(tail, last.length);
  return { bytes, entry: { ...entry, compressedSize } };
}

/** Bytes a local header, its data and its descriptor take, from an entry's final state. */
export function entryLength(entry: ZipEntry): number {
  return entryLengthOf(encoder.encode(entry.name).length, entry);
}

/**
 * {@link entryLength} from the name's length in UTF-8 bytes: the 30-byte local header (APPNOTE.TXT
 * 4.3.7), the name, the data, and the data descriptor (4.3.9: 16 bytes, 24 with ZIP64 sizes).
 */
export function entryLengthOf(
  nameBytes: number,
  sizes: { compressedSize: number; size: number },
): number {
  const zip64 = sizes.compressedSize > MAX32 || sizes.size > MAX32;
  return 30 + nameBytes + sizes.compressedSize + (zip64 ? 24 : 16);
}

/** The central directory and end records for `entries`, starting at byte `at.offset`. */
export function centralDirectory(
  entries: ZipEntry[],
  at: { offset: number; modified: string },
): Uint8Array {
  const { offset, modified } = at;
  const { time, date } = dosDateTime(modified);
  const cd = new Bytes();
  let cdSize = 0;
  for (const entry of entries) {
    const nameBytes = encoder.encode(entry.name);
    const extra = new Bytes();
    const needs = {
      size: entry.size >= MAX32,
      compressed: entry.compressedSize >= MAX32,
      offset: entry.offset >= MAX32,
    };
    if (needs.size || needs.compressed || needs.offset) {
      const body = new Bytes();
      if (needs.size) body.u64(entry.size);
      if (needs.compressed) body.u64(entry.compressedSize);
      if (needs.offset) body.u64(entry.offset);
      const bodyBytes = body.done();
      extra.u16(0x0001).u16(bodyBytes.length).raw(bodyBytes);
    }
    const extraBytes = extra.done();
    const zip64 = extraBytes.length > 0;
    const record = new Bytes()
      .u32(0x02014b50)
      .u16((3 << 8) | (zip64 ? 45 : 20)) // made by: Unix
      .u16(zip64 ? 45 : 20)
      .u16(FLAGS)
      .u16(DEFLATE)
      .u16(time)
      .u16(date)
      .u32(entry.crc)
      .u32(needs.compressed ? MAX32 : entry.compressedSize)
      .u32(needs.size ? MAX32 : entry.size)
      .u16(nameBytes.length)
      .u16(extraBytes.length)
      .u16(0) // comment
      .u16(0) // disk
      .u16(0) // internal attributes
      .u32((0o100644 << 16) >>> 0) // external: a regular file, rw-r--r--
      .u32(needs.offset ? MAX32 : entry.offset)
      .raw(nameBytes)
      .raw(extraBytes)
      .done();
    cd.raw(record);
    cdSize += record.length;
  }
  const end = new Bytes();
  const zip64 = offset >= MAX32 || cdSize >= MAX32 || entries.length >= 0xffff;
  if (zip64) {
    const zip64EndOffset = offset + cdSize;
    end.u32(0x06064b50).u64(44).u16(45).u16(45).u32(0).u32(0)
      .u64(entries.length).u64(entries.length).u64(cdSize).u64(offset);
    end.u32(0x07064b50).u32(0).u64(zip64EndOffset).u32(1);
  }
  end.u32(0x06054b50).u16(0).u16(0)
    .u16(zip64 ? 0xffff : entries.length)
    .u16(zip64 ? 0xffff : entries.length)
    .u32(zip64 ? MAX32 : cdSize)
    .u32(zip64 ? MAX32 : offset)
    .u16(0);
  return new Bytes().raw(cd.done()).raw(end.done()).done();
}
