/** The filesystem backend in a temp directory, its files served the way the API serves them. */
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertThrows } from "../tests/assert.ts";
import { serviceTest } from "../tests/support.ts";
import { attachmentDisposition } from "./disposition.ts";
import { InvalidKeyError, KeyOutOfBoundsError, UploadNotFoundError } from "./errors.ts";
import { MAX_KEY_BYTES, utf8ByteLength } from "./key_bounds.ts";
import { createFsStorage, resolveFilePath, verifyFileSignature } from "./fs.ts";
import { putObject } from "./put_object.ts";
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
import type { ObjectStorage, UploadState } from "./types.ts";

const SECRET = "fs-test-signing-secret-0123456789";

interface Fixture {
  storage: ObjectStorage;
  dir: string;
  /** The temp file of an upload in progress. */
  partPath(state: UploadState): string;
}

/**
 * Runs `fn` with a ready backend in a fresh temp directory, behind a small HTTP server that
 * serves `/files/<key>` with {@link verifyFileSignature} and {@link resolveFilePath}.
 */
async function withFsStorage(fn: (fixture: Fixture) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ami-exports-fs-test-" });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => serveFile(req, dir),
  );
  try {
    const storage = createFsStorage({
      dir,
      publicBaseUrl: `http://127.0.0.1:${server.addr.port}/`,
      signingSecret: SECRET,
    });
    await storage.ensureReady();
    await fn({
      storage,
      dir,
      partPath: (state) => join(dir, ".uploads", `${state.uploadId}.part`),
    });
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

async function serveFile(req: Request, dir: string): Promise<Response> {
  const url = new URL(req.url);
  if (!url.pathname.startsWith("/files/")) return new Response("not found", { status: 404 });
  const key = url.pathname.slice("/files/".length).split("/").map(decodeURIComponent).join("/");
  const q = url.searchParams;
  const filename = q.get("filename") ?? undefined;
  if (
    !verifyFileSignature(SECRET, key, q.get("expires") ?? "", q.get("signature") ?? "", filename)
  ) {
    return new Response("forbidden", { status: 403 });
  }
  const file = await Deno.open(resolveFilePath(dir, key));
  const headers = new Headers();
  if (filename) headers.set("content-disposition", attachmentDisposition(filename));
  return new Response(file.readable, { headers });
}

async function download(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  const bytes = new Uint8Array(await res.arrayBuffer());
  assertEquals(res.status, 200, `GET ${url}: ${new TextDecoder().decode(bytes.slice(0, 500))}`);
  return bytes;
}

async function fileSize(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).size;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

Deno.test({
  name: "fs: two 5 MiB parts and a small last part read back through the signed URL",
  ...serviceTest,
  async fn() {
    await withFsStorage(async ({ storage, dir }) => {
      const key = "exports/project 1/export.csv";
      const chunks = [pattern(MIB5, 1), pattern(MIB5, 2), pattern(1234, 3)];
      let state = await storage.beginUpload(key, "text/csv");
      assertEquals(state.backend, "fs");
      for (const chunk of chunks) state = await storage.appendPart(state, chunk);
      assertEquals(state.parts.map((p) => [p.partNumber, p.size]), [
        [1, MIB5],
        [2, MIB5],
        [3, 1234],
      ]);
      assertEquals(state.bytes, 2 * MIB5 + 1234);
      assertEquals(await storage.headObject(key), null, "nothing visible before completion");
      assertEquals(await storage.listObjects(""), [], "the temp file is not an object");
      assertEquals(
        (await storage.listIncompleteUploads("exports/")).map((u) => [u.key, u.uploadId]),
        [[key, state.uploadId]],
      );

      assertEquals(await storage.completeUpload(state), { size: 2 * MIB5 + 1234 });
      assertEquals(await storage.headObject(key), { size: 2 * MIB5 + 1234 });
      assertEquals(await storage.listObjects("exports/"), [key]);
      assertEquals(await storage.listIncompleteUploads(""), []);
      assertEquals(await Array.fromAsync(Deno.readDir(join(dir, ".uploads"))), []);

      const url = await storage.downloadUrl(key, { expiresInSeconds: 60, filename: "moths.csv" });
      assert(url.includes("/files/exports/project%201/export.csv?"), url);
      assertEquals(new URL(url).searchParams.get("filename"), "moths.csv");
      assertEquals(digest(await download(url)), digest(concat(...chunks)));
    });
  },
});

Deno.test({
  name: "fs: resuming truncates the bytes a crashed attempt wrote after the checkpoint",
  ...serviceTest,
  async fn() {
    await withFsStorage(async ({ storage, dir, partPath }) => {
      const key = "resumed.json";
      const [part1, part2, part3] = [pattern(MIB5, 11), pattern(MIB5, 12), pattern(777, 13)];
      const begun = await storage.beginUpload(key, "application/json");
      const checkpoint = roundTrip(await storage.appendPart(begun, part1));

      // The crashed attempt went on past the last delivered checkpoint.
      const crashed = await storage.appendPart(checkpoint, pattern(MIB5, 99));
      await storage.appendPart(crashed, pattern(4321, 98));
      assertEquals(await fileSize(partPath(checkpoint)), 2 * MIB5 + 4321);

      let state = await storage.resumeUpload(checkpoint);
      assertEquals(state, checkpoint);
      assertEquals(await fileSize(partPath(checkpoint)), MIB5, "truncated to the checkpoint");
      state = await storage.appendPart(state, part2);
      state = await storage.appendPart(state, part3);
      assertEquals(await storage.completeUpload(state), { size: 2 * MIB5 + 777 });

      const written = await Deno.readFile(resolveFilePath(dir, key));
      assertEquals(digest(written), digest(concat(part1, part2, part3)));
    });
  },
});

Deno.test({
  name: "fs: an append from an older checkpoint writes at the checkpoint, not at the end",
  ...serviceTest,
  async fn() {
    await withFsStorage(async ({ storage, dir }) => {
      const key = "no-resume.csv";
      const [a, b] = [pattern(100, 61), pattern(50, 62)];
      const checkpoint = await storage.appendPart(await storage.beginUpload(key, "text/csv"), a);
      await storage.appendPart(checkpoint, pattern(300, 69));
      const state = await storage.appendPart(checkpoint, b);
      assertEquals(await storage.completeUpload(state), { size: 150 });
      assertEquals(digest(await Deno.readFile(join(dir, key))), digest(concat(a, b)));
    });
  },
});

Deno.test({
  name: "fs: an upload whose temp file is gone cannot be resumed",
  ...serviceTest,
  async fn() {
    await withFsStorage(async ({ storage, partPath }) => {
      const state = await storage.appendPart(
        await storage.beginUpload("lost.csv", "text/csv"),
        pattern(10, 71),
      );
      await Deno.remove(partPath(state));
      await assertRejects(() => storage.resumeUpload(state), UploadNotFoundError, "temp file");
      await assertRejects(
        () => storage.appendPart(state, pattern(10, 72)),
        UploadNotFoundError,
        "lost.csv",
      );
      await assertRejects(() => storage.completeUpload(state), UploadNotFoundError, "lost.csv");
    });
  },
});

Deno.test({
  name: "fs: an aborted upload leaves no incomplete upload, no temp file and no object",
  ...serviceTest,
  async fn() {
    await withFsStorage(async ({ storage, dir }) => {
      const key = "a/aborted.csv";
      let state = await storage.beginUpload(key, "text/csv");
      state = await storage.appendPart(state, pattern(1000, 21));
      assertEquals((await storage.listIncompleteUploads("a/")).length, 1);

      await storage.abortUpload(state);
      assertEquals(await storage.listIncompleteUploads(""), []);
      assertEquals(await Array.fromAsync(Deno.readDir(join(dir, ".uploads"))), []);
      assertEquals(await storage.headObject(key), null);
      assertEquals(await storage.listObjects(""), []);

      await storage.abortUpload(state); // idempotent
      await assertRejects(() => storage.resumeUpload(state), UploadNotFoundError, key);
    });
  },
});

Deno.test({
  name: "fs: completing twice returns the size again; a different size is refused",
  ...serviceTest,
  async fn() {
    await withFsStorage(async ({ storage, dir }) => {
      let state = await storage.beginUpload("twice.csv", "text/csv");
      state = await storage.appendPart(state, pattern(MIB5, 31));
      state = await storage.appendPart(state, pattern(99, 32));
      const checkpoint = roundTrip(state);
      assertEquals(await storage.completeUpload(state), { size: MIB5 + 99 });
      // A retried finishUpload after a crash that lost the first result.
      assertEquals(await storage.completeUpload(checkpoint), { size: MIB5 + 99 });
      await assertRejects(
        () => storage.completeUpload({ ...checkpoint, bytes: MIB5 }),
        UploadNotFoundError,
        `expected ${MIB5}`,
      );
      assertEquals(await Array.fromAsync(Deno.readDir(join(dir, ".uploads"))), []);
    });
  },
});

Deno.test({
  name: "fs: an upload without parts completes to an empty file",
  ...serviceTest,
  async fn() {
    await withFsStorage(async ({ storage }) => {
      const state = await storage.beginUpload("empty.csv", "text/csv");
      assertEquals(await storage.completeUpload(state), { size: 0 });
      assertEquals(await storage.headObject("empty.csv"), { size: 0 });
    });
  },
});

Deno.test({
  name: "fs: headObject is null and deleteObject is fine for a missing key",
  ...serviceTest,
  async fn() {
    await withFsStorage(async ({ storage }) => {
      assertEquals(await storage.headObject("p/missing.csv"), null);
      await storage.deleteObject("p/missing.csv");

      const state = await storage.appendPart(
        await storage.beginUpload("p/there.csv", "text/csv"),
        pattern(10, 41),
      );
      await storage.completeUpload(state);
      assertEquals(await storage.headObject("p/there.csv"), { size: 10 });
      assertEquals(await storage.headObject("p"), null, "a directory is not an object");
      await storage.deleteObject("p/there.csv");
      assertEquals(await storage.headObject("p/there.csv"), null);
      await storage.deleteObject("p/there.csv");
    });
  },
});

Deno.test({
  name: "fs: listings filter by prefix and report uploads whose temp file was never created",
  ...serviceTest,
  async fn() {
    await withFsStorage(async ({ storage, dir }) => {
      for (const key of ["p1/a.csv", "p1/sub/b.csv", "p10/c.csv", "p2/d.csv"]) {
        await storage.completeUpload(
          await storage.appendPart(await storage.beginUpload(key, "text/csv"), pattern(5, 1)),
        );
      }
      assertEquals(await storage.listObjects("p1/"), ["p1/a.csv", "p1/sub/b.csv"]);
      assertEquals(await storage.listObjects("p1"), ["p1/a.csv", "p1/sub/b.csv", "p10/c.csv"]);
      assertEquals(await storage.listObjects("p1/sub/b"), ["p1/sub/b.csv"]);
      assertEquals(await storage.listObjects("nope/"), []);
      assertEquals((await storage.listObjects("")).length, 4);

      const open = await storage.beginUpload("p2/open.csv", "text/csv");
      // A crash between writing the sidecar and creating the temp file.
      const orphan = crypto.randomUUID();
      await Deno.writeTextFile(
        join(dir, ".uploads", `${orphan}.json`),
        JSON.stringify({ key: "p2/orphan.csv", contentType: "text/csv", initiated: "x" }),
      );
      const listed = await storage.listIncompleteUploads("p2/");
      assertEquals(listed.map((u) => [u.key, u.uploadId]), [
        ["p2/open.csv", open.uploadId],
        ["p2/orphan.csv", orphan],
      ]);
      assert(listed[0].initiated instanceof Date, "initiated is reported");
      assertEquals(await storage.listIncompleteUploads("p1/"), []);
      await storage.abortUpload({ key: "p2/orphan.csv", uploadId: orphan });
      assertEquals((await storage.listIncompleteUploads("")).map((u) => u.uploadId), [
        open.uploadId,
      ]);
    });
  },
});

Deno.test({
  name: "fs: a signed URL is accepted as issued and refused when tampered with or expired",
  ...serviceTest,
  async fn() {
    await withFsStorage(async ({ storage }) => {
      const key = "exports/7/export.csv";
      await storage.completeUpload(
        await storage.appendPart(await storage.beginUpload(key, "text/csv"), pattern(10, 81)),
      );
      const url = new URL(
        await storage.downloadUrl(key, { expiresInSeconds: 600, filename: "e.csv" }),
      );
      const expires = url.searchParams.get("expires")!;
      const signature = url.searchParams.get("signature")!;
      const now = Date.now();
      assert(Number(expires) * 1000 > now + 590_000, `expires in ~600 s: ${expires}`);

      assertEquals(verifyFileSignature(SECRET, key, expires, signature, "e.csv", now), true);
      assertEquals(verifyFileSignature(SECRET, key, Number(expires), signature, "e.csv"), true);
      // Tampered key, filename, expiry or signature; another secret.
      assertEquals(
        verifyFileSignature(SECRET, "exports/8/export.csv", expires, signature, "e.csv"),
        false,
      );
      assertEquals(verifyFileSignature(SECRET, key, expires, signature, "evil.exe"), false);
      assertEquals(verifyFileSignature(SECRET, key, expires, signature), false);
      assertEquals(
        verifyFileSignature(SECRET, key, String(Number(expires) + 1), signature, "e.csv"),
        false,
      );
      const flipped = (signature[0] === "0" ? "1" : "0") + signature.slice(1);
      assertEquals(verifyFileSignature(SECRET, key, expires, flipped, "e.csv"), false);
      assertEquals(verifyFileSignature(SECRET, key, expires, signature.slice(2), "e.csv"), false);
      assertEquals(verifyFileSignature(SECRET, key, "soon", signature, "e.csv"), false);
      assertEquals(
        verifyFileSignature("another-secret-0123456789", key, expires, signature, "e.csv"),
        false,
      );
      // Expired: valid until the second before `expires`.
      const at = Number(expires) * 1000;
      assertEquals(verifyFileSignature(SECRET, key, expires, signature, "e.csv", at - 1), true);
      assertEquals(verifyFileSignature(SECRET, key, expires, signature, "e.csv", at), false);

      // The same through HTTP, as the API serves files.
      assertEquals(digest(await download(url.href)), digest(pattern(10, 81)));
      const tampered = new URL(url);
      tampered.searchParams.set("filename", "other.csv");
      const res = await fetch(tampered);
      await res.body?.cancel();
      assertEquals(res.status, 403);
      const withoutName = new URL(await storage.downloadUrl(key, { expiresInSeconds: 60 }));
      assertEquals(withoutName.searchParams.has("filename"), false);
      withoutName.searchParams.set("filename", "added.csv");
      assertEquals(
        verifyFileSignature(
          SECRET,
          key,
          withoutName.searchParams.get("expires")!,
          withoutName.searchParams.get("signature")!,
          "added.csv",
        ),
        false,
      );
    });
  },
});

Deno.test("fs: resolveFilePath keeps keys inside the storage directory", () => {
  const dir = "/srv/exports";
  assertEquals(resolveFilePath(dir, "a/b.csv"), "/srv/exports/a/b.csv");
  assertEquals(resolveFilePath("/srv/exports/", "x..y.csv"), "/srv/exports/x..y.csv");
  for (
    const key of [
      "",
      "../secret",
      "a/../../secret",
      "a/..",
      "./a.csv",
      "/etc/passwd",
      "a//b.csv",
      "a/",
      ".uploads/0b9c8f4e-2f5d-4a53-9d8e-6f1f0f2f3a4b.part",
      "a\\..\\..\\b",
      "a\u0000b",
      "x".repeat(2000),
    ]
  ) {
    assertThrows(() => resolveFilePath(dir, key), InvalidKeyError, "invalid object key");
  }
});

Deno.test({
  name: "fs: keys that escape the directory are refused by every operation",
  ...serviceTest,
  async fn() {
    await withFsStorage(async ({ storage }) => {
      await assertRejects(() => storage.beginUpload("../x.csv", "text/csv"), InvalidKeyError);
      await assertRejects(() => storage.headObject("/etc/passwd"), InvalidKeyError);
      await assertRejects(() => storage.deleteObject("a/../../x"), InvalidKeyError);
      await assertRejects(
        () => storage.downloadUrl("../x", { expiresInSeconds: 60 }),
        InvalidKeyError,
      );
      await assertRejects(
        () => storage.abortUpload({ key: "x", uploadId: "../../x" }),
        Error,
        "invalid upload id",
      );
    });
  },
});

Deno.test({
  name: "fs: composeObject concatenates small and large sources exactly; readObject ranges",
  ...serviceTest,
  async fn() {
    await withFsStorage(async ({ storage }) => {
      const { expected, composed, size } = await composeMixedSources(storage, "t/");
      assertEquals(size, expected.byteLength);
      assertEquals(digest(composed), digest(expected));
      const part = await readAll(
        await storage.readObject(`t/shards/1.bin`, { start: 5, end: 20 }),
      );
      assertEquals(part, pattern(MIB5 + 17, 101).subarray(5, 20));
      assertEquals(await storage.listIncompleteUploads("t/"), [], "no upload left");
      await assertRejects(
        () =>
          storage.composeObject(`t/bad.bin`, "text/plain", [{
            key: `t/shards/0.bin`,
            size: 1,
          }]),
        Error,
        "expected 1",
      );
      assertEquals(await storage.headObject(`t/bad.bin`), null);
      assertEquals(await storage.listIncompleteUploads("t/"), [], "no upload left after a failure");
    });
  },
});

Deno.test({
  name: "fs: keys at the byte bounds (255-byte names of 4-byte characters, 1,024-byte keys) work",
  ...serviceTest,
  async fn() {
    await withFsStorage(async ({ storage }) => {
      const name = `${"🦋".repeat(60)}é_export-7.csv`; // 240 + 2 + 13 = 255 bytes
      assertEquals(utf8ByteLength(name), 255);
      const deep = `${"ü".repeat(127)}/`.repeat(3); // 3 segments of 254 bytes
      const key = `${deep}abc/${"x".repeat(251)}.csv`; // 765 + 4 + 255 bytes
      assertEquals(utf8ByteLength(key), MAX_KEY_BYTES);
      for (const k of [`exports/u/${name}`, key]) {
        const bytes = pattern(3000, 5);
        const state = await storage.appendPart(await storage.beginUpload(k, "text/csv"), bytes);
        assertEquals(await storage.completeUpload(state), { size: 3000 });
        assertEquals(await storage.headObject(k), { size: 3000 });
        assertEquals(await storage.listObjects(k.slice(0, 9)), [k]);
        const url = await storage.downloadUrl(k, { expiresInSeconds: 60, filename: name });
        const res = await fetch(url);
        assertEquals(res.status, 200);
        assertEquals(dispositionName(res.headers.get("content-disposition")), name);
        assertEquals(digest(new Uint8Array(await res.arrayBuffer())), digest(bytes));
        await storage.deleteObject(k);
        assertEquals(await storage.headObject(k), null);
      }
    });
  },
});

Deno.test({
  name: "fs: a key beyond the bounds is refused before anything is written, and cannot exist",
  ...serviceTest,
  async fn() {
    await withFsStorage(async ({ storage, dir }) => {
      const keys = [
        `exports/u/${"s".repeat(250)}_export-1.csv`, // a 264-byte name: NAME_MAX
        `exports/u/${"é".repeat(128)}.csv`, // 260 bytes in 132 characters
        `${"a".repeat(200)}/`.repeat(5) + "b.csv", // 1,010 characters, 1,010 bytes: fine
        `${"é".repeat(100)}/`.repeat(5) + "b.csv", // 510 characters, 1,010 bytes: fine
        `${"é".repeat(100)}/`.repeat(6) + "b.csv", // 1,211 bytes: more than S3's 1,024
        "exports/\ud83d.csv", // a lone surrogate
      ];
      for (const key of keys) {
        const fits = utf8ByteLength(key) <= MAX_KEY_BYTES && key.split("/").every((s) =>
          utf8ByteLength(s) <= 255
        ) && key.isWellFormed();
        if (fits) {
          await storage.abortUpload(await storage.beginUpload(key, "text/csv"));
          continue;
        }
        const error = await assertRejects(
          () => storage.beginUpload(key, "text/csv"),
          KeyOutOfBoundsError,
          "invalid object key",
        );
        assert(
          /NAME_MAX|1024 of an S3 object key|lone surrogate/.test(error.message),
          error.message,
        );
        assert(error.message.length < 400, `a bounded message: ${error.message.length}`);
        assertEquals(await storage.headObject(key), null, "no such object can exist");
        await storage.deleteObject(key); // nothing to delete: no error either
        await storage.abortUpload({ key, uploadId: crypto.randomUUID() });
      }
      assertEquals(await storage.listIncompleteUploads(""), [], "no upload was begun");
      assertEquals(await Array.fromAsync(Deno.readDir(join(dir, ".uploads"))), []);
      // a key that escapes the directory is still an error, not a missing object
      await assertRejects(() => storage.headObject("../x"), InvalidKeyError);
      await assertRejects(() => storage.deleteObject("a/../../x"), InvalidKeyError);
    });
  },
});

Deno.test({
  name: "fs: a file written before the 1,024-byte rule (a longer key) stays readable and deletable",
  ...serviceTest,
  async fn() {
    await withFsStorage(async ({ storage, dir }) => {
      const key = `${"é".repeat(100)}/`.repeat(6) + "legacy.csv"; // 1,216 bytes, 610 characters
      await Deno.mkdir(join(dir, ...key.split("/").slice(0, -1)), { recursive: true });
      await Deno.writeTextFile(resolveFilePath(dir, key), "id\n1\n");
      assertEquals(await storage.headObject(key), { size: 5 });
      assertEquals(
        new TextDecoder().decode(await readAll(await storage.readObject(key))),
        "id\n1\n",
      );
      await storage.deleteObject(key);
      assertEquals(await storage.headObject(key), null);
    });
  },
});

Deno.test({
  name: "fs: deleting an export folder's last file removes the folders it leaves empty, no more",
  ...serviceTest,
  async fn() {
    await withFsStorage(async ({ storage, dir }) => {
      const uuid = crypto.randomUUID();
      const bytes = new TextEncoder().encode("a,b\n");
      const put = (key: string) => putObject(storage, key, { bytes, contentType: "text/csv" });
      const exists = (path: string) => Deno.stat(join(dir, path)).then(() => true, () => false);
      await put(`demo/exports/${uuid}/export.csv`);
      await put(`demo/exports/${uuid}/shards/unit-1/unit.json`);
      await put(`demo/exports/${crypto.randomUUID()}/other.csv`);
      await put("demo/sources/night-1/capture.jpg");

      await storage.deleteObject(`demo/exports/${uuid}/shards/unit-1/unit.json`);
      assertEquals(await exists(`demo/exports/${uuid}/shards`), false, "empty shard folders go");
      assertEquals(await exists(`demo/exports/${uuid}/export.csv`), true);

      await storage.deleteObject(`demo/exports/${uuid}/export.csv`);
      assertEquals(await exists(`demo/exports/${uuid}`), false, "the empty export folder goes");
      assertEquals(await exists("demo/exports"), true, "the shared folder stays");

      // outside an export folder nothing but the file goes
      await storage.deleteObject("demo/sources/night-1/capture.jpg");
      assertEquals(await exists("demo/sources/night-1"), true);

      // an object written into a removed export folder makes its folders again
      await put(`demo/exports/${uuid}/again.csv`);
      assertEquals(await storage.headObject(`demo/exports/${uuid}/again.csv`), { size: 4 });
    });
  },
});
