/**
 * The bench's moto (`bench/moto_server.py`, started by `startMotoServer({ script })`) against the
 * suite's unpatched moto: the same multipart uploads give the same bytes, sizes and ETags, and
 * the same refusals (a part under 5 MiB before the last one, a part that was never uploaded).
 */
import {
  CompleteMultipartUploadCommand,
  type S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { fileURLToPath } from "node:url";
import { findOrInstallTool, scriptInterpreter, startMotoServer } from "../cli/dev_services.ts";
import { createS3Client, createS3Storage } from "../storage/s3.ts";
import { concat, MIB5, pattern, readAll } from "../storage/test_support.ts";
import type { ObjectStorage } from "../storage/types.ts";
import { assert, assertEquals, assertRejects } from "../tests/assert.ts";
import { requireEnv, serviceTest } from "../tests/support.ts";

const SCRIPT = fileURLToPath(new URL("./moto_server.py", import.meta.url));

/** Runs `fn` with an S3 backend on `endpoint`, its client and a fresh bucket. */
async function withStorage<R>(
  endpoint: string,
  fn: (storage: ObjectStorage, client: S3Client, bucket: string) => Promise<R>,
): Promise<R> {
  const options = {
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    accessKeyId: "testing",
    secretAccessKey: "testing",
  };
  const bucket = `moto-bench-${crypto.randomUUID().slice(0, 8)}`;
  const client = createS3Client(options);
  try {
    const storage = createS3Storage({ ...options, bucket, client });
    await storage.ensureReady();
    return await fn(storage, client, bucket);
  } finally {
    client.destroy();
  }
}

/**
 * Uploads `parts` as one multipart upload, then composes a small object, that upload and the
 * small object again (server-side copies of the upload's ranges, small pieces read and
 * uploaded); the bytes and ETag of both, read back with ranged GETs on the large one.
 */
async function uploadParts(
  endpoint: string,
  parts: Uint8Array[],
): Promise<
  {
    bytes: Uint8Array;
    etag: string;
    checksums: string[][];
    size: number;
    composed: Uint8Array;
    middle: Uint8Array;
  }
> {
  return await withStorage(endpoint, async (storage, _client, bucket) => {
    let state = await storage.beginUpload("big/file.json", "application/json");
    for (const part of parts) state = await storage.appendPart(state, part);
    const { size } = await storage.completeUpload(state);
    const bytes = await readAll(await storage.readObject("big/file.json"));
    const middle = await readAll(
      await storage.readObject("big/file.json", { start: MIB5 - 10, end: MIB5 + 20 }),
    );
    const head = await fetch(`${endpoint}/${bucket}/big/file.json`, {
      method: "HEAD",
      headers: { "x-amz-checksum-mode": "ENABLED" },
    });
    await head.body?.cancel();
    const checksums = [...head.headers].filter(([name]) => name.startsWith("x-amz-checksum"));
    const small = await storage.beginUpload("big/small.txt", "text/plain");
    await storage.completeUpload(await storage.appendPart(small, pattern(300, 9)));
    const sources = [
      { key: "big/small.txt", size: 300 },
      { key: "big/file.json", size },
      { key: "big/small.txt", size: 300 },
    ];
    await storage.composeObject("big/composed.json", "application/json", sources);
    const composed = await readAll(await storage.readObject("big/composed.json"));
    return { bytes, etag: head.headers.get("etag") ?? "", checksums, size, composed, middle };
  });
}

for (const streamed of [false, true]) {
  Deno.test({
    name: `bench moto: completed and composed uploads equal the unpatched moto's, byte for byte${
      streamed ? ", every GetObject streamed" : ""
    }`,
    ...serviceTest,
    async fn() {
      // the bench moto streams a GetObject of a key of at least 64 MiB (its get_object answered
      // with the whole object in memory: killed by the kernel at 23 GB); 1: every key streamed,
      // whole reads and ranged ones
      if (streamed) Deno.env.set("BENCH_MOTO_STREAM_GET_MIN_BYTES", "1");
      const patched = await startMotoServer({ script: SCRIPT }).finally(() =>
        Deno.env.delete("BENCH_MOTO_STREAM_GET_MIN_BYTES")
      );
      try {
        const parts = [pattern(MIB5, 1), pattern(MIB5 + 17, 2), pattern(1000, 3)];
        const ours = await uploadParts(patched.endpoint, parts);
        const theirs = await uploadParts(requireEnv("TEST_S3_ENDPOINT"), parts);
        const expected = concat(...parts);
        assertEquals(ours.size, expected.byteLength);
        assert(ours.bytes.byteLength === expected.byteLength, "completed object has every part");
        assert(ours.bytes.every((b, i) => b === expected[i]), "completed object's bytes");
        assertEquals(ours.etag, theirs.etag);
        assertEquals(ours.checksums, theirs.checksums);
        assert(/-3"$/.test(ours.etag), `multipart ETag names 3 parts: ${ours.etag}`);
        assert(theirs.bytes.every((b, i) => b === ours.bytes[i]), "same bytes as moto's own");
        assertEquals(ours.middle, expected.slice(MIB5 - 10, MIB5 + 20));
        const composed = concat(pattern(300, 9), expected, pattern(300, 9));
        assertEquals(ours.composed.byteLength, composed.byteLength);
        assert(ours.composed.every((b, i) => b === composed[i]), "composed object's bytes");
        assert(theirs.composed.every((b, i) => b === composed[i]), "moto's own composed bytes");
      } finally {
        await patched.stop();
      }
    },
  });
}

Deno.test({
  name: "bench moto: its streamed multipart checksums equal moto's builder, every algorithm",
  async fn() {
    // moto's MultipartChecksumBuilder joins the whole object in memory for a FULL_OBJECT
    // checksum (its default): the bench's moto reads the parts' files instead
    const python = await scriptInterpreter(await findOrInstallTool("moto_server"));
    const out = await new Deno.Command(python, {
      args: [fileURLToPath(new URL("./moto_server_check.py", import.meta.url))],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert(out.success, text);
    assertEquals(text.trim(), "ok 18");
  },
});

Deno.test({
  name: "bench moto: a small part before the last and an unknown part are refused as by moto",
  ...serviceTest,
  async fn() {
    const patched = await startMotoServer({ script: SCRIPT });
    try {
      for (const endpoint of [patched.endpoint, requireEnv("TEST_S3_ENDPOINT")]) {
        await withStorage(endpoint, async (storage, client, bucket) => {
          // two parts, the first under 5 MiB: S3's EntityTooSmall
          const small = await storage.beginUpload("small/parts.csv", "text/csv");
          const uploads = await Promise.all(
            [pattern(1000, 5), pattern(1000, 6)].map(async (chunk, i) => {
              const out = await client.send(
                new UploadPartCommand({
                  Bucket: bucket,
                  Key: "small/parts.csv",
                  UploadId: small.uploadId,
                  PartNumber: i + 1,
                  Body: chunk,
                }),
              );
              return { PartNumber: i + 1, ETag: out.ETag };
            }),
          );
          /** Completes the upload of `small/parts.csv` with `parts`. */
          const complete = (parts: { PartNumber: number; ETag?: string }[]) =>
            client.send(
              new CompleteMultipartUploadCommand({
                Bucket: bucket,
                Key: "small/parts.csv",
                UploadId: small.uploadId,
                MultipartUpload: { Parts: parts },
              }),
            );
          await assertRejects(() => complete(uploads), Error, "small");
          // a part number that was never uploaded: InvalidPart
          await assertRejects(
            () => complete([{ PartNumber: 9, ETag: uploads[0].ETag }]),
            Error,
            "part",
          );
        });
      }
    } finally {
      await patched.stop();
    }
  },
});
