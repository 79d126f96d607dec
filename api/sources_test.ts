/**
 * `/sources/<path>` (the demo's source images): read-only, only under the sources prefix, and
 * every traversal attempt (`..`, encoded `%2e%2e` and `%2f`, backslashes, absolute paths) a 4xx,
 * through Hono's `app.request` and through a real listener fed raw request lines.
 */
import { Hono } from "hono";
import { SOURCES_PATH, sourcesRoutes } from "./sources.ts";
import { createFsStorage, createS3Storage } from "../storage/mod.ts";
import { putObject } from "../storage/put_object.ts";
import { sourceKey, sourcePathProblem } from "../storage/sources.ts";
import type { ObjectStorage } from "../storage/types.ts";
import { assert, assertEquals } from "../tests/assert.ts";
import { requireEnv, serviceTest } from "../tests/support.ts";

const PREFIX = "demo/";
const IMAGE = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 0xff, 0xd9]);
const SECRET = "outside the sources prefix";

/** A storage with one source image and, beside the sources folder, objects never to be served. */
async function filledStorage(storage: ObjectStorage): Promise<void> {
  await storage.ensureReady();
  await putObject(storage, sourceKey(PREFIX, "demo-1/station-1/a.jpg"), {
    bytes: IMAGE,
    contentType: "image/jpeg",
  });
  const secret = { bytes: new TextEncoder().encode(SECRET), contentType: "text/plain" };
  await putObject(storage, `${PREFIX}exports/secret.txt`, secret);
  await putObject(storage, "secret.txt", secret);
}

function sourcesApp(storage: ObjectStorage): Hono {
  const app = new Hono();
  app.route(SOURCES_PATH, sourcesRoutes(storage, { storagePrefix: PREFIX }));
  return app;
}

/** Request targets that try to leave the sources folder. */
const TRAVERSALS = [
  "/sources/../secret.txt",
  "/sources/../exports/secret.txt",
  "/sources/demo-1/../../secret.txt",
  "/sources/%2e%2e/secret.txt",
  "/sources/%2E%2E/exports/secret.txt",
  "/sources/.%2e/secret.txt",
  "/sources/..%2fsecret.txt",
  "/sources/..%2Fexports%2Fsecret.txt",
  "/sources/%2e%2e%2f%2e%2e%2fsecret.txt",
  "/sources/..%5c..%5csecret.txt",
  "/sources/%2fsecret.txt",
  "/sources//secret.txt",
  "/sources/%2Fetc%2Fpasswd",
  "/sources/%252e%252e/secret.txt",
  "/sources/.hidden",
  "/sources/demo-1/%00.jpg",
  "/sources/%ff",
  "/sources/",
];

Deno.test("sourcePathProblem: relative paths of plain segments only", () => {
  assertEquals(sourcePathProblem("demo-1/station-1/2023-05-01/x-snapshot.jpg"), undefined);
  for (const bad of ["", "/etc/passwd", "a//b", "../a", "a/..", "a/./b", ".a", "a\\b", "a%2e"]) {
    assert(sourcePathProblem(bad) !== undefined, `accepted: ${JSON.stringify(bad)}`);
  }
  assert(sourcePathProblem("a/".repeat(300)) !== undefined, "a path past 512 characters");
});

Deno.test({
  name: "sources route (fs): serves an image read-only; traversal answers 4xx",
  ...serviceTest,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const storage = createFsStorage({
        dir,
        publicBaseUrl: "http://127.0.0.1",
        signingSecret: "test-signing-secret-0123456789",
      });
      await filledStorage(storage);
      const app = sourcesApp(storage);
      const ok = await app.request("/sources/demo-1/station-1/a.jpg");
      assertEquals(ok.status, 200);
      assertEquals(ok.headers.get("content-type"), "image/jpeg");
      assertEquals(new Uint8Array(await ok.arrayBuffer()), IMAGE);
      const head = await app.request("/sources/demo-1/station-1/a.jpg", { method: "HEAD" });
      assertEquals([head.status, head.headers.get("content-length")], [200, String(IMAGE.length)]);
      assertEquals((await app.request("/sources/demo-1/missing.jpg")).status, 404);
      for (const method of ["PUT", "POST", "DELETE"]) {
        const res = await app.request("/sources/demo-1/station-1/a.jpg", { method, body: "x" });
        assertEquals(res.status, 405, method);
        assertEquals(res.headers.get("allow"), "GET, HEAD");
      }
      for (const target of TRAVERSALS) {
        const res = await app.request(`http://127.0.0.1${target}`);
        const text = await res.text();
        assert(res.status >= 400 && res.status < 500, `${target}: ${res.status}`);
        assert(!text.includes(SECRET), `${target} served a file outside the sources prefix`);
      }
      // still there: nothing was written or deleted by the requests
      assert(await storage.headObject(sourceKey(PREFIX, "demo-1/station-1/a.jpg")));

      // the same targets as raw request lines, as a client that does not normalise sends them
      const server = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen: () => {} },
        app.fetch,
      );
      try {
        const port = server.addr.port;
        assertEquals(await rawStatus(port, "/sources/demo-1/station-1/a.jpg"), 200);
        for (const target of [...TRAVERSALS, `http://127.0.0.1:${port}/sources/../secret.txt`]) {
          const { status, text } = await rawRequest(port, target);
          assert(status >= 400 && status < 500, `raw ${target}: ${status}`);
          assert(!text.includes(SECRET), `raw ${target} served a file outside the prefix`);
        }
      } finally {
        await server.shutdown();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "sources route (S3): the same keys from a bucket",
  ...serviceTest,
  async fn() {
    const storage = createS3Storage({
      endpoint: requireEnv("TEST_S3_ENDPOINT"),
      bucket: `sources-test-${crypto.randomUUID().slice(0, 8)}`,
      region: "us-east-1",
      forcePathStyle: true,
      accessKeyId: "testing",
      secretAccessKey: "testing",
    });
    await filledStorage(storage);
    const app = sourcesApp(storage);
    const ok = await app.request("/sources/demo-1/station-1/a.jpg");
    assertEquals(ok.status, 200);
    assertEquals(new Uint8Array(await ok.arrayBuffer()), IMAGE);
    assertEquals((await app.request("/sources/demo-1/missing.jpg")).status, 404);
    for (const target of ["/sources/..%2fsecret.txt", "/sources/..%2Fexports%2Fsecret.txt"]) {
      const res = await app.request(`http://127.0.0.1${target}`);
      assertEquals(res.status, 400, target);
      await res.body?.cancel();
    }
  },
});

/** The status line and body of one HTTP/1.1 request sent byte for byte as `target`. */
async function rawRequest(port: number, target: string): Promise<{ status: number; text: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
      ),
    );
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(16_384);
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) break;
      chunks.push(buffer.slice(0, n));
    }
    const text = new TextDecoder().decode(
      Uint8Array.from(chunks.flatMap((chunk) => [...chunk])),
    );
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
    return { status, text };
  } finally {
    conn.close();
  }
}

async function rawStatus(port: number, target: string): Promise<number> {
  return (await rawRequest(port, target)).status;
}
