/**
 * Issue 23, item 4: no user-controlled name wedges an export. Projects whose slugs are 250
 * characters, 200 × "é", emoji, path tricks (`/`, `..`), RTL marks, or differ only after the
 * cut are exported on the filesystem backend and on S3 (there under the longest accepted
 * `STORAGE_PREFIX`): each export ends SUCCESS, its key stays within the byte bounds
 * (storage/key_bounds.ts: 1,024-byte keys, 255-byte names, 4,095-byte paths), keeps
 * `_export-<id>.csv`, and its file downloads through the API's download URL with the recorded
 * bytes and the key's file name.
 */
import { parse } from "csv-parse/sync";
import { resolve } from "node:path";
import { seedDemo } from "../db/seed_demo.ts";
import {
  MAX_GENERATED_KEY_BYTES,
  MAX_KEY_BYTES,
  MAX_NAME_BYTES,
  MAX_PATH_BYTES,
  utf8ByteLength,
} from "../storage/key_bounds.ts";
import { assert, assertEquals } from "./assert.ts";
import { expectedOccurrenceIds, type Harness, startHarness } from "./harness.ts";
import { serviceTest, sha256Hex } from "./support.ts";

/** The slugs, by what they try. */
const SLUGS: Record<string, string> = {
  "250 ASCII characters": `moths-${"s".repeat(244)}`,
  "200 × é (400 bytes)": "é".repeat(200),
  "emoji (4-byte UTF-8 across the cut)": `${"a".repeat(233)}${"🦋".repeat(50)}`,
  "emoji ZWJ sequences": "👩🏽‍🔬".repeat(40),
  "path tricks and RTL marks": `../../etc/${"x/".repeat(150)}\u202egpj.exe\u2066..`,
  "differs only after the cut, a": `${"same-".repeat(60)}a`,
  "differs only after the cut, b": `${"same-".repeat(60)}b`,
};

/** The longest `STORAGE_PREFIX` the configuration accepts: 724 bytes in 200-byte segments. */
const LONGEST_PREFIX = `${"p".repeat(199)}/${"q".repeat(199)}/${"r".repeat(199)}/` +
  `${"s".repeat(MAX_KEY_BYTES - MAX_GENERATED_KEY_BYTES - 600 - 1)}/`;

/** The file name a `Content-Disposition` value gives (its RFC 5987 `filename*`). */
function dispositionName(header: string | null): string | null {
  const match = /filename\*=UTF-8''([^;]+)/.exec(header ?? "");
  return match ? decodeURIComponent(match[1]) : null;
}

/** GET the export's `download_url` (through the API, 302) and then the file it points at. */
async function downloadThroughApi(
  h: Harness,
  id: number,
  token: string,
): Promise<{ bytes: Uint8Array; filename: string | null }> {
  const redirect = await h.api("GET", `/api/v2/exports/${id}/download/`, { token });
  assertEquals(redirect.status, 302, await redirect.clone().text());
  const location = redirect.headers.get("location")!;
  if (location.startsWith(h.config.publicBaseUrl)) {
    // filesystem backend: the signed /files/ URL, served by the API itself
    const res = await h.app.request(location.slice(h.config.publicBaseUrl.length));
    assertEquals(res.status, 200, await res.clone().text());
    return {
      bytes: new Uint8Array(await res.arrayBuffer()),
      filename: dispositionName(res.headers.get("content-disposition")),
    };
  }
  // S3: a presigned URL; moto ignores response-content-disposition, S3 sends it back
  const res = await fetch(location);
  assertEquals(res.status, 200, location);
  return {
    bytes: new Uint8Array(await res.arrayBuffer()),
    filename: dispositionName(new URL(location).searchParams.get("response-content-disposition")),
  };
}

for (const backend of ["fs", "s3"] as const) {
  Deno.test({
    name: `long and hostile project slugs export SUCCESS on ${backend} within the byte bounds`,
    ...serviceTest,
    async fn(t) {
      const prefix = backend === "s3" ? LONGEST_PREFIX : "";
      const h = await startHarness({
        storage: backend,
        env: prefix ? { STORAGE_PREFIX: prefix } : {},
      });
      try {
        assertEquals(h.config.storagePrefix, prefix);
        const seed = await seedDemo(h.sql, { occurrences: 40, seed: 23 });
        const expectedIds = await expectedOccurrenceIds(h.sql, seed.project_id);
        assert(expectedIds.length > 10, `seed gave ${expectedIds.length} valid occurrences`);
        const keys = new Map<string, string>();

        for (const [label, slug] of Object.entries(SLUGS)) {
          await t.step(label, async () => {
            await h.sql`update projects set slug = ${slug} where id = ${seed.project_id}`;
            const started = Date.now();
            const res = await h.api("POST", "/api/v2/exports/", {
              token: seed.token,
              body: { project: seed.project_id, format: "occurrences_simple_csv", force: true },
            });
            const created = await res.json();
            assertEquals(res.status, 201, JSON.stringify(created));
            const id = created.id as number;
            const done = await h.waitForExport(id, seed.token, 60_000);
            assertEquals(done.status, "SUCCESS", JSON.stringify(done).slice(0, 2000));
            assert(Date.now() - started < 60_000);

            // the key: bounded in bytes, readable, the export's id and extension kept
            const [{ file_key: key, file_uuid: uuid }] = await h.sql<
              { file_key: string; file_uuid: string }[]
            >`select file_key, file_uuid::text from data_exports where id = ${id}`;
            const keyBytes = utf8ByteLength(key);
            assert(keyBytes <= MAX_KEY_BYTES, `${keyBytes}-byte key`);
            assert(key.startsWith(`${prefix}exports/${uuid}/`), key.slice(0, 200));
            const name = key.slice(`${prefix}exports/${uuid}/`.length);
            assert(!name.includes("/"), `the slug added a directory: ${name}`);
            assert(!name.startsWith("."), name);
            assert(name.endsWith(`_export-${id}.csv`), name);
            const nameBytes = utf8ByteLength(name);
            assert(nameBytes <= MAX_NAME_BYTES, `${nameBytes}-byte file name`);
            // as much of the slug as fits: the name is cut only where it had to be
            const whole = utf8ByteLength(slug) + `_export-${id}.csv`.length;
            if (whole > MAX_NAME_BYTES) assert(nameBytes > MAX_NAME_BYTES - 15, `${nameBytes}`);
            assertEquals(/[\u202a-\u202e\u2066-\u2069\0]/.test(name), false, name);
            assert(key.isWellFormed());
            if (backend === "fs") {
              const path = resolve(h.config.exportsDir, key);
              assert(utf8ByteLength(path) <= MAX_PATH_BYTES);
              assertEquals((await Deno.stat(path)).size, done.file_size);
            }
            assertEquals((await h.storage.headObject(key))?.size, done.file_size);
            keys.set(label, key);

            // downloads through the API's URL: the recorded bytes, under the key's file name
            const { bytes, filename } = await downloadThroughApi(h, id, seed.token);
            assertEquals(bytes.length, done.file_size);
            assertEquals(done.checksum, `sha256:${await sha256Hex(bytes)}`);
            const rows: string[][] = parse(new TextDecoder().decode(bytes));
            assertEquals(rows.slice(1).map((r) => Number(r[0])), expectedIds);
            assertEquals(filename, name);
          });
        }

        const a = keys.get("differs only after the cut, a")!;
        const b = keys.get("differs only after the cut, b")!;
        assert(a !== b, "two exports share a key");
        // equal names before the cut; the cut moves by the ids' digits (99 and 100 differ by one)
        const cut = (key: string): { name: string; digits: number } => {
          const name = key.slice(key.lastIndexOf("/"));
          return {
            name: name.replace(/_export-\d+/, ""),
            digits: name.match(/_export-(\d+)/)![1].length,
          };
        };
        const [short, long] = [cut(a), cut(b)].sort((x, y) => x.name.length - y.name.length);
        assert(
          long.name.replace(/\.csv$/, "").startsWith(short.name.replace(/\.csv$/, "")),
          `equal names before the cut: ${short.name} / ${long.name}`,
        );
        assertEquals(long.name.length - short.name.length, Math.abs(long.digits - short.digits));
        // both files are still there, each its own
        for (const key of [a, b]) assert((await h.storage.headObject(key)) !== null, key);
        assertEquals((await h.storage.listIncompleteUploads(prefix)).length, 0);
      } finally {
        // slugs are unique: free this test's for the other backend's project
        await h.sql`update projects set slug = ${`long-names-${crypto.randomUUID()}`}
          where slug = any(${Object.values(SLUGS)})`.catch(() => {});
        await h.close();
      }
    },
  });
}

Deno.test({
  name:
    "a STORAGE_PREFIX that bypassed the config check: shorter names, else FAILURE that says why",
  ...serviceTest,
  async fn(t) {
    // a worker whose configuration was not validated (an older build, a hand-made Config)
    const h = await startHarness({
      storage: "fs",
      worker: false,
      env: { EXPORT_MAX_ATTEMPTS: "2" },
    });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 20, seed: 24 });
      await h.sql`update projects set slug = ${"é".repeat(200)} where id = ${seed.project_id}`;
      const exportOnce = async (): Promise<Record<string, unknown>> => {
        const res = await h.api("POST", "/api/v2/exports/", {
          token: seed.token,
          body: { project: seed.project_id, format: "occurrences_simple_csv", force: true },
        });
        const created = await res.json();
        assertEquals(res.status, 201, JSON.stringify(created));
        return await h.waitForExport(created.id, seed.token, 60_000);
      };

      await t.step("845 bytes of prefix: the name gets the 179 bytes left, SUCCESS", async () => {
        h.config.storagePrefix = `${"p".repeat(199)}/`.repeat(4);
        assertEquals(h.config.storagePrefix.length + 45, 845);
        await h.startWorker();
        const done = await exportOnce();
        assertEquals(done.status, "SUCCESS", JSON.stringify(done).slice(0, 1000));
        const [{ file_key: key }] = await h.sql<{ file_key: string }[]>`
          select file_key from data_exports where id = ${done.id as number}`;
        assert(utf8ByteLength(key) <= MAX_KEY_BYTES, `${utf8ByteLength(key)}-byte key`);
        assert(utf8ByteLength(key) > MAX_KEY_BYTES - 2, "the name uses the room there is");
        assert(key.endsWith(`_export-${done.id}.csv`), key.slice(-40));
        const { bytes } = await downloadThroughApi(h, done.id as number, seed.token);
        assertEquals(bytes.length, done.file_size);
        await h.stopWorker();
      });

      await t.step("1,000 bytes of prefix: FAILURE naming the cause, in bounded time", async () => {
        h.config.storagePrefix = `${"p".repeat(199)}/`.repeat(5);
        await h.startWorker();
        const started = Date.now();
        const done = await exportOnce();
        assertEquals(done.status, "FAILURE", JSON.stringify(done).slice(0, 1000));
        assert(String(done.error).includes("no room for the file name"), String(done.error));
        assert(Date.now() - started < 60_000);
        assertEquals(await h.storage.listIncompleteUploads(""), []);
      });
    } finally {
      await h.sql`update projects set slug = ${`long-names-${crypto.randomUUID()}`}
        where slug = ${"é".repeat(200)}`.catch(() => {});
      await h.close();
    }
  },
});
