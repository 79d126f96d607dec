/**
 * The source allowlist end to end (issue 19, Done when): a real `crops_by_taxon` export through
 * the API and a worker, with captures on a host off the list, at a `file://` URL and behind a
 * redirect from an allowed host to a loopback port off the list. The listener on that port sees
 * no connection, each capture's crops are in skipped.csv with their reason, and the export is
 * SUCCESS with `skipped_count` the rows of skipped.csv.
 */
import { assert, assertEquals } from "./assert.ts";
import { createUser } from "./fixtures/access.ts";
import { countingListener, readCrops, redirector, seedCrops } from "./fixtures/crops_project.ts";
import { startHarness } from "./harness.ts";
import { requireEnv, serviceTest } from "./support.ts";

Deno.test({
  name:
    "image sources: host off the list, file:// and a redirect to loopback are skipped, unfetched",
  ...serviceTest,
  async fn() {
    const listener = countingListener();
    const redirect = redirector(`http://127.0.0.1:${listener.port}/c.jpg`);
    const moto = new URL(requireEnv("TEST_S3_ENDPOINT")).host;
    const h = await startHarness({
      storage: "fs",
      batchSize: 20,
      env: {
        SOURCE_IMAGE_HOSTS: `${moto},${new URL(redirect.url).host}`,
        IMAGE_FETCH_ATTEMPTS: "1",
      },
    });
    try {
      const seed = await seedCrops(h.sql, listener.port);
      // two good captures (4 boxes each) moved: one to a file:// URL, one behind the redirect
      await h.sql`
        update source_images set public_base_url = 'file:///', path = 'etc/passwd'
        where project_id = ${seed.projectId} and path = 'captures/c8.jpg'`;
      await h.sql`
        update source_images set public_base_url = ${redirect.url + "/"}, path = 'c9.jpg'
        where project_id = ${seed.projectId} and path = 'captures/c9.jpg'`;
      const [, token] = await createUser(h.sql, "security", true);
      const res = await h.api("POST", "/api/v2/exports/", {
        token,
        body: {
          project: seed.projectId,
          format: "crops_by_taxon",
          force: true,
          options: { max_skipped_fraction: 0.5 },
        },
      });
      assertEquals(res.status, 201, await res.clone().text());
      const done = await h.waitForExport((await res.json()).id, token, 120_000);
      assertEquals(done.status, "SUCCESS", String(done.error));
      const report = await readCrops(await h.download(done.file_url as string));
      assertEquals(report.problems, []);
      const reasons = new Map<string, string>();
      for (const row of report.skipped) reasons.set(row.source_url, row.reason);
      assertEquals(reasons.get(`http://127.0.0.1:${listener.port}/c.jpg`), "host not allowed");
      // the capture URL join writes the file URL as `file:/etc/passwd`
      const file = report.skipped.filter((row) => row.source_url.startsWith("file:"));
      assertEquals(file.map((row) => row.reason), Array(4).fill("scheme not allowed"));
      assertEquals(reasons.get(`${redirect.url}/c9.jpg`), "redirect: host not allowed");
      // 4 seeded skips + 4 crops of each moved capture
      assertEquals(report.skipped.length, 12);
      assertEquals(done.skipped_count, report.skipped.length);
      assert(redirect.requests() > 0, "the redirecting host was never asked");
      assertEquals(listener.connections(), 0);
    } finally {
      await h.close();
      listener.close();
      await redirect.close();
    }
  },
});
