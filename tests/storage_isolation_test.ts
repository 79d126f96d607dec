/**
 * No export touches another's file: two databases (two deployments) share one S3 bucket, then
 * one filesystem directory, with equal project ids, slugs and export ids. Exports, deletes
 * through the API, a row deleted by hand and housekeeping in both leave every file of the other
 * intact, byte for byte.
 */
import { exportsRoot } from "../activities/mod.ts";
import { sweepStorage } from "../activities/housekeeping.ts";
import { createDatabase, dropDatabase, withDatabase } from "../cli/dev_services.ts";
import { connectDatabase } from "../db/client.ts";
import { migrate } from "../db/migrate.ts";
import { seedDemo, type SeedResult } from "../db/seed_demo.ts";
import { assert, assertEquals } from "./assert.ts";
import { type Harness, startHarness } from "./harness.ts";
import { requireEnv, serviceTest, sha256Hex } from "./support.ts";

/** A fresh, migrated database; dropped by the returned function. */
async function freshDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const admin = requireEnv("TEST_ADMIN_DATABASE_URL");
  const name = `ami_exports_iso_${Date.now()}_${crypto.randomUUID().slice(0, 6)}`;
  await createDatabase(admin, name);
  const url = withDatabase(admin, name);
  const sql = connectDatabase(url, { max: 2 });
  await migrate(sql);
  await sql.end();
  return { url, drop: () => dropDatabase(admin, name) };
}

interface Deployment {
  h: Harness;
  seed: SeedResult;
}

async function exportOnce(d: Deployment, format = "occurrences_simple_csv"): Promise<number> {
  const res = await d.h.api("POST", "/api/v2/exports/", {
    token: d.seed.token,
    body: { project: d.seed.project_id, format, force: true },
  });
  const body = await res.json();
  assertEquals(res.status, 201, JSON.stringify(body));
  const done = await d.h.waitForExport(body.id, d.seed.token);
  assertEquals(done.status, "SUCCESS", JSON.stringify(done));
  return body.id;
}

/** Every SUCCESS export of `d` still has its file, with its recorded size and checksum. */
async function assertFilesIntact(d: Deployment, label: string): Promise<number> {
  const rows = await d.h.sql<{ id: number; file_key: string; file_size: number }[]>`
    select id, file_key, file_size from data_exports where status = 'SUCCESS' order by id`;
  for (const row of rows) {
    const res = await d.h.api("GET", `/api/v2/exports/${row.id}/`, { token: d.seed.token });
    const body = await res.json();
    const bytes = await d.h.download(body.file_url);
    assertEquals(bytes.length, row.file_size, `${label}: export ${row.id} changed size`);
    const digest = await sha256Hex(bytes);
    assert(String(body.checksum).includes(digest), `${label}: export ${row.id} changed content`);
  }
  return rows.length;
}

for (const backend of ["s3", "fs"] as const) {
  Deno.test({
    name: `two databases sharing one ${backend} store: every file intact`,
    ...serviceTest,
    async fn() {
      const [dbA, dbB] = await Promise.all([freshDatabase(), freshDatabase()]);
      const shared: Record<string, string> = backend === "s3"
        ? { S3_BUCKET: `shared-${crypto.randomUUID().slice(0, 8)}` }
        : { EXPORTS_DIR: await Deno.makeTempDir({ prefix: "ami-shared-" }) };
      const ha = await startHarness({ storage: backend, databaseUrl: dbA.url, env: shared });
      const hb = await startHarness({ storage: backend, databaseUrl: dbB.url, env: shared });
      try {
        // different data behind equal ids and slugs
        const a: Deployment = { h: ha, seed: await seedDemo(ha.sql, { occurrences: 60, seed: 1 }) };
        const b: Deployment = { h: hb, seed: await seedDemo(hb.sql, { occurrences: 90, seed: 2 }) };
        assertEquals(a.seed.project_id, b.seed.project_id, "precondition: equal project ids");

        const a1 = await exportOnce(a);
        const b1 = await exportOnce(b);
        assertEquals(a1, b1, "precondition: equal export ids");
        const [keyA] = await a.h.sql<{ file_key: string }[]>`
          select file_key from data_exports where id = ${a1}`;
        const [keyB] = await b.h.sql<{ file_key: string }[]>`
          select file_key from data_exports where id = ${b1}`;
        assert(keyA.file_key !== keyB.file_key, "two exports share an object key");
        assertEquals(keyA.file_key.split("/").at(-1), keyB.file_key.split("/").at(-1));
        const a2 = await exportOnce(a, "occurrences_ndjson");
        const b2 = await exportOnce(b, "occurrences_ndjson");
        const b3 = await exportOnce(b, "taxa_list_csv");

        // A deletes its export 1 through the API; B deletes a row by hand (no workflow ran)
        const del = await a.h.api("DELETE", `/api/v2/exports/${a1}/`, { token: a.seed.token });
        assertEquals(del.status, 204);
        await b.h.sql`delete from data_exports where id = ${b2}`;

        // housekeeping in both, nothing spared by age
        const root = exportsRoot("");
        const reportA = await sweepStorage(a.h.sql, a.h.storage, { minAgeSeconds: 0, root });
        const reportB = await sweepStorage(b.h.sql, b.h.storage, { minAgeSeconds: 0, root });
        assertEquals(reportA, { abortedUploads: [], removedFiles: [] });
        const [goneB] = await b.h.sql<{ file_key: string }[]>`
          select file_key from deleted_export_files where export_id = ${b2}`;
        assertEquals(goneB, undefined, "the swept tombstone is forgotten");
        assertEquals(reportB.abortedUploads, []);
        assertEquals(reportB.removedFiles.length, 1, JSON.stringify(reportB));

        assertEquals(await assertFilesIntact(a, "A"), 1); // a2
        assertEquals(await assertFilesIntact(b, "B"), 2); // b1, b3
        const left = await a.h.storage.listObjects(root);
        assertEquals(left.length, 3, `objects left: ${left.join(", ")}`);
        assert(a2 > 0 && b3 > 0);
      } finally {
        await ha.close();
        await hb.close();
        await Promise.all([dbA.drop(), dbB.drop()]);
        if (shared.EXPORTS_DIR) await Deno.remove(shared.EXPORTS_DIR, { recursive: true });
      }
    },
  });
}
