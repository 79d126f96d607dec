/**
 * Buffers encoded records and turns them into durable storage parts, keeping a checkpoint that
 * describes exactly the bytes already in storage and a running SHA-256 over those bytes.
 */
import { createSHA256, type IHasher } from "hash-wasm";
import type { StreamState } from "../registry/types.ts";
import type { ObjectStorage } from "../storage/types.ts";
import type { ExportCheckpoint } from "./types.ts";

const encoder = new TextEncoder();

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/**
 * A growable byte buffer that text is UTF-8 encoded into in place (`encodeInto`: no encoded
 * copy of each batch, no concatenation of a part's pieces). The writer keeps two and reuses
 * them, so a streaming export holds about two parts of bytes outside the V8 heap, whatever its
 * size (issue 15, point 3).
 */
class PartBuffer {
  bytes: Uint8Array;
  length = 0;

  constructor(capacity: number) {
    this.bytes = new Uint8Array(capacity);
  }

  /** The bytes appended so far (a view: valid until the next append or reuse). */
  view(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }

  /** Appends `data` (text as UTF-8, the same bytes `TextEncoder.encode` gives); returns its size. */
  append(data: string | Uint8Array): number {
    const before = this.length;
    if (typeof data !== "string") {
      this.#reserve(data.length);
      this.bytes.set(data, this.length);
      this.length += data.length;
      return data.length;
    }
    let rest = data;
    while (rest.length > 0) {
      // ASCII needs a byte per UTF-16 unit; anything else at most 3 (a surrogate pair: 4 for 2)
      if (this.bytes.length - this.length < rest.length) this.#reserve(rest.length);
      const { read, written } = encoder.encodeInto(rest, this.bytes.subarray(this.length));
      this.length += written;
      if (read === rest.length) break;
      // encodeInto stops before a code point that does not fit, never inside a surrogate pair
      rest = rest.slice(read);
      this.#reserve(rest.length + (rest.length >> 1) + 4);
    }
    return this.length - before;
  }

  /** Makes room for `more` bytes after the current ones (growing by at least half). */
  #reserve(more: number): void {
    const needed = this.length + more;
    if (needed <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(needed, Math.ceil(this.bytes.length * 1.5)));
    grown.set(this.view());
    this.bytes = grown;
  }
}

/** First capacity of a part buffer; it grows to the largest part and is then reused. */
const INITIAL_BUFFER_BYTES = 1024 * 1024;

/**
 * Accumulates bytes and uploads them as parts of at least `partSize` bytes. A part uploads in
 * the background while the caller fetches the next batches (one part in flight at a time, in
 * order); the checkpoint moves past a part only once its upload has succeeded.
 */
export class CheckpointWriter {
  /** The bytes of the part being filled. */
  #buffer = new PartBuffer(INITIAL_BUFFER_BYTES);
  /** The buffer of the last uploaded part, free for the next one. */
  #spare: PartBuffer | null = null;
  /** The part being uploaded; its failure is thrown by the next `flush`. */
  #inflight: Promise<void> | null = null;
  /** Records and stream state of everything appended so far (durable or not). */
  records: number;
  /** Bytes of everything appended so far (durable or not). */
  bytes: number;
  state: StreamState;
  /** Record limit of the batch after everything appended so far (see `ExportCheckpoint`). */
  batchLimit: number | undefined;
  /**
   * Called each time the checkpoint moves (a part became durable), so the caller can heartbeat
   * it at once instead of after the next batch: a retry then re-reads as little as possible.
   */
  onDurable: (() => void) | null = null;

  private constructor(
    private readonly storage: ObjectStorage,
    private readonly hasher: IHasher,
    private readonly partSize: number,
    private durable: ExportCheckpoint,
  ) {
    this.records = durable.records;
    this.bytes = durable.upload.bytes;
    this.state = durable.state;
    this.batchLimit = durable.batchLimit;
  }

  /** Continues from `checkpoint` (after `storage.resumeUpload`) or starts fresh. */
  static async open(
    storage: ObjectStorage,
    checkpoint: Omit<ExportCheckpoint, "hashState"> & { hashState?: string },
    partSize: number,
  ): Promise<CheckpointWriter> {
    const hasher = await createSHA256();
    hasher.init();
    if (checkpoint.hashState) hasher.load(fromBase64(checkpoint.hashState));
    const durable = { ...checkpoint, hashState: toBase64(hasher.save()) };
    return new CheckpointWriter(storage, hasher, partSize, durable);
  }

  /** The last durable checkpoint: what a retried attempt resumes from. */
  get checkpoint(): ExportCheckpoint {
    return this.durable;
  }

  /**
   * Appends a chunk holding `records` records, after which the stream is in `state` and the
   * next batch holds at most `batchLimit` records.
   */
  append(
    data: string | Uint8Array,
    records: number,
    state: StreamState,
    batchLimit?: number,
  ): void {
    const size = this.#buffer.append(data);
    this.records += records;
    this.bytes += size;
    this.state = state;
    this.batchLimit = batchLimit;
  }

  /**
   * Starts uploading the buffer as a part when it reached the part size, after the previous
   * part's upload finished; does not wait for it. With `force`, uploads whatever is buffered and
   * waits until every part is durable (the checkpoint then covers everything appended).
   */
  async flush(force = false): Promise<boolean> {
    if (force) await this.#settle();
    const pending = this.#buffer.length;
    if (pending === 0 || (!force && pending < this.partSize)) return false;
    await this.#settle(); // parts go up in order, one at a time (the spare is free after it)
    const part = this.#buffer;
    this.#buffer = this.#spare ?? new PartBuffer(INITIAL_BUFFER_BYTES);
    this.#spare = null;
    this.#buffer.length = 0;
    const chunk = part.view();
    this.hasher.update(chunk);
    const after = {
      state: this.state,
      records: this.records,
      hashState: toBase64(this.hasher.save()),
      ...(this.batchLimit === undefined ? {} : { batchLimit: this.batchLimit }),
    };
    const uploaded = this.storage.appendPart(this.durable.upload, chunk).then((upload) => {
      this.durable = { ...after, upload };
      this.#spare = part; // storage is done with its bytes
      this.onDurable?.();
    });
    if (force) {
      await uploaded;
    } else {
      uploaded.catch(() => {}); // not unhandled: #settle rethrows it
      this.#inflight = uploaded;
    }
    return true;
  }

  /** Waits for the part in flight, if any; rethrows its upload error. */
  async #settle(): Promise<void> {
    const inflight = this.#inflight;
    this.#inflight = null;
    if (inflight) await inflight;
  }

  /** Hex SHA-256 of all durable bytes (call after the final flush). */
  digest(): string {
    const copy = this.hasher.save();
    const hex = this.hasher.digest("hex");
    this.hasher.load(copy);
    return hex;
  }
}
