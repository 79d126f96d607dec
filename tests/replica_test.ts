/**
 * Exports read from a replica (docs/replica.md), against a real streaming replica started here:
 * `pg_basebackup -R -X stream` of the run's PostgreSQL on loopback, started with `pg_ctl` on a
 * free port. Read-your-writes (an export requested right after a write holds it), the bounded
 * wait while replay is paused (STARTED, "waiting for the replica", then FAILURE naming the lag),
 * a retry after resume, a cancel while waiting, counting, shard bounds and shards on the replica
 * (a row the primary holds and the paused replica lacks is not in the file), and `/healthz`
 * reporting the replica, up or down.
 */
import { parse } from "csv-parse/sync";
import { createApp } from "../api/mod.ts";
import { connectWorker, createExportWorker, type ExportWorker } from "../cli/worker.ts";
import type { Config } from "../config/mod.ts";
import { connectDatabase, type Sql } from "../db/client.ts";
import { jobLogs } from "../db/exports.ts";
import { seedDemo, type SeedResult } from "../db/seed_demo.ts";
import { assert, assertEquals } from "./assert.ts";
import { type Harness, startHarness } from "./harness.ts";
import { requireEnv, serviceTest } from "./support.ts";

const PG_BIN = "/usr/lib/postgresql/15/bin";
/** The settings a hot standby must not set lower than its primary (PostgreSQL docs, 27.4.3). */
const PRIMARY_SETTINGS = [
  "max_connections",
  "max_worker_processes",
  "max_wal_senders",
  "max_prepared_transactions",
  "max_locks_per_transaction",
];

/** A streaming replica of the run's PostgreSQL; `stop` removes it. */
interface Replica {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** Runs a command (as postgres when this process is root); throws with its output on failure. */
async function run(args: string[], options: { asPostgres: boolean }): Promise<string> {
  const argv = options.asPostgres ? ["runuser", "-u", "postgres", "--", ...args] : args;
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${args.join(" ")} failed:\n${text}`);
  return text;
}

/** A loopback port nobody listens on now. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * Starts a hot standby of the primary behind `primaryUrl`, replicating the whole cluster (the
 * run's test database with it). The primary must accept replication connections from
 * 127.0.0.1 (`host replication all 127.0.0.1/32 trust` in pg_hba.conf; .ci/run adds it).
 */
async function startReplica(primary: Sql, primaryUrl: string): Promise<Replica> {
  const asPostgres = Deno.uid() === 0; // postgres refuses to run as root
  const dir = await Deno.makeTempDir({ prefix: "ami-exports-replica-" });
  if (asPostgres) await run(["chown", "postgres", dir], { asPostgres: false });
  const data = `${dir}/data`;
  const port = freePort();
  const source = new URL(primaryUrl.replace(/^postgres(ql)?:/, "http:"));
  let started = false;
  const stop = async () => {
    if (started) {
      await run([`${PG_BIN}/pg_ctl`, "-D", data, "-m", "immediate", "stop"], { asPostgres })
        .catch(() => {});
      started = false;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    // a fast checkpoint, not a spread one; retried, since a test of another run may terminate
    // every backend of the server (the WAL sender with them) while it copies
    for (let attempt = 1;; attempt++) {
      try {
        await run([
          `${PG_BIN}/pg_basebackup`,
          ...["-h", source.hostname, "-p", source.port || "5432"],
          ...["-U", source.username || "postgres", "-D", data, "-R", "-X", "stream", "-c", "fast"],
        ], { asPostgres });
        break;
      } catch (error) {
        if (attempt < 3 && /terminat/.test(String(error))) continue;
        throw new Error(
          `could not copy the primary for a replica (is "host replication all 127.0.0.1/32 ` +
            `trust" in its pg_hba.conf, with wal_level=replica and max_wal_senders > 0? .ci/run ` +
            `adds the line): ${error instanceof Error ? error.message : error}`,
        );
      }
    }
    // Debian keeps postgresql.conf and pg_hba.conf outside the data directory: write both
    const settings = await primary<{ name: string; setting: string }[]>`
      select name, setting from pg_settings where name in ${primary(PRIMARY_SETTINGS)}`;
    const conf = [
      "listen_addresses = '127.0.0.1'",
      `port = ${port}`,
      `unix_socket_directories = '${dir}'`,
      "hot_standby = on",
      // reconnect at once when another test terminates the WAL sender on the primary
      "wal_retrieve_retry_interval = '200ms'",
      "shared_buffers = 16MB",
      ...settings.map((s) => `${s.name} = ${s.setting}`),
    ].join("\n") + "\n";
    await Deno.writeTextFile(`${data}/postgresql.conf`, conf);
    await Deno.writeTextFile(
      `${data}/pg_hba.conf`,
      "local all all trust\nhost all all 127.0.0.1/32 trust\n",
    );
    if (asPostgres) {
      await run(["chown", "postgres", `${data}/postgresql.conf`, `${data}/pg_hba.conf`], {
        asPostgres: false,
      });
    }
    await run(
      [
        `${PG_BIN}/pg_ctl`,
        "-D",
        data,
        "-l",
        `${dir}/server.log`,
        "-o",
        `-p ${port} -k ${dir}`,
        "-w",
        "start",
      ],
      { asPostgres },
    );
    started = true;
  } catch (error) {
    await stop();
    throw error;
  }
  const url = new URL(primaryUrl.replace(/^postgres(ql)?:/, "http:"));
  url.hostname = "127.0.0.1";
  url.port = String(port);
  return { url: url.toString().replace(/^http:/, "postgres:"), port, stop };
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Polls `probe` until it returns true; throws after `timeoutMs`. */
async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
}

/** Inserts one exportable occurrence (detection with a box, classification) on the primary. */
async function insertOccurrence(sql: Sql, projectId: number): Promise<number> {
  return await sql.begin(async (tx) => {
    const [ref] = await tx<
      { deployment_id: number; event_id: number; taxon_id: number; algorithm_id: number }[]
    >`
      select o.deployment_id, o.event_id, c.taxon_id, c.algorithm_id
      from occurrences o join detections d on d.occurrence_id = o.id
      join classifications c on c.detection_id = d.id
      where o.project_id = ${projectId} and o.event_id is not null
      order by o.id limit 1`;
    const [img] = await tx<{ id: number }[]>`
      insert into source_images (project_id, deployment_id, event_id, path, public_base_url,
        timestamp, width, height)
      values (${projectId}, ${ref.deployment_id}, ${ref.event_id},
        ${`replica/${crypto.randomUUID()}.jpg`}, 'https://images.example.org/',
        '2023-06-01T02:00:00Z', 4096, 2160)
      returning id`;
    const [occ] = await tx<{ id: number }[]>`
      insert into occurrences (project_id, deployment_id, event_id, determination_id,
        determination_score)
      values (${projectId}, ${ref.deployment_id}, ${ref.event_id}, ${ref.taxon_id}, 0.9)
      returning id`;
    const [det] = await tx<{ id: number }[]>`
      insert into detections (occurrence_id, source_image_id, bbox, timestamp)
      values (${occ.id}, ${img.id}, '{10,10,200,200}', '2023-06-01T02:00:00Z') returning id`;
    await tx`
      insert into classifications (detection_id, taxon_id, algorithm_id, score)
      values (${det.id}, ${ref.taxon_id}, ${ref.algorithm_id}, 0.9)`;
    return occ.id;
  });
}

type ExportJson = {
  id: number;
  status: string;
  error: string | null;
  error_stage: string | null;
  record_count: number;
  file_url: string | null;
};

async function requestExport(h: Harness, seed: SeedResult): Promise<number> {
  const res = await h.api("POST", "/api/v2/exports/", {
    token: seed.token,
    body: { project: seed.project_id, format: "occurrences_simple_csv", force: true },
  });
  const body = await res.json();
  assertEquals(res.status, 201, JSON.stringify(body));
  return body.id;
}

/** The occurrence ids of a finished CSV export's file. */
async function fileIds(h: Harness, done: ExportJson): Promise<number[]> {
  assert(done.file_url, `export ${done.id} has no file: ${JSON.stringify(done)}`);
  const text = new TextDecoder().decode(await h.download(done.file_url));
  const rows = parse(text, { columns: true, bom: true }) as { id: string }[];
  return rows.map((r) => Number(r.id));
}

Deno.test({
  name: "exports read from a streaming replica: read-your-writes, bounded wait, reads there",
  ...serviceTest,
  async fn(t) {
    const primaryUrl = requireEnv("TEST_DATABASE_URL");
    const admin = connectDatabase(primaryUrl, { max: 2 });
    const replica = await startReplica(admin, primaryUrl);
    const onReplica = connectDatabase(replica.url, { max: 2 });
    const readSql = connectDatabase(replica.url, { max: 6 });
    let h: Harness | undefined;
    let worker:
      | { worker: ExportWorker; running: Promise<void>; close(): Promise<void> }
      | undefined;
    const startWorker = async (harness: Harness, settings: Partial<Config> = {}) => {
      const connection = await connectWorker(harness.config.temporalAddress);
      const started = await createExportWorker({
        sql: harness.sql,
        readSql,
        storage: harness.storage,
        config: { ...harness.config, ...settings },
        temporal: harness.temporal.client,
      }, { connection });
      const running = started.run();
      return {
        worker: started,
        running,
        async close() {
          started.shutdown();
          await running;
          await connection.close();
        },
      };
    };
    try {
      await waitFor("the replica to accept connections", async () => {
        try {
          const [row] = await onReplica<{ standby: boolean }[]>`
            select pg_is_in_recovery() as standby`;
          return row.standby;
        } catch {
          return false;
        }
      }, 20_000);
      h = await startHarness({
        worker: false,
        env: { EXPORT_DATABASE_URL: replica.url, EXPORT_REPLICA_MAX_LAG_SECONDS: "4" },
      });
      const harness = h;
      worker = await startWorker(harness);
      const seed = await seedDemo(harness.sql, { occurrences: 200, seed: 22 });
      const get = async (id: number): Promise<ExportJson> =>
        await (await harness.api("GET", `/api/v2/exports/${id}/`, { token: seed.token })).json();

      await t.step("an export requested right after a write holds it", async () => {
        const written = await insertOccurrence(harness.sql, seed.project_id);
        const id = await requestExport(harness, seed);
        const [row] = await harness.sql<{ lsn: string | null }[]>`
          select request_lsn::text as lsn from data_exports where id = ${id}`;
        assert(row.lsn && /^[0-9A-F]+\/[0-9A-F]+$/.test(row.lsn), `request_lsn ${row.lsn}`);
        const done = await harness.waitForExport(id, seed.token) as ExportJson;
        assertEquals(done.status, "SUCCESS", JSON.stringify(done));
        const ids = await fileIds(harness, done);
        assert(
          ids.includes(written),
          `occurrence ${written} written before the request is missing`,
        );
        assertEquals(done.record_count, ids.length);
      });

      let failed = 0;
      let pausedWrite = 0;
      await t.step("replay paused: the export waits, then fails naming the lag", async () => {
        await onReplica`select pg_wal_replay_pause()`;
        await waitFor("replay to pause", async () => {
          const [row] = await onReplica<{ state: string }[]>`
            select pg_get_wal_replay_pause_state() as state`;
          return row.state === "paused";
        }, 10_000);
        pausedWrite = await insertOccurrence(harness.sql, seed.project_id);
        const started = Date.now();
        failed = await requestExport(harness, seed);
        await waitFor("the export to wait for the replica", async () => {
          const logs = await jobLogs(harness.sql, failed);
          return logs.some((l) => l.message.startsWith("waiting for the replica at 127.0.0.1:"));
        }, 10_000);
        assertEquals((await get(failed)).status, "STARTED");

        // the replica is reported, behind and paused; never a reason for 503 on its own
        const app = createApp({
          sql: harness.sql,
          readSql,
          storage: harness.storage,
          config: harness.config,
          temporal: harness.temporal.client,
        });
        const health = await (await app.request("/healthz")).json();
        assertEquals(health.replica.status, "ok", JSON.stringify(health));
        assertEquals(health.replica.database.startsWith(`127.0.0.1:${replica.port}/`), true);
        assertEquals(health.replica.standby, true);
        assertEquals(health.replica.replay_paused, true);
        assert(health.replica.lag_bytes > 0, JSON.stringify(health.replica));

        const done = await harness.waitForExport(failed, seed.token, 30_000) as ExportJson;
        assertEquals(done.status, "FAILURE", JSON.stringify(done));
        assertEquals(done.error_stage, "await_replica");
        const pattern = new RegExp(
          `^the replica at 127\\.0\\.0\\.1:${replica.port}/\\S+ has not replayed the export's ` +
            `request position [0-9A-F]+/[0-9A-F]+ after [45] s \\(\\d+ bytes behind, ` +
            `replayed up to [0-9A-F]+/[0-9A-F]+, .*replay paused\\)$`,
        );
        assert(pattern.test(done.error ?? ""), `error: ${done.error}`);
        const seconds = (Date.now() - started) / 1000;
        assert(seconds >= 4 && seconds < 20, `failed after ${seconds} s`);
        const logs = await jobLogs(harness.sql, failed);
        assert(
          logs.some((l) => l.message.startsWith("export failed in await_replica: the replica at")),
          JSON.stringify(logs),
        );
      });

      await t.step("after resume a retry succeeds with the write", async () => {
        await onReplica`select pg_wal_replay_resume()`;
        const res = await harness.api("POST", `/api/v2/exports/${failed}/retry/`, {
          token: seed.token,
        });
        assertEquals(res.status < 300, true, await res.text());
        const done = await harness.waitForExport(failed, seed.token) as ExportJson;
        assertEquals(done.status, "SUCCESS", JSON.stringify(done));
        assert((await fileIds(harness, done)).includes(pausedWrite));
      });

      await t.step("a cancel reaches an export waiting for the replica", async () => {
        await onReplica`select pg_wal_replay_pause()`;
        await waitFor("replay to pause", async () => {
          const [row] = await onReplica<{ state: string }[]>`
            select pg_get_wal_replay_pause_state() as state`;
          return row.state === "paused";
        }, 10_000);
        await insertOccurrence(harness.sql, seed.project_id);
        const id = await requestExport(harness, seed);
        await waitFor("the export to wait for the replica", async () => {
          const logs = await jobLogs(harness.sql, id);
          return logs.some((l) => l.message.startsWith("waiting for the replica at"));
        }, 10_000);
        const res = await harness.api("POST", `/api/v2/exports/${id}/cancel/`, {
          token: seed.token,
        });
        assert(res.status < 300, await res.text());
        const done = await harness.waitForExport(id, seed.token, 3000) as ExportJson;
        assertEquals(done.status, "REVOKED", JSON.stringify(done));
        await onReplica`select pg_wal_replay_resume()`;
      });

      await t.step(
        "an identical request during the wait neither moves its target nor shares it",
        async () => {
          await onReplica`select pg_wal_replay_pause()`;
          await waitFor("replay to pause", async () => {
            const [row] = await onReplica<{ state: string }[]>`
              select pg_get_wal_replay_pause_state() as state`;
            return row.state === "paused";
          }, 10_000);
          await insertOccurrence(harness.sql, seed.project_id);
          const first = await requestExport(harness, seed);
          await waitFor("the export to wait for the replica", async () => {
            const logs = await jobLogs(harness.sql, first);
            return logs.some((l) => l.message.startsWith("waiting for the replica at"));
          }, 10_000);
          const positions = async () =>
            (await harness.sql<{ request: string; read: string | null }[]>`
              select request_lsn::text as request, read_lsn::text as read from data_exports
              where id = ${first}`)[0];
          const waiting = await positions();
          // its reads are fixed to its target before it waits
          assertEquals(waiting.read, waiting.request);
          // a write, then the identical request: sharing the waiting export would move its
          // target (each reuse did: an export reused again and again failed ReplicaLag naming
          // a lag the replica did not have); it gets its own export, which holds the write
          const later = await insertOccurrence(harness.sql, seed.project_id);
          const res = await harness.api("POST", "/api/v2/exports/", {
            token: seed.token,
            body: { project: seed.project_id, format: "occurrences_simple_csv" },
          });
          const body = await res.json();
          await onReplica`select pg_wal_replay_resume()`;
          assertEquals([res.status, body.id !== first], [201, true], JSON.stringify(body));
          assertEquals(await positions(), waiting);
          const done = await harness.waitForExport(first, seed.token) as ExportJson;
          assertEquals(done.status, "SUCCESS", JSON.stringify(done));
          const logs = (await jobLogs(harness.sql, first)).map((l) => l.message);
          assert(
            logs.some((m) =>
              m.startsWith(`the replica replayed the export's request position ${waiting.request}`)
            ),
            logs.join("; "),
          );
          const second = await harness.waitForExport(body.id, seed.token) as ExportJson;
          assertEquals(second.status, "SUCCESS", JSON.stringify(second));
          assert((await fileIds(harness, second)).includes(later), `${later} is missing`);
        },
      );

      await t.step("counting and streaming run on the replica", async () => {
        // No worker: the export is requested, then its request position is moved back to what
        // the paused replica has replayed, as if requested before the write; it must not wait,
        // and its count, shard bounds and shards must be the replica's (without the primary's
        // newest row). Shards of 60 records: the ~200 records are split into 4.
        await worker!.close();
        worker = undefined;
        await onReplica`select pg_wal_replay_pause()`;
        await waitFor("replay to pause", async () => {
          const [row] = await onReplica<{ state: string }[]>`
            select pg_get_wal_replay_pause_state() as state`;
          return row.state === "paused";
        }, 10_000);
        const [{ replayed }] = await onReplica<{ replayed: string }[]>`
          select pg_last_wal_replay_lsn()::text as replayed`;
        const unseen = await insertOccurrence(harness.sql, seed.project_id);
        const id = await requestExport(harness, seed);
        await harness
          .sql`update data_exports set request_lsn = ${replayed}::pg_lsn where id = ${id}`;
        worker = await startWorker(harness, { exportShardRecords: 60 });
        const done = await harness.waitForExport(id, seed.token) as ExportJson;
        assertEquals(done.status, "SUCCESS", JSON.stringify(done));
        const ids = await fileIds(harness, done);
        assert(!ids.includes(unseen), `occurrence ${unseen} is not on the paused replica`);
        assert(ids.includes(pausedWrite));
        assertEquals(done.record_count, ids.length);
        const [onPrimary] = await harness.sql<{ n: number }[]>`
          select count(*)::int as n from occurrences where id = ${unseen}`;
        assertEquals(onPrimary.n, 1);
        const logs = await jobLogs(harness.sql, id);
        assert(
          logs.some((l) => /^export split into \d+ shards/.test(l.message)),
          JSON.stringify(logs),
        );
        await onReplica`select pg_wal_replay_resume()`;
      });

      await t.step("a replica that is down is reported by /healthz, never a 503", async () => {
        const app = createApp({
          sql: harness.sql,
          readSql,
          storage: harness.storage,
          config: harness.config,
          temporal: harness.temporal.client,
        });
        await replica.stop();
        const res = await app.request("/healthz");
        const health = await res.json();
        assert(health.replica.status !== "ok", JSON.stringify(health));
        assertEquals(health.replica.standby, null);
        const ok = Object.values(health.checks).every((v) => v === "ok");
        assertEquals(res.status, ok ? 200 : 503, JSON.stringify(health));
        assertEquals(ok, true, JSON.stringify(health.checks));
      });
    } finally {
      await worker?.close().catch(() => {});
      await h?.close();
      await readSql.end({ timeout: 2 }).catch(() => {});
      await onReplica.end({ timeout: 2 }).catch(() => {});
      await admin.end({ timeout: 2 }).catch(() => {});
      await replica.stop();
    }
  },
});
