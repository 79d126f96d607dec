import { createHash } from "node:crypto";
import { assert, assertEquals } from "../tests/assert.ts";
import type { ObjectStorage, UploadState } from "../storage/types.ts";
import { CheckpointWriter } from "./checkpoint_writer.ts";

/**
 * Storage that reads a part's bytes only when its upload ends (after a timer), as a network
 * upload does: a writer that reused a part's buffer before then would corrupt the part.
 */
function slowMemoryStorage(): { storage: ObjectStorage; parts: Uint8Array[] } {
  const parts: Uint8Array[] = [];
  const storage = {
    backend: "s3",
    async appendPart(state: UploadState, chunk: Uint8Array): Promise<UploadState> {
      await new Promise((r) => setTimeout(r, 5));
      const copy = chunk.slice();
      parts.push(copy);
      const part = {
        partNumber: state.parts.length + 1,
        etag: `${parts.length}`,
        size: copy.length,
      };
      return { ...state, parts: [...state.parts, part], bytes: state.bytes + copy.length };
    },
  } as unknown as ObjectStorage;
  return { storage, parts };
}

/** Deterministic text mixing ASCII, 2- and 3-byte characters, surrogate pairs and lone ones. */
function text(length: number, seed: number): string {
  const alphabet = [
    "a",
    "Z",
    "0",
    ",",
    "\n",
    "é",
    "Ü",
    "€",
    "☃",
    "🦋",
    "\u{1F41B}",
    "\uD800",
    "\uDFFF",
  ];
  let x = seed;
  let out = "";
  while (out.length < length) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    // mostly ASCII, like the exports
    out += x % 10 < 7 ? alphabet[x % 5] : alphabet[5 + (x % (alphabet.length - 5))];
  }
  return out;
}

Deno.test("CheckpointWriter writes exactly the UTF-8 bytes of every chunk, parts on chunk boundaries", async () => {
  const { storage, parts } = slowMemoryStorage();
  const upload: UploadState = {
    backend: "s3",
    key: "k",
    contentType: "text/plain",
    uploadId: "u",
    parts: [],
    bytes: 0,
  };
  const partSize = 200_000;
  const writer = await CheckpointWriter.open(
    storage,
    { state: null, records: 0, upload },
    partSize,
  );
  // small chunks, chunks around the part size, and chunks bigger than the initial 1 MiB buffer
  const sizes = [1, 0, 10, 150_000, 90_000, 3, 1_500_000, 70_000, 2_600_000, 5, 199_999, 80_000];
  const chunks = sizes.map((size, i) => text(size, i + 1));
  chunks.push(new TextDecoder().decode(new Uint8Array([0xe2, 0x82, 0xac]))); // bytes path below
  const expected: Uint8Array[] = [];
  const boundaries = new Set<number>([0]);
  let total = 0;
  for (const [i, chunk] of chunks.entries()) {
    const data = i === chunks.length - 1 ? new TextEncoder().encode(chunk) : chunk;
    writer.append(data, 1, i);
    const bytes = new TextEncoder().encode(chunk);
    expected.push(bytes);
    total += bytes.length;
    boundaries.add(total);
    await writer.flush(i === chunks.length - 1);
  }
  const all = new Uint8Array(total);
  let offset = 0;
  for (const bytes of expected) {
    all.set(bytes, offset);
    offset += bytes.length;
  }
  const written = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  offset = 0;
  for (const [i, part] of parts.entries()) {
    if (i < parts.length - 1) assert(part.length >= partSize, `part ${i + 1}: ${part.length}`);
    written.set(part, offset);
    offset += part.length;
    assert(boundaries.has(offset), `part ${i + 1} ends inside a chunk (byte ${offset})`);
  }
  assert(parts.length >= 5, `${parts.length} parts`);
  assertEquals(written.length, all.length);
  assertEquals(createHash("sha256").update(written).digest("hex"), writer.digest());
  assertEquals(
    createHash("sha256").update(written).digest("hex"),
    createHash("sha256").update(all).digest("hex"),
  );
  assertEquals(writer.checkpoint.upload.bytes, total);
  assertEquals(writer.checkpoint.records, chunks.length);
  assertEquals(writer.checkpoint.state, chunks.length - 1);
});
