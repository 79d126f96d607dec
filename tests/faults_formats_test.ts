/**
 * Fault injection against real services beyond the occurrence CSV: a worker killed with
 * SIGKILL mid-export of the API JSON and of every other format (each resumes to the same
 * bytes), and 50 concurrent exports through a worker kill. Helpers: `faults_support.ts`.
 */
import { jobLogs } from "../db/exports.ts";
import { seedDemo, type SeedResult } from "../db/seed_demo.ts";
import { assert, assertEquals } from "./assert.ts";
import { expectedOccurrenceIds } from "./harness.ts";
import { serviceTest, testDatabase } from "./support.ts";

let smallProject: Promise<SeedResult> | undefined;
/**
 * The 12,000-occurrence project (seed 1002) of the API JSON kill and the other formats' kills,
 * seeded once for the file: the exports only read it.
 */
function smallProjectOnce(): Promise<SeedResult> {
  smallProject ??= (async () => {
    const sql = testDatabase(2);
    try {
      return await seedDemo(sql, { occurrences: 12_000, seed: 1002 });
    } finally {
      await sql.end();
    }
  })();
  return smallProject;
}
import { readCamtrap } from "./camtrap.ts";
import { checkDwca, unzipText } from "./dwca.ts";
import {
  createExport,
  fileIds,
  JSON_BATCH,
  killAndResume,
  note,
  recordsExported,
  waitFor,
  waitForProgress,
  withProcesses,
} from "./faults_support.ts";

Deno.test({
  name: "kill -9 the worker at ~50% of an occurrences_api_json export: resumes, JSON parses",
  ...serviceTest,
  async fn() {
    // 12,000 records ≈ 46 MB of JSON (the 100,000-row project would be ~380 MB: too heavy for
    // an in-memory moto on a shared 2-core machine); batches of 1,500 ≈ 5.7 MB each.
    const seed = await smallProjectOnce();
    // batches of exactly JSON_BATCH records (not shrunk to the default 4 MB byte target), so
    // that every batch is one 5 MiB part and "re-read ≤ one batch" means one part
    await withProcesses(
      { batchSize: JSON_BATCH, env: { EXPORT_BATCH_MB: "64" } },
      async (h, spawn) => {
        const ids = await expectedOccurrenceIds(h.sql, seed.project_id);
        await killAndResume(h, spawn, {
          seed,
          ids,
          format: "occurrences_api_json",
          batch: JSON_BATCH,
        });
      },
    );
  },
});

Deno.test({
  name: "50 concurrent exports (mixed formats and filters) through a worker kill: all SUCCESS",
  ...serviceTest,
  async fn() {
    const sql = testDatabase(2);
    const seed = await seedDemo(sql, { occurrences: 800, seed: 1003 }).finally(() => sql.end());
    await withProcesses({ batchSize: 300 }, async (h, spawn) => {
      const all = await expectedOccurrenceIds(h.sql, seed.project_id);
      const inSet = await expectedOccurrenceIds(h.sql, seed.project_id, seed.collection_id);
      assert(inSet.length > 0 && inSet.length < all.length);
      const victim = await spawn("concurrent-a");
      await spawn("concurrent-b");
      const requests = Array.from({ length: 50 }, (_, i) => ({
        format: i % 2 === 0 ? "occurrences_simple_csv" : "occurrences_api_json",
        filters: i % 3 === 0 ? { collection_id: seed.collection_id } : {},
      }));
      const started = Date.now();
      const exportIds = await Promise.all(
        requests.map((r) => createExport(h, seed, r.format, r.filters)),
      );
      await waitFor("10 exports to finish", async () => {
        const [{ n }] = await h.sql<{ n: number }[]>`
          select count(*)::int as n from data_exports
          where id in ${h.sql(exportIds)} and status = 'SUCCESS'`;
        return n >= 10;
      }, 120_000);
      await victim.kill();
      const finals = [];
      for (const id of exportIds) finals.push(await h.waitForExport(id, seed.token, 240_000));
      note(`50 concurrent exports with a worker kill: ${(Date.now() - started) / 1000} s`);
      for (const [i, done] of finals.entries()) {
        assertEquals(done.status, "SUCCESS", JSON.stringify(done).slice(0, 1000));
        const expected = "collection_id" in requests[i].filters ? inSet.length : all.length;
        assertEquals(done.record_count, expected, `export ${done.id}`);
        const [row] = await h.sql<{ file_key: string; file_size: number }[]>`
          select file_key, file_size from data_exports where id = ${done.id as number}`;
        assertEquals((await h.storage.headObject(row.file_key))?.size, row.file_size);
      }
      // Two files read back in full: one per format, one per filter.
      assertEquals(await fileIds(h, finals[0]), inSet);
      assertEquals(await fileIds(h, finals[1]), all);
      assertEquals((await h.storage.listIncompleteUploads("exports/")).length, 0);
    });
  },
});

Deno.test({
  name: "kill -9 mid-export of every other format (filesystem): resumes to the same bytes",
  ...serviceTest,
  async fn(t) {
    const seed = await smallProjectOnce();
    // Small batches: the filesystem backend makes every batch durable, so each export
    // checkpoints many times and the kill lands between checkpoints. The taxa list and the
    // session × taxon counts have only a few hundred rows, the sessions a few dozen, hence their
    // own, smaller batches.
    const groups: { batch: number; formats: string[] }[] = [
      {
        batch: 200,
        formats: [
          "occurrences_ndjson",
          "detections_csv",
          "dwca",
          "tracks_csv",
          "detections_coco",
          "captures_csv",
          "occurrences_parquet",
          "camtrap_dp",
        ],
      },
      { batch: 10, formats: ["taxa_list_csv", "taxon_counts_csv"] },
      // 32 sessions in this seed: one per batch, so the kill lands mid-export
      { batch: 1, formats: ["sessions_csv"] },
    ];
    for (const { batch, formats } of groups) {
      await withProcesses({ batchSize: batch, storage: "fs" }, async (h, spawn) => {
        let worker = await spawn("reference");
        // the uninterrupted exports run side by side (the worker's activity slots): each is
        // only compared with its own interrupted run below
        const referenceIds = await Promise.all(formats.map((f) => createExport(h, seed, f)));
        const reference = new Map<string, Record<string, unknown>>();
        for (const [i, format] of formats.entries()) {
          reference.set(format, await h.waitForExport(referenceIds[i], seed.token, 240_000));
        }
        for (const format of formats) {
          await t.step(format, async () => {
            const expected = reference.get(format)!;
            assertEquals(expected.status, "SUCCESS", JSON.stringify(expected).slice(0, 500));
            const id = await createExport(h, seed, format);
            const total = expected.record_count as number;
            await waitForProgress(h, id, Math.max(1, Math.floor(total / 3)));
            await worker.kill();
            const fetchedBeforeKill = await recordsExported(h.sql, id);
            worker = await spawn(`after-${format}`);
            const done = await h.waitForExport(id, seed.token, 120_000);
            assertEquals(done.status, "SUCCESS", JSON.stringify(done).slice(0, 500));
            assertEquals(done.record_count, total);
            const logs = (await jobLogs(h.sql, id)).map((l) => l.message);
            const resume = logs.find((m) => m.startsWith("resumed at"));
            // a tiny export (sessions_csv: 32 rows) can finish before the kill lands: then there
            // is nothing to resume, and the bytes below must still be identical
            if (fetchedBeforeKill < total) {
              assert(resume, `no resume in the job log:\n${logs.join("\n")}`);
            }
            if (format === "dwca") {
              // eml.xml carries its generation time; every other entry must be identical
              const [a, b] = [
                await h.download(expected.file_url as string),
                await h.download(done.file_url as string),
              ];
              for (const entry of ["meta.xml", "event.txt", "occurrence.txt", "multimedia.txt"]) {
                assertEquals(
                  await unzipText(b, entry),
                  await unzipText(a, entry),
                  `${entry} differs`,
                );
              }
              const report = await checkDwca(b);
              assertEquals(report.testzip, null);
              for (const [name, file] of Object.entries(report.files)) {
                assertEquals(file.dangling, 0, `${name}: rows not linked to a core row`);
              }
            } else if (format === "camtrap_dp") {
              // datapackage.json carries its creation time; every table must be identical
              const [a, b] = [
                await h.download(expected.file_url as string),
                await h.download(done.file_url as string),
              ];
              for (const entry of ["deployments.csv", "media.csv", "observations.csv"]) {
                assertEquals(
                  await unzipText(b, entry),
                  await unzipText(a, entry),
                  `${entry} differs`,
                );
              }
              const descriptor = async (zip: Uint8Array) => {
                const { created: _, ...rest } = JSON.parse(
                  await unzipText(zip, "datapackage.json"),
                );
                return rest;
              };
              assertEquals(await descriptor(b), await descriptor(a));
              const report = await readCamtrap(b);
              assertEquals([report.errors, report.profile_errors], [[], []]);
            } else {
              assertEquals(
                done.checksum,
                expected.checksum,
                "file differs from the uninterrupted export",
              );
              assertEquals(done.file_size, expected.file_size);
            }
            note(
              `${format}: killed at ${fetchedBeforeKill}/${total} records (batch ${batch}); ${resume}`,
            );
          });
        }
      });
    }
  },
});
