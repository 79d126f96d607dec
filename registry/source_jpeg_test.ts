import sharp from "sharp";
import { assert, assertEquals } from "../tests/assert.ts";
import { defaultImageSourceSettings } from "./image_sources.ts";
import { sourceJpeg } from "./source_jpeg.ts";

Deno.test("source JPEG: a JPEG kept byte for byte, a PNG re-encoded, text left out", async () => {
  const image = sharp({
    create: { width: 32, height: 24, channels: 3, background: { r: 200, g: 30, b: 60 } },
  });
  const files: Record<string, Uint8Array<ArrayBuffer>> = {
    "/a.jpg": new Uint8Array(await image.clone().jpeg().toBuffer()),
    "/b.png": new Uint8Array(await image.clone().png().toBuffer()),
    "/c.jpg": new TextEncoder().encode("not an image"),
  };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) => {
      const body = files[new URL(request.url).pathname];
      return body ? new Response(body) : new Response("", { status: 404 });
    },
  );
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const settings = { ...defaultImageSourceSettings, hosts: [`127.0.0.1:${server.addr.port}`] };
    const jpeg = await sourceJpeg(`${base}/a.jpg`, settings);
    assert(jpeg.ok);
    assertEquals(jpeg.jpeg, files["/a.jpg"]);
    const aMeta = await sharp(files["/a.jpg"]).metadata();
    assertEquals([jpeg.width, jpeg.height], [aMeta.width, aMeta.height]);
    const png = await sourceJpeg(`${base}/b.png`, settings);
    assert(png.ok);
    assertEquals([...png.jpeg.slice(0, 3)], [0xff, 0xd8, 0xff]);
    const meta = await sharp(png.jpeg).metadata();
    assertEquals([meta.format, meta.width, meta.height], ["jpeg", 32, 24]);
    assertEquals([png.width, png.height], [32, 24]);
    assertEquals(await sourceJpeg(`${base}/c.jpg`, settings), {
      ok: false,
      reason: "not an image",
    });
    assertEquals(await sourceJpeg(`${base}/d.jpg`, settings), { ok: false, reason: "HTTP 404" });
  } finally {
    await server.shutdown();
  }
});
