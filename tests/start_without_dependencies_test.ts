/**
 * The API and the worker start and keep running while PostgreSQL, Temporal and S3 are down,
 * say what is missing (`/healthz` 503 naming it, 503 on routes, retry log lines), and work as
 * soon as the dependencies come up: no restart, no lost request.
 */
import { freePorts, startMotoServer, startTemporalDevServer } from "../cli/dev_services.ts";
import { seedDemo } from "../db/seed_demo.ts";
import { startApiProcess } from "./api_process.ts";
import { assert, assertEquals } from "./assert.ts";
import { expectedOccurrenceIds } from "./harness.ts";
import { requireEnv, serviceTest, testDatabase } from "./support.ts";
import { startWorkerProcess } from "./worker_process.ts";

const LOG_DIR = ".data/test";

function baseEnv(overrides: Record<string, string>): Record<string, string> {
  const suffix = crypto.randomUUID().slice(0, 8);
  return {
    TEMPORAL_TASK_QUEUE: `nodeps-${suffix}`,
    STORAGE_BACKEND: "s3",
    S3_BUCKET: `nodeps-${suffix}`,
    AWS_ACCESS_KEY_ID: "testing",
    AWS_SECRET_ACCESS_KEY: "testing",
    HOUSEKEEPING_INTERVAL_MINUTES: "0",
    ...overrides,
  };
}

/** A process started with `env` that must still be running after `ms`; returns its output. */
async function aliveFor(script: string, env: Record<string, string>, ms: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script],
    env: { ...env, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let ended: Deno.CommandStatus | undefined;
  const status = child.status.then((s) => ended = s);
  const output = Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  await new Promise((r) => setTimeout(r, ms));
  const aliveAfter = ended === undefined;
  if (aliveAfter) child.kill("SIGTERM");
  await status;
  return { aliveAfter, output: (await output).join("\n") };
}

Deno.test({
  name: "API and worker started with PostgreSQL, Temporal and S3 all down: alive, 503 naming each",
  ...serviceTest,
  async fn() {
    const [closed, port] = freePorts(2);
    const env = baseEnv({
      PORT: String(port),
      DATABASE_URL: `postgres://postgres@127.0.0.1:${closed}/none`,
      TEMPORAL_ADDRESS: `127.0.0.1:${closed}`,
      S3_ENDPOINT: `http://127.0.0.1:${closed}`,
    });
    const worker = aliveFor("cli/worker.ts", env, 8000);
    const api = await startApiProcess(env, `${LOG_DIR}/nodeps-api.log`);
    try {
      const health = await fetch(`${api.base}/healthz`);
      const body = await health.json();
      assertEquals(health.status, 503);
      assertEquals(body.status, "unavailable");
      for (const check of ["database", "temporal", "storage", "workers"]) {
        assert(body.checks[check] !== "ok", `${check} reported ok: ${JSON.stringify(body)}`);
      }
      assert(/Temporal is not reachable/.test(body.checks.temporal), body.checks.temporal);
      assert(/storage unreachable: S3 bucket/.test(body.checks.storage), body.checks.storage);
      const create = await fetch(`${api.base}/api/v2/exports/`, {
        method: "POST",
        headers: { Authorization: "Token x", "Content-Type": "application/json" },
        body: JSON.stringify({ project: 1, format: "occurrences_simple_csv" }),
      });
      const error = await create.json();
      assertEquals(create.status, 503, JSON.stringify(error));
      assert(/database is not reachable/.test(error.error), error.error);
    } finally {
      await api.stop(30_000);
    }
    // SIGTERM stopped it, with Temporal and the database still unreachable: no SIGKILL needed
    const ended = await api.exited;
    assertEquals([ended.signal, ended.code], [null, 0], "the API did not stop on SIGTERM");
    const { aliveAfter, output } = await worker;
    assert(aliveAfter, `the worker exited:\n${output}`);
    for (const dependency of ["Temporal", "PostgreSQL", "storage"]) {
      assert(output.includes(`"${dependency} is not reachable, retrying"`), output);
    }
  },
});

Deno.test({
  name: "Temporal and S3 come up after the API and worker: healthz turns 200, exports run",
  ...serviceTest,
  async fn() {
    const [temporalPort, motoPort, port] = freePorts(3);
    const env = baseEnv({
      PORT: String(port),
      DATABASE_URL: requireEnv("TEST_DATABASE_URL"),
      TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
      S3_ENDPOINT: `http://127.0.0.1:${motoPort}`,
    });
    const sql = testDatabase(2);
    const api = await startApiProcess(env, `${LOG_DIR}/nodeps-api-2.log`);
    const workerStarting = startWorkerProcess(env, { name: "nodeps", readyTimeoutMs: 120_000 });
    let temporal, moto;
    try {
      const seed = await seedDemo(sql, { occurrences: 200, seed: 77 });
      const early = await fetch(`${api.base}/api/v2/exports/`, {
        method: "POST",
        headers: { Authorization: `Token ${seed.token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ project: seed.project_id, format: "occurrences_simple_csv" }),
      });
      const earlyBody = await early.json();
      assertEquals(early.status, 503, JSON.stringify(earlyBody));
      assertEquals(
        (await sql`select 1 from data_exports where project_id = ${seed.project_id}`).length,
        0,
        "a rejected request left an export row",
      );

      await new Promise((r) => setTimeout(r, 3000));
      [temporal, moto] = await Promise.all([
        startTemporalDevServer({ port: temporalPort, logFile: `${LOG_DIR}/nodeps-temporal.log` }),
        startMotoServer({ port: motoPort, logFile: `${LOG_DIR}/nodeps-moto.log` }),
      ]);
      const worker = await workerStarting;
      try {
        // backoff tops out at 30 s: healthz must turn 200 within a minute
        const deadline = Date.now() + 75_000;
        let last: unknown;
        let ok = false;
        while (!ok && Date.now() < deadline) {
          const res = await fetch(`${api.base}/healthz`);
          last = await res.json();
          ok = res.status === 200;
          if (!ok) await new Promise((r) => setTimeout(r, 1000));
        }
        assert(ok, `healthz never turned 200: ${JSON.stringify(last)}`);

        const res = await fetch(`${api.base}/api/v2/exports/`, {
          method: "POST",
          headers: { Authorization: `Token ${seed.token}`, "Content-Type": "application/json" },
          body: JSON.stringify({ project: seed.project_id, format: "occurrences_simple_csv" }),
        });
        const created = await res.json();
        assertEquals(res.status, 201, JSON.stringify(created));
        let done: Record<string, unknown> = {};
        for (let i = 0; i < 120 && !["SUCCESS", "FAILURE"].includes(String(done.status)); i++) {
          await new Promise((r) => setTimeout(r, 500));
          done = await (await fetch(`${api.base}/api/v2/exports/${created.id}/`, {
            headers: { Authorization: `Token ${seed.token}` },
          })).json();
        }
        assertEquals(done.status, "SUCCESS", JSON.stringify(done));
        const expected = await expectedOccurrenceIds(sql, seed.project_id);
        assertEquals(done.record_count, expected.length);
        assert(worker.running, "the worker died");
      } finally {
        await worker.stop();
      }
    } finally {
      await api.stop();
      await Promise.all([temporal?.stop(), moto?.stop()]);
      await sql.end();
    }
  },
});

Deno.test({
  name: "storage that stays down: FAILURE naming it in bounded time; retry after it is back",
  ...serviceTest,
  async fn() {
    const [motoPort, port] = freePorts(2);
    const env = baseEnv({
      PORT: String(port),
      DATABASE_URL: requireEnv("TEST_DATABASE_URL"),
      TEMPORAL_ADDRESS: requireEnv("TEMPORAL_ADDRESS"),
      S3_ENDPOINT: `http://127.0.0.1:${motoPort}`,
      // 3 attempts (1 s + 2 s of backoff) instead of 10 (~3 min): same path, shorter wait
      EXPORT_MAX_ATTEMPTS: "3",
    });
    const sql = testDatabase(2);
    const api = await startApiProcess(env, `${LOG_DIR}/nodeps-api-3.log`);
    const worker = await startWorkerProcess(env, { name: "nodeps-storage" });
    let moto;
    try {
      const seed = await seedDemo(sql, { occurrences: 150, seed: 78 });
      const headers = { Authorization: `Token ${seed.token}`, "Content-Type": "application/json" };
      const res = await fetch(`${api.base}/api/v2/exports/`, {
        method: "POST",
        headers,
        body: JSON.stringify({ project: seed.project_id, format: "occurrences_simple_csv" }),
      });
      const created = await res.json();
      assertEquals(res.status, 201, JSON.stringify(created));
      const poll = async (until: string[], timeoutMs: number) => {
        const deadline = Date.now() + timeoutMs;
        let body: Record<string, unknown> = {};
        while (Date.now() < deadline) {
          body = await (await fetch(`${api.base}/api/v2/exports/${created.id}/`, { headers }))
            .json();
          if (until.includes(String(body.status))) return body;
          await new Promise((r) => setTimeout(r, 500));
        }
        throw new Error(`export did not reach ${until}: ${JSON.stringify(body)}`);
      };
      const started = Date.now();
      const failed = await poll(["FAILURE", "SUCCESS"], 120_000);
      assertEquals(failed.status, "FAILURE");
      assert(
        /storage unreachable: S3 bucket nodeps-\w+ at http:\/\/127\.0\.0\.1:\d+/.test(
          String(failed.error),
        ),
        String(failed.error),
      );
      console.error(`[nodeps] FAILURE after ${(Date.now() - started) / 1000} s: ${failed.error}`);

      moto = await startMotoServer({ port: motoPort, logFile: `${LOG_DIR}/nodeps-moto-3.log` });
      const retry = await fetch(`${api.base}/api/v2/exports/${created.id}/retry/`, {
        method: "POST",
        headers,
      });
      await retry.body?.cancel();
      assertEquals(retry.status, 202);
      const done = await poll(["SUCCESS", "FAILURE"], 120_000);
      assertEquals(done.status, "SUCCESS", JSON.stringify(done));
      assertEquals(done.record_count, (await expectedOccurrenceIds(sql, seed.project_id)).length);
      assert(worker.running, "the worker died");
    } finally {
      await worker.stop();
      await api.stop();
      await moto?.stop();
      await sql.end();
    }
  },
});
