/** The backend chosen from the configuration, and the download file name header. */
import { loadConfig } from "../config/mod.ts";
import { assert, assertEquals } from "../tests/assert.ts";
import { requireEnv, serviceTest } from "../tests/support.ts";
import { attachmentDisposition, createStorage } from "./mod.ts";
import { pattern } from "./test_support.ts";

Deno.test({
  name: "storage: the configuration picks the filesystem backend in EXPORTS_DIR",
  ...serviceTest,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "ami-exports-mod-test-" });
    try {
      const storage = createStorage(loadConfig({ STORAGE_BACKEND: "fs", EXPORTS_DIR: dir }));
      assertEquals(storage.backend, "fs");
      const state = await storage.beginUpload("a/b.csv", "text/csv");
      await storage.completeUpload(await storage.appendPart(state, pattern(3, 1)));
      assertEquals((await Deno.stat(`${dir}/a/b.csv`)).size, 3);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "storage: the configuration picks the S3 backend on S3_BUCKET",
  ...serviceTest,
  async fn() {
    const bucket = `storage-mod-test-${crypto.randomUUID().slice(0, 8)}`;
    const storage = createStorage(loadConfig({
      S3_BUCKET: bucket,
      S3_ENDPOINT: requireEnv("TEST_S3_ENDPOINT"),
      AWS_ACCESS_KEY_ID: "testing",
      AWS_SECRET_ACCESS_KEY: "testing",
    }));
    assertEquals(storage.backend, "s3");
    await storage.ensureReady();
    const state = await storage.beginUpload("a/b.csv", "text/csv");
    assertEquals(await storage.completeUpload(await storage.appendPart(state, pattern(3, 1))), {
      size: 3,
    });
    assertEquals(await storage.listObjects(""), ["a/b.csv"]);
  },
});

Deno.test("storage: the attachment header keeps the exact name and a safe ASCII fallback", () => {
  assertEquals(
    attachmentDisposition("export.csv"),
    `attachment; filename="export.csv"; filename*=UTF-8''export.csv`,
  );
  assertEquals(
    attachmentDisposition(`Noctuidae "été" 2024/1.csv`),
    `attachment; filename="Noctuidae _ete_ 2024_1.csv"; ` +
      `filename*=UTF-8''Noctuidae%20%22%C3%A9t%C3%A9%22%202024_1.csv`,
  );
  assertEquals(
    attachmentDisposition("a\r\nb's(1).csv"),
    `attachment; filename="a__b's(1).csv"; filename*=UTF-8''a__b%27s%281%29.csv`,
  );
});

Deno.test("storage: the attachment header is a valid header value for any name", () => {
  const butterflies = `${"🦋".repeat(60)}é_export-7.csv`; // 255 bytes
  const names: [string, string][] = [
    [butterflies, butterflies],
    ["\u202emoths\u2066_export-1.csv", "\u202emoths\u2066_export-1.csv"],
    ["lone \ud83d surrogate.csv", "lone \ufffd surrogate.csv"],
    ["nul\0and\u2028line.csv", "nul_and\u2028line.csv"],
  ];
  for (const [name, saved] of names) {
    const value = attachmentDisposition(name);
    assertEquals(/^[ -~]+$/.test(value), true, value); // visible ASCII only
    // a Response accepts it (a raw non-Latin-1 or CR/LF value would throw)
    const res = new Response("", { headers: { "content-disposition": value } });
    const exact = /filename\*=UTF-8''(.+)$/.exec(res.headers.get("content-disposition")!)![1];
    assertEquals(decodeURIComponent(exact), saved);
  }
});

Deno.test("storage: the attachment header is a valid ASCII header for any name (RFC 6266 §4.3)", () => {
  const names = [
    "夜の蛾_export-1.csv",
    "moths 🦋‍⬛ 100%41_export-2.zip",
    "lone \ud800 surrogate.csv",
    "tab\tNUL\u0000DEL\u007f;x=1.csv",
    "Ångström – «Noctuelles».csv",
  ];
  for (const name of names) {
    const value = attachmentDisposition(name);
    // a Headers object refuses anything but a valid field value (no CR/LF/NUL, Latin-1 only)
    const headers = new Headers({ "content-disposition": value });
    assertEquals(headers.get("content-disposition"), value);
    assert(/^[\x20-\x7e]+$/.test(value), `not printable ASCII: ${value}`);
    const [, fallback, exact] = /^attachment; filename="([^"]*)"; filename\*=UTF-8''(\S+)$/
      .exec(value)!;
    assert(!/%[0-9A-Fa-f]{2}/.test(fallback), `fallback has a percent escape: ${fallback}`);
    // RFC 8187 attr-char or pct-encoded only
    assert(/^([A-Za-z0-9!#$&+\-.^_`|~]|%[0-9A-F]{2})+$/.test(exact), exact);
    assertEquals(
      decodeURIComponent(exact),
      // deno-lint-ignore no-control-regex -- the control characters the header replaces
      name.replace(/[\x00-\x1f\x7f/\\]/g, "_").toWellFormed(),
    );
  }
  assertEquals(
    attachmentDisposition("Écaille été.csv"),
    `attachment; filename="Ecaille ete.csv"; filename*=UTF-8''%C3%89caille%20%C3%A9t%C3%A9.csv`,
  );
});
