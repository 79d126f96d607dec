/** Helpers shared by the storage backend tests. */
import { createHash } from "node:crypto";

/** The smallest size S3 accepts for a part that is not the last one. */
export const MIB5 = 5 * 1024 * 1024;

/** Deterministic pseudo-random bytes (xorshift32), different for every seed. */
export function pattern(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** The concatenation of `chunks`. */
export function concat(...chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/** Length and SHA-256 of `bytes`: compares megabytes without a megabyte-sized diff. */
export function digest(bytes: Uint8Array): string {
  return `${bytes.byteLength} bytes, sha256 ${createHash("sha256").update(bytes).digest("hex")}`;
}

/** A copy of `value` as a heartbeat would deliver it (JSON-serialized by the payload codec). */
export function roundTrip<T>(value: T): T {
  return JSON.parse(JSON.stringify(value));
}
