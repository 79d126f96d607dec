/** The S3 backend against the moto server started by `deno task test`. */
import type { S3Client } from "@aws-sdk/client-s3";
import { assert, assertEquals, assertRejects } from "../tests/assert.ts";
import { requireEnv, serviceTest } from "../tests/support.ts";
import { KeyOutOfBoundsError, UploadNotFoundError } from "./errors.ts";
import { MAX_KEY_BYTES, utf8ByteLength } from "./key_bounds.ts";
import { createS3Client, createS3Storage } from "./s3.ts";
import {
  composeMixedSources,
  concat,
  digest,
  dispositionName,
  MIB5,
  pattern,
  readAll,
  roundTrip,
} from "./test_support.ts";
import type { ObjectStorage } from "./types.ts";

const bucket = `storage-test-${crypto.randomUUID().slice(0, 8)}`;

/** Runs `fn` with a ready backend on this file's bucket and a key prefix of its own. */
async function withStorage(
  fn: (storage: ObjectStorage, prefix: string) => Promise<void>,
): Promise<void> {
  const options = {
    endpoint: requireEnv("TEST_S3_ENDPOINT"),
    region: "us-east-1",
    forcePathStyle: true,
    accessKeyId: "testing",
    secretAccessKey: "testing",
  };
  const client: S3Client = createS3Client(options);
  try {
    const storage = createS3Storage({ ...options, bucket, client });
    await storage.ensureReady();
    await fn(storage, `t-${crypto.randomUUID()}/`);
  } finally {
    client.destroy();
  }
}

async function download(url: string): Promise<{ bytes: Uint8Array }> {
  const res = await fetch(url);
  const bytes = new Uint8Array(await res.arrayBuffer());
  assertEquals(res.status, 200, `GET ${url}: ${new TextDecoder().decode(bytes.slice(0, 500))}`);
  return { bytes };
}

Deno.test({
  name: "s3: ensureReady creates the bucket once and is idempotent",
  ...serviceTest,
  async fn() {
    await withStorage(async (storage) => {
      await storage.ensureReady();
      // The bucket exists: an object can be written and listed.
      const state = await storage.beginUpload("ready/probe.txt", "text/plain");
      const done = await storage.appendPart(state, new TextEncoder().encode("probe"));
      assertEquals(await storage.completeUpload(done), { size: 5 });
      assertEquals(await storage.listObjects("ready/"), ["ready/probe.txt"]);
      await storage.deleteObject("ready/probe.txt");
    });
  },
});

Deno.test({
  name: "s3: two 5 MiB parts and a small last part read back through the presigned URL",
  ...serviceTest,
  async fn() {
    await withStorage(async (storage, prefix) => {
      const key = `${prefix}export.csv`;
      const chunks = [pattern(MIB5, 1), pattern(MIB5, 2), pattern(1234, 3)];
      let state = await storage.beginUpload(key, "text/csv");
      assertEquals(state.backend, "s3");
      assertEquals(await storage.headObject(key), null, "nothing visible before completion");
      for (const chunk of chunks) state = await storage.appendPart(state, chunk);
      assertEquals(state.parts.map((p) => [p.partNumber, p.size]), [
        [1, MIB5],
        [2, MIB5],
        [3, 1234],
      ]);
      assertEquals(state.bytes, 2 * MIB5 + 1234);
      assertEquals(
        (await storage.listIncompleteUploads(prefix)).map((u) => [u.key, u.uploadId]),
        [[key, state.uploadId]],
      );

      assertEquals(await storage.completeUpload(state), { size: 2 * MIB5 + 1234 });
      assertEquals(await storage.headObject(key), { size: 2 * MIB5 + 1234 });
      assertEquals(await storage.listObjects(prefix), [key]);
      assertEquals(await storage.listIncompleteUploads(prefix), []);

      const url = await storage.downloadUrl(key, {
        expiresInSeconds: 60,
        filename: "moths 2024.csv",
      });
      const { bytes } = await download(url);
      assertEquals(digest(bytes), digest(concat(...chunks)));
      // moto ignores response-content-disposition; S3 sends it back as Content-Disposition.
      assertEquals(
        new URL(url).searchParams.get("response-content-disposition"),
        `attachment; filename="moths 2024.csv"; filename*=UTF-8''moths%202024.csv`,
      );
    });
  },
});

Deno.test({
  name: "s3: resuming from a checkpoint replaces the parts a crashed attempt uploaded after it",
  ...serviceTest,
  async fn() {
    await withStorage(async (storage, prefix) => {
      const key = `${prefix}resumed.json`;
      const [part1, part2, part3] = [pattern(MIB5, 11), pattern(MIB5, 12), pattern(777, 13)];
      const begun = await storage.beginUpload(key, "application/json");
      const checkpoint = roundTrip(await storage.appendPart(begun, part1));

      // The crashed attempt went on past the last delivered checkpoint.
      let crashed = await storage.appendPart(checkpoint, pattern(MIB5, 99));
      crashed = await storage.appendPart(crashed, pattern(MIB5, 98));
      await storage.appendPart(crashed, pattern(4321, 97));

      const [first] = checkpoint.parts;
      await assertRejects(
        () => storage.resumeUpload({ ...checkpoint, parts: [{ ...first, etag: '"0bad"' }] }),
        Error,
        "does not match the checkpoint",
      );
      let state = await storage.resumeUpload(checkpoint);
      assertEquals(state, checkpoint);
      state = await storage.appendPart(state, part2);
      state = await storage.appendPart(state, part3);
      assertEquals(state.parts.map((p) => p.partNumber), [1, 2, 3]);
      assertEquals(await storage.completeUpload(state), { size: 2 * MIB5 + 777 });

      const { bytes } = await download(await storage.downloadUrl(key, { expiresInSeconds: 60 }));
      assertEquals(digest(bytes), digest(concat(part1, part2, part3)));
      assertEquals(await storage.listIncompleteUploads(prefix), []);
    });
  },
});

Deno.test({
  name: "s3: an aborted upload leaves no incomplete upload and no object",
  ...serviceTest,
  async fn() {
    await withStorage(async (storage, prefix) => {
      const key = `${prefix}aborted.csv`;
      let state = await storage.beginUpload(key, "text/csv");
      state = await storage.appendPart(state, pattern(MIB5, 21));
      state = await storage.appendPart(state, pattern(10, 22));
      assertEquals((await storage.listIncompleteUploads(prefix)).length, 1);

      await storage.abortUpload(state);
      assertEquals(await storage.listIncompleteUploads(prefix), []);
      assertEquals(await storage.headObject(key), null);
      assertEquals(await storage.listObjects(prefix), []);

      await storage.abortUpload(state); // idempotent
      await assertRejects(() => storage.resumeUpload(state), UploadNotFoundError, key);
      await assertRejects(() => storage.completeUpload(state), UploadNotFoundError, key);
      await assertRejects(
        () => storage.appendPart(state, pattern(10, 23)),
        UploadNotFoundError,
        key,
      );
    });
  },
});

Deno.test({
  name: "s3: completing twice returns the size again; a different size is refused",
  ...serviceTest,
  async fn() {
    await withStorage(async (storage, prefix) => {
      const key = `${prefix}twice.csv`;
      let state = await storage.beginUpload(key, "text/csv");
      state = await storage.appendPart(state, pattern(MIB5, 31));
      state = await storage.appendPart(state, pattern(99, 32));
      const checkpoint = roundTrip(state);
      assertEquals(await storage.completeUpload(state), { size: MIB5 + 99 });
      // A retried finishUpload after a crash that lost the first result.
      assertEquals(await storage.completeUpload(checkpoint), { size: MIB5 + 99 });
      // S3 forgets a completed upload: the published object of the right size is the answer.
      // (moto completes a known upload id twice itself, so an unknown id takes that path.)
      const forgotten = { ...checkpoint, uploadId: `forgotten-${checkpoint.uploadId}` };
      assertEquals(await storage.completeUpload(forgotten), { size: MIB5 + 99 });
      // A state that does not describe the published object is refused.
      await assertRejects(
        () => storage.completeUpload({ ...checkpoint, bytes: MIB5 }),
        Error,
        `expected ${MIB5}`,
      );
    });
  },
});

Deno.test({
  name: "s3: an upload without parts completes to an empty object",
  ...serviceTest,
  async fn() {
    await withStorage(async (storage, prefix) => {
      const key = `${prefix}empty.csv`;
      const state = await storage.beginUpload(key, "text/csv");
      assertEquals(await storage.completeUpload(state), { size: 0 });
      assertEquals(await storage.completeUpload(state), { size: 0 });
      assertEquals(await storage.headObject(key), { size: 0 });
      assertEquals(await storage.listIncompleteUploads(prefix), []);
    });
  },
});

Deno.test({
  name: "s3: headObject is null and deleteObject is fine for a missing key",
  ...serviceTest,
  async fn() {
    await withStorage(async (storage, prefix) => {
      const key = `${prefix}missing.csv`;
      assertEquals(await storage.headObject(key), null);
      await storage.deleteObject(key);

      let state = await storage.beginUpload(key, "text/csv");
      state = await storage.appendPart(state, pattern(10, 41));
      await storage.completeUpload(state);
      assertEquals(await storage.headObject(key), { size: 10 });
      await storage.deleteObject(key);
      assertEquals(await storage.headObject(key), null);
      assertEquals(await storage.listObjects(prefix), []);
      await storage.deleteObject(key);
    });
  },
});

Deno.test({
  name: "s3: a state from another backend is refused",
  ...serviceTest,
  async fn() {
    await withStorage(async (storage, prefix) => {
      const state = await storage.beginUpload(`${prefix}x.csv`, "text/csv");
      await assertRejects(
        () => storage.appendPart({ ...state, backend: "fs" }, pattern(10, 51)),
        Error,
        "fs backend",
      );
      await storage.abortUpload(state);
    });
  },
});

Deno.test({
  name: "s3: composeObject concatenates small and large sources exactly; readObject ranges",
  ...serviceTest,
  async fn() {
    await withStorage(async (storage, prefix) => {
      const { expected, composed, size } = await composeMixedSources(storage, prefix);
      assertEquals(size, expected.byteLength);
      assertEquals(digest(composed), digest(expected));
      const part = await readAll(
        await storage.readObject(`${prefix}shards/1.bin`, { start: 5, end: 20 }),
      );
      assertEquals(part, pattern(MIB5 + 17, 101).subarray(5, 20));
      assertEquals(await storage.listIncompleteUploads(prefix), [], "no upload left");
      await assertRejects(
        () =>
          storage.composeObject(`${prefix}bad.bin`, "text/plain", [{
            key: `${prefix}shards/0.bin`,
            size: 1,
          }]),
        Error,
        "expected 1",
      );
      assertEquals(await storage.headObject(`${prefix}bad.bin`), null);
      assertEquals(
        await storage.listIncompleteUploads(prefix),
        [],
        "no upload left after a failure",
      );
    });
  },
});

/** `bytes` bytes of two-byte `ü` (an `a` first when odd). */
function fill(bytes: number): string {
  return `${"a".repeat(bytes % 2)}${"ü".repeat(bytes >> 1)}`;
}

Deno.test({
  name: "s3: a key of exactly 1,024 bytes of UTF-8 (emoji, a 255-byte name) round-trips",
  ...serviceTest,
  async fn() {
    await withStorage(async (storage, prefix) => {
      const name = `${"🦋".repeat(60)}é_export-7.csv`; // 255 bytes
      const key = `${prefix}${fill(MAX_KEY_BYTES - prefix.length - 1 - 255)}/${name}`;
      assertEquals(utf8ByteLength(key), MAX_KEY_BYTES);
      const bytes = pattern(4000, 21);
      const state = await storage.appendPart(await storage.beginUpload(key, "text/csv"), bytes);
      assertEquals(await storage.completeUpload(state), { size: 4000 });
      assertEquals(await storage.headObject(key), { size: 4000 });
      assertEquals(await storage.listObjects(prefix), [key]);
      assertEquals(digest(await readAll(await storage.readObject(key))), digest(bytes));
      const url = await storage.downloadUrl(key, { expiresInSeconds: 60, filename: name });
      assertEquals(digest((await download(url)).bytes), digest(bytes));
      assertEquals(
        dispositionName(new URL(url).searchParams.get("response-content-disposition")),
        name,
      );
      // a composed object under a 1,024-byte key too
      const composedKey = `${key.slice(0, -4)}.all`;
      assertEquals(utf8ByteLength(composedKey), MAX_KEY_BYTES);
      assertEquals(
        await storage.composeObject(composedKey, "text/csv", [{ key, size: 4000 }]),
        { size: 4000 },
      );
      assertEquals(digest(await readAll(await storage.readObject(composedKey))), digest(bytes));
      await storage.deleteObject(key);
      await storage.deleteObject(composedKey);
      assertEquals(await storage.listObjects(prefix), []);
    });
  },
});

Deno.test({
  name: "s3: a key of 1,025 bytes is refused before any request, and cannot exist",
  ...serviceTest,
  async fn() {
    await withStorage(async (storage, prefix) => {
      const over = `${prefix}${fill(MAX_KEY_BYTES + 1 - prefix.length)}`;
      assertEquals(utf8ByteLength(over), MAX_KEY_BYTES + 1);
      const error = await assertRejects(
        () => storage.beginUpload(over, "text/csv"),
        KeyOutOfBoundsError,
        "1025 bytes of UTF-8, more than the 1024 of an S3 object key",
      );
      assert(error.message.length < 600, `a bounded message: ${error.message.length}`);
      await assertRejects(
        () => storage.composeObject(over, "text/csv", []),
        KeyOutOfBoundsError,
        "1024",
      );
      await assertRejects(
        () => storage.downloadUrl(over, { expiresInSeconds: 60 }),
        KeyOutOfBoundsError,
      );
      await assertRejects(() => storage.readObject(over), KeyOutOfBoundsError);
      assertEquals(await storage.headObject(over), null);
      await storage.deleteObject(over); // nothing can be there: no error
      await storage.abortUpload({ key: over, uploadId: "none" });
      assertEquals(await storage.listIncompleteUploads(prefix), []);
      assertEquals(await storage.listObjects(prefix), []);
    });
  },
});
