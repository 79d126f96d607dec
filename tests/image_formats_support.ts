/**
 * Test support shared by the image formats' end-to-end tests (`tests/crops_by_taxon_test.ts`,
 * `tests/yolo_dataset_test.ts`): a harness whose worker fetches the seeded crops project's
 * images from moto, the kill -9 resume test of an image export, and the check that a sharded
 * archive is byte for byte the unsharded one.
 */
import { assert, assertEquals } from "./assert.ts";
import { createUser } from "./fixtures/access.ts";
import { findExport, jobLogs } from "../db/exports.ts";
import { exportCardFacts } from "../activities/export_access.ts";
import type { Exporter, ExportOptions } from "../registry/types.ts";
import { drainStream } from "./stream_drain.ts";
import { withProcesses } from "./faults_support.ts";
import {
  assertSkippedCount,
  type CountingListener,
  countingListener,
  imageQueryContext,
  seedCrops,
  type Seeded,
  slowProxy,
} from "./fixtures/crops_project.ts";
import { type Harness, startHarness, workflowIdsOf } from "./harness.ts";
import { requireEnv } from "./support.ts";
import type { Sql } from "../db/client.ts";

/**
 * Runs `test` on a harness (an in-process worker, `storage`, `batchSize` records a batch) over
 * the crops project (tests/fixtures/crops_project.ts) seeded with its images on moto, whose host
 * is allowed (`SOURCE_IMAGE_HOSTS`, two fetch attempts; `env` adds to or overrides these), and
 * a listener counting connections to the host off the list. Closes both after it, whatever it
 * throws.
 */
export async function withImageHarness(
  options: { storage: "s3" | "fs"; batchSize: number; env?: Record<string, string> },
  test: (h: Harness, seed: Seeded, listener: CountingListener) => Promise<void>,
): Promise<void> {
  const listener = countingListener();
  const host = new URL(requireEnv("TEST_S3_ENDPOINT")).host;
  const h = await startHarness({
    storage: options.storage,
    batchSize: options.batchSize,
    env: { SOURCE_IMAGE_HOSTS: host, IMAGE_FETCH_ATTEMPTS: "2", ...options.env },
  });
  try {
    await test(h, await seedCrops(h.sql, listener.port), listener);
  } finally {
    await h.close();
    listener.close();
  }
}

/**
 * Exports `format` with `options` of the seeded project as the owner of `token` (forced: never
 * reused) and waits for it: SUCCESS, and split into at least `minShards` shards (its job log).
 * The file must be byte for byte what `exporter` streams unsharded (in batches of 50, the
 * harness's record cap, the same export row's data card). Returns the ended export, its
 * file's bytes and the unsharded run (`bytes`, `records`).
 */
export async function assertShardedAsUnsharded(
  h: Harness,
  seed: Seeded,
  options: {
    token: string;
    format: string;
    exportOptions: ExportOptions;
    exporter: Exporter;
    minShards: number;
  },
): Promise<
  {
    done: Record<string, unknown>;
    bytes: Uint8Array;
    unsharded: { bytes: Uint8Array; records: number };
  }
> {
  const res = await h.api("POST", "/api/v2/exports/", {
    token: options.token,
    body: {
      project: seed.projectId,
      format: options.format,
      force: true,
      options: options.exportOptions,
    },
  });
  assertEquals(res.status, 201, await res.clone().text());
  const id = (await res.json()).id;
  const done = await h.waitForExport(id, options.token, 120_000);
  assertEquals(done.status, "SUCCESS", String(done.error));
  const split = (await jobLogs(h.sql, id)).map((l) => l.message)
    .find((m) => m.startsWith("export split into"));
  assert(
    split && Number(/into (\d+) shards/.exec(split)![1]) >= options.minShards,
    `${options.format}: ${split}`,
  );
  const bytes = await h.download(done.file_url as string);
  const row = (await findExport(h.sql, id))!;
  const unsharded = await drainStream(options.exporter, {
    ...imageQueryContext(h.sql, seed, options.exportOptions),
    card: exportCardFacts(row, h.config.publicBaseUrl),
  }, { limit: 50, maxRecords: h.config.exportBatchSize });
  assertEquals(bytes.length, unsharded.bytes.length);
  assertEquals(bytes, unsharded.bytes);
  return { done, bytes, unsharded };
}

/** What a kill test compares: the entry digests, the images checked and the skipped rows. */
export interface KilledArchive {
  /** Entry name → digest, in archive order, of every entry that must be the same in both. */
  digests: Record<string, string>;
  checked: number;
  skipped: unknown[];
}

/**
 * Mid-export, the images left out so far are visible in the Temporal UI: the `exportRecords`
 * (sharded: an `exportShard`'s) heartbeat's readable progress has a `skipped` field, a whole
 * number no larger than `finalSkipped`. (The API's job progress is written every few seconds,
 * so it is checked on the ended export: {@link assertSkippedInJob}.)
 */
async function assertSkippedInHeartbeat(
  h: Harness,
  id: number,
  finalSkipped: number,
): Promise<void> {
  const handle = h.temporal.client.workflow.getHandle((await workflowIdsOf(h.sql, id)).export);
  const deadline = Date.now() + 15_000;
  for (;;) {
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    const payload = pending.find((a) =>
      ["exportRecords", "exportShard"].includes(a.activityType?.name ?? "") &&
      a.heartbeatDetails?.payloads?.[0]?.data
    )?.heartbeatDetails?.payloads?.[0]?.data;
    if (payload) {
      const progress = JSON.parse(new TextDecoder().decode(payload)).progress;
      assertEquals(Object.keys(progress), [
        "records",
        "total",
        "percent",
        "rowsPerSecond",
        "bytes",
        "skipped",
      ]);
      assert(
        Number.isInteger(progress.skipped) && progress.skipped >= 0 &&
          progress.skipped <= finalSkipped,
        `heartbeat skipped: ${progress.skipped} (${finalSkipped} in the end)`,
      );
      return;
    }
    assert(Date.now() < deadline, "no exportRecords or exportShard heartbeat details in 15 s");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The ended export's "Exporting data" stage in the API has `skipped_count`, as the export. */
function assertSkippedInJob(done: Record<string, unknown>): void {
  const stages = (done.job as { progress: { stages: { params: Param[] }[] } }).progress.stages;
  const param = stages.flatMap((stage) => stage.params).find((p) => p.key === "skipped_count");
  assertEquals(param?.value, done.skipped_count, "job progress skipped_count");
}

interface Param {
  key: string;
  value: unknown;
}

/**
 * Exports `format` with `options` once through a worker, then again killing the worker (SIGKILL)
 * once half the uninterrupted export's images were fetched (a proxy to moto, `imageDelayMs` an
 * image, one at a time, 2 rows a batch); the next worker resumes from the checkpoint. Both
 * archives are read by `read` (given the test database and the seeded project); every digest
 * it returns must be equal, `checked` images in the resumed one, the skipped counts exact in
 * both (the export, its job progress, mid-way its heartbeat), and at most the batches after the
 * last delivered checkpoint fetched again. With `shardRecords` (`EXPORT_SHARD_RECORDS`), both
 * exports are sharded and every shard in flight resumes, all but `shardsWithoutImages` of them
 * (default 0) fetching images.
 */
export async function killMidImages(
  format: string,
  options: {
    exportOptions: Record<string, unknown>;
    checked: number;
    read: (zip: Uint8Array, project: { sql: Sql; projectId: number }) => Promise<KilledArchive>;
    imageDelayMs: number;
    shardRecords?: number;
    shardsWithoutImages?: number;
  },
): Promise<void> {
  const listener = countingListener();
  const proxy = slowProxy(options.imageDelayMs);
  const host = new URL(proxy.url).host;
  try {
    await withProcesses({
      batchSize: 2,
      storage: "fs",
      env: {
        SOURCE_IMAGE_HOSTS: host,
        IMAGE_FETCH_CONCURRENCY: "1",
        IMAGE_FETCH_ATTEMPTS: "2",
        ...(options.shardRecords ? { EXPORT_SHARD_RECORDS: String(options.shardRecords) } : {}),
      },
    }, async (h, spawn) => {
      const seed = await seedCrops(h.sql, listener.port, { via: proxy.url });
      const [, token] = await createUser(h.sql, format, true);
      const create = async (): Promise<number> => {
        const res = await h.api("POST", "/api/v2/exports/", {
          token,
          body: { project: seed.projectId, format, force: true, options: options.exportOptions },
        });
        assertEquals(res.status, 201, await res.clone().text());
        return (await res.json()).id;
      };
      let worker = await spawn("reference");
      const before = proxy.requests();
      const reference = await h.waitForExport(await create(), token, 120_000);
      assertEquals(reference.status, "SUCCESS", String(reference.error));
      const clean = proxy.requests() - before;

      const id = await create();
      const started = proxy.requests();
      const deadline = Date.now() + 60_000;
      while (proxy.requests() - started < clean / 2) {
        assert(Date.now() < deadline, "the export did not reach half its images");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await assertSkippedInHeartbeat(h, id, Number(reference.skipped_count));
      await worker.kill();
      worker = await spawn("after-kill");
      const done = await h.waitForExport(id, token, 120_000);
      assertEquals(done.status, "SUCCESS", String(done.error));
      const fetched = proxy.requests() - started;
      const logs = (await jobLogs(h.sql, id)).map((l) => l.message);
      // unsharded: "resumed at …"; sharded: "shard k resumed at …", and split at all
      assert(logs.some((m) => /^(shard \d+ )?resumed at/.test(m)), logs.join("\n"));
      const split = logs.find((m) => m.startsWith("export split into"));
      assertEquals(split !== undefined, options.shardRecords !== undefined, String(split));
      // the images of the batches before the checkpoint are not fetched again: at most the
      // few batches after the last delivered checkpoint are; sharded, those of each shard
      // fetching images, each in flight at the kill (its batch and the one whose checkpoint
      // was not delivered: 2 batches of 2 images)
      const shards = split
        ? Number(/into (\d+) shards/.exec(split)![1]) - (options.shardsWithoutImages ?? 0)
        : 0;
      const bound = split ? clean + shards * 4 : clean + clean / 2;
      assert(fetched < bound, `fetched ${fetched} images, ${clean} uninterrupted`);
      assertEquals(done.record_count, reference.record_count);

      const project = { sql: h.sql, projectId: seed.projectId };
      const [a, b] = [
        await options.read(await h.download(reference.file_url as string), project),
        await options.read(await h.download(done.file_url as string), project),
      ];
      // every entry the same, in the same order
      assertEquals(Object.entries(b.digests), Object.entries(a.digests));
      assertEquals(b.checked, options.checked);
      // counted from the checkpoint's state: exact across the resume, not counted twice
      assertSkippedCount(done, b.skipped.length);
      assertSkippedCount(reference, a.skipped.length);
      assertSkippedInJob(done);
      assertSkippedInJob(reference);
      assertEquals(listener.connections(), 0);
    });
  } finally {
    listener.close();
    await proxy.close();
  }
}
