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

/** All the bytes of a stream. */
export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return concat(...chunks);
}

/**
 * Publishes sources of mixed sizes under `prefix` (small ones, one over 5 MiB, an empty one),
 * composes them at `<prefix>composed.bin` and returns both the expected and the composed bytes.
 */
export async function composeMixedSources(
  storage: import("./types.ts").ObjectStorage,
  prefix: string,
): Promise<{ expected: Uint8Array; composed: Uint8Array; size: number }> {
  const sizes = [1000, MIB5 + 17, 0, 300, MIB5 + 3, 2000];
  const sources: { key: string; size: number }[] = [];
  const chunks: Uint8Array[] = [];
  for (const [i, size] of sizes.entries()) {
    const key = `${prefix}shards/${i}.bin`;
    const bytes = pattern(size, 100 + i);
    let state = await storage.beginUpload(key, "application/octet-stream");
    if (size > 0) state = await storage.appendPart(state, bytes);
    await storage.completeUpload(state);
    sources.push({ key, size });
    chunks.push(bytes);
  }
  const target = `${prefix}composed.bin`;
  const { size } = await storage.composeObject(target, "application/octet-stream", sources);
  const composed = await readAll(await storage.readObject(target));
  return { expected: concat(...chunks), composed, size };
}

/**
 * The file name a `Content-Disposition` value gives (its RFC 5987 `filename*`, decoded), or
 * `(no filename* in <header>)` when it has none.
 */
export function dispositionName(header: string | null): string {
  const match = /filename\*=UTF-8''([^;]+)/.exec(header ?? "");
  return match ? decodeURIComponent(match[1]) : `(no filename* in ${header})`;
}
