/**
 * One user cannot starve the fleet (docs/fair-scheduling.md): running exports are capped per user
 * and per project, the others wait PENDING in a fair order (round-robin across users, FIFO within
 * a user) and are never failed for waiting. Against the real services: the API app and a worker
 * with `EXPORT_MAX_RUNNING_PER_USER=2` and `EXPORT_MAX_RUNNING_PER_PROJECT=3`; user A requests
 * 20 exports, then B one and C two in the same project.
 */
import { createDatabase, dropDatabase, withDatabase } from "../cli/dev_services.ts";
import { connectDatabase, type Sql } from "../db/client.ts";
import { migrate } from "../db/migrate.ts";
import { jobLogs } from "../db/exports.ts";
import { seedDemo } from "../db/seed_demo.ts";
import { hashToken } from "../domain/users.ts";
import { assert, assertEquals } from "./assert.ts";
import { type Harness, startHarness, workflowIdsOf } from "./harness.ts";
import { holdLockUntilBlocked } from "./lock_holder.ts";
import { requireEnv, serviceTest } from "./support.ts";
import { startWorkerProcess } from "./worker_process.ts";

const PER_USER = 2;
const PER_PROJECT = 3;

interface ExportJson {
  id: number;
  status: string;
  queue_position: number | null;
  started_at: string | null;
  job: { progress: { stages: { key: string; params: { key: string; value: unknown }[] }[] } };
}

interface QueueJson {
  count: number;
  results: {
    position: number;
    export_id: number;
    user: { id: number } | null;
    project: { id: number };
    waited_seconds: number;
  }[];
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** A user with a token; a member of `projectId` with `role` unless null. */
async function addUser(
  sql: Sql,
  options: { email: string; projectId?: number; superuser?: boolean },
): Promise<{ id: number; token: string }> {
  const [user] = await sql<{ id: number }[]>`
    insert into users (email, name, is_superuser)
    values (${options.email}, ${options.email}, ${options.superuser ?? false}) returning id`;
  const token = crypto.randomUUID();
  await sql`insert into api_tokens (user_id, token_hash, name)
            values (${user.id}, ${await hashToken(token)}, 'test')`;
  if (options.projectId !== undefined) {
    await sql`insert into project_memberships (project_id, user_id, role)
              values (${options.projectId}, ${user.id}, 'researcher')`;
  }
  return { id: Number(user.id), token };
}

async function requestExport(h: Harness, token: string, project: number): Promise<number> {
  const res = await h.api("POST", "/api/v2/exports/", {
    token,
    body: { project, format: "occurrences_simple_csv", force: true },
  });
  const body = await res.json();
  assertEquals(res.status, 201, JSON.stringify(body));
  assertEquals(body.status, "PENDING");
  return body.id;
}

async function readExport(h: Harness, id: number, token: string): Promise<ExportJson> {
  const res = await h.api("GET", `/api/v2/exports/${id}/`, { token });
  assertEquals(res.status, 200);
  return await res.json();
}

async function readQueue(h: Harness, token: string): Promise<QueueJson> {
  const res = await h.api("GET", "/api/v2/exports/queue/", { token });
  const body = await res.json();
  assertEquals(res.status, 200, JSON.stringify(body));
  return body;
}

/**
 * A database of the test's own, migrated: the operator's queue lists every waiting export of a
 * database, and other files of the test run's lane leave some that never run (harnesses without
 * a worker), which changed its positions and counts. `drop` removes it.
 */
async function ownDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = requireEnv("TEST_ADMIN_DATABASE_URL");
  const name = `ami_exports_fair_${Date.now()}_${crypto.randomUUID().slice(0, 6)}`;
  await createDatabase(admin, name);
  const url = withDatabase(admin, name);
  const migrating = connectDatabase(url, { max: 2 });
  try {
    await migrate(migrating);
  } finally {
    await migrating.end();
  }
  return { url, drop: () => dropDatabase(admin, name) };
}

Deno.test({
  name: "capped per user and project, fair across users, never failed for waiting",
  ...serviceTest,
  async fn() {
    const database = await ownDatabase();
    const h = await startHarness({
      storage: "s3",
      worker: false,
      databaseUrl: database.url,
      env: {
        EXPORT_MAX_RUNNING_PER_USER: String(PER_USER),
        EXPORT_MAX_RUNNING_PER_PROJECT: String(PER_PROJECT),
      },
    });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 40, seed: 2201 });
      const project = seed.project_id;
      const a = { id: seed.user_id, token: seed.token };
      const b = await addUser(h.sql, { email: "fair-b@example.org", projectId: project });
      const c = await addUser(h.sql, { email: "fair-c@example.org", projectId: project });
      const operator = await addUser(h.sql, { email: "fair-op@example.org", superuser: true });

      // the queue is for operators only
      assertEquals((await h.api("GET", "/api/v2/exports/queue/", { token: a.token })).status, 403);

      // A asks for 20 at once, then B for one, then C for two; no worker yet: all wait
      const ofA: number[] = [];
      for (let i = 0; i < 20; i++) ofA.push(await requestExport(h, a.token, project));
      const ofB = await requestExport(h, b.token, project);
      const ofC = [await requestExport(h, c.token, project)];
      // C's second is a rerun of the first (a new export, `force`): its answer shows its place
      // in the queue as a GET does (it said null): A1 B1 C1 A2 C2, the 5th
      const rerun = await h.api("POST", `/api/v2/exports/${ofC[0]}/rerun/`, {
        token: c.token,
        body: { force: true },
      });
      const rerunBody = await rerun.json() as ExportJson;
      assertEquals(rerun.status, 201, JSON.stringify(rerunBody));
      assertEquals([rerunBody.status, rerunBody.queue_position], ["PENDING", 5]);
      ofC.push(rerunBody.id);
      const all = [...ofA, ofB, ...ofC];
      const owner = new Map<number, number>(all.map((id) => [id, a.id]));
      owner.set(ofB, b.id);
      for (const id of ofC) owner.set(id, c.id);

      // positions: 1..n, round-robin across users (A1, B1, C1, A2, C2, A3, A4, …)
      const queue = await readQueue(h, operator.token);
      assertEquals(queue.count, all.length);
      assertEquals(queue.results.map((q) => q.position), all.map((_, i) => i + 1));
      assertEquals(
        queue.results.slice(0, 6).map((q) => q.export_id),
        [ofA[0], ofB, ofC[0], ofA[1], ofC[1], ofA[2]],
      );
      assertEquals(queue.results.slice(6).map((q) => q.export_id), ofA.slice(3));
      for (const q of queue.results) {
        assertEquals(q.user?.id, owner.get(q.export_id));
        assertEquals(q.project.id, project);
      }
      // each export's queue_position agrees with the queue, in its stage too
      const listed = await h.api("GET", `/api/v2/exports/?project_id=${project}&limit=100`, {
        token: a.token,
      });
      const byId = new Map(
        ((await listed.json()).results as ExportJson[]).map((e) => [e.id, e.queue_position]),
      );
      for (const q of queue.results) assertEquals(byId.get(q.export_id), q.position);
      const waitingB = await readExport(h, ofB, b.token);
      assertEquals(waitingB.queue_position, 2);
      const param = waitingB.job.progress.stages.flatMap((s) => s.params)
        .find((p) => p.key === "queue_position");
      assertEquals(param?.value, "waiting for a slot: position 2");

      // run, sampling what runs: never more than the caps
      await h.startWorker();
      let maxUser = 0;
      let maxProject = 0;
      let samples = 0;
      let deleted: number | undefined;
      let deleteSeconds = 0;
      const deadline = Date.now() + 75_000;
      while (Date.now() < deadline) {
        const running = await h.sql<{ user_id: number; n: number }[]>`
          select user_id, count(*)::int as n from data_exports
          where project_id = ${project} and status = 'STARTED' group by user_id`;
        samples++;
        for (const r of running) maxUser = Math.max(maxUser, r.n);
        maxProject = Math.max(maxProject, running.reduce((n, r) => n + r.n, 0));
        // cancel A's last export while it still waits: it leaves the queue at once
        if (deleted === undefined) {
          const last = await readExport(h, ofA[19], a.token);
          assertEquals(last.status, "PENDING");
          assert(last.queue_position !== null);
          const started = Date.now();
          const res = await h.api("DELETE", `/api/v2/exports/${ofA[19]}/`, { token: a.token });
          deleteSeconds = (Date.now() - started) / 1000;
          assertEquals(res.status, 204);
          deleted = ofA[19];
          const after = await readQueue(h, operator.token);
          assert(!after.results.some((q) => q.export_id === deleted), "deleted yet queued");
          assertEquals(after.results.map((q) => q.position), after.results.map((_, i) => i + 1));
        }
        const [{ open }] = await h.sql<{ open: number }[]>`
          select count(*)::int as open from data_exports
          where project_id = ${project} and status in ('PENDING', 'STARTED')`;
        if (open === 0) break;
        await sleep(50);
      }
      console.log(
        `[fair] ${samples} samples: at most ${maxUser} running per user, ${maxProject} in the ` +
          `project; a waiting export deleted in ${deleteSeconds.toFixed(1)} s`,
      );
      assert(maxUser <= PER_USER, `a user ran ${maxUser} at once`);
      assert(maxProject <= PER_PROJECT, `the project ran ${maxProject} at once`);
      assertEquals(maxProject, PER_PROJECT, "the caps were never reached: nothing was tested");
      assert(deleteSeconds < 10, `deleting a waiting export took ${deleteSeconds} s`);
      assertEquals(
        (await h.api("GET", `/api/v2/exports/${deleted}/`, { token: a.token })).status,
        404,
      );

      // every other export succeeded; B started before A's 6th
      const started = new Map<number, number>();
      const tokenOf = (id: number) => id === ofB ? b.token : ofC.includes(id) ? c.token : a.token;
      for (const id of all.filter((id) => id !== deleted)) {
        const e = await readExport(h, id, tokenOf(id));
        assertEquals(e.status, "SUCCESS", `export ${id}`);
        assertEquals(e.queue_position, null);
        started.set(id, Date.parse(e.started_at!));
      }
      assert(
        started.get(ofB)! < started.get(ofA[5])!,
        `B started ${started.get(ofB)}, A's 6th ${started.get(ofA[5])}`,
      );
      // FIFO within A: each of A's exports started no later than the next
      for (let i = 1; i < 19; i++) {
        assert(started.get(ofA[i - 1])! <= started.get(ofA[i])!, `A's ${i}th started late`);
      }
      assertEquals((await readQueue(h, operator.token)).count, 0);
    } finally {
      await h.close();
      await database.drop();
    }
  },
});

/**
 * Holds the job row of export `exportId` locked until the admission transaction of a worker
 * (`ami-exports transition STARTED`, db/export_queue.ts) waits on it: it has moved the export to STARTED
 * but not its job, nor committed. Then kills the worker with SIGKILL and lets the lock go.
 */
async function killMidAdmission(
  h: Harness,
  exportId: number,
  kill: () => Promise<void>,
): Promise<void> {
  // held from before the admission until it waits here, never released and taken again: an
  // admission could pass between (nothing but an admission writes a waiting export's job); and
  // an admission blocked by this lock, not any transition that waits on another transaction
  // (the third export's on the second's, say): killing then would kill an admission that has
  // committed, or none
  await holdLockUntilBlocked(h.sql, {
    lock: (locker) => locker`select 1 from jobs where data_export_id = ${exportId} for update`,
    label: `the job row of export ${exportId}`,
    waiter: { applicationName: "ami-exports transition STARTED" },
    action: kill,
    timeoutMs: 30_000,
  });
}

Deno.test({
  name: "a worker killed while exports wait and mid-admission loses none and admits none twice",
  ...serviceTest,
  async fn() {
    const h = await startHarness({
      storage: "s3",
      worker: false,
      env: { EXPORT_MAX_RUNNING_PER_USER: "1", EXPORT_MAX_RUNNING_PER_PROJECT: "0" },
    });
    let worker = await startWorkerProcess(h.env, { name: "fair-0" });
    // stopped before the harness closes its pool, whatever failed: a query of a sampler still
    // running after it would fail the file with CONNECTION_ENDED and hide the real failure
    let sampling = false;
    let sampler: Promise<void> = Promise.resolve();
    try {
      const seed = await seedDemo(h.sql, { occurrences: 30, seed: 2202 });
      const ids: number[] = [];
      for (let i = 0; i < 3; i++) ids.push(await requestExport(h, seed.token, seed.project_id));
      let maxRunning = 0;
      sampling = true;
      sampler = (async () => {
        while (sampling) {
          const [{ n }] = await h.sql<{ n: number }[]>`
            select count(*)::int as n from data_exports
            where project_id = ${seed.project_id} and status = 'STARTED'`;
          maxRunning = Math.max(maxRunning, n);
          await sleep(50);
        }
      })();
      // the second is admitted when the first ends: kill the worker inside that admission,
      // while the third waits
      await killMidAdmission(h, ids[1], () => worker.kill());
      const [between] = await h.sql<{ status: string; job_status: string }[]>`
        select e.status, j.status as job_status from data_exports e
        join jobs j on j.data_export_id = e.id where e.id = ${ids[1]}`;
      assertEquals(between, { status: "PENDING", job_status: "PENDING" }, "half an admission");
      assertEquals((await readExport(h, ids[2], seed.token)).status, "PENDING");
      worker = await startWorkerProcess(h.env, { name: "fair-1" });
      for (const id of ids) {
        assertEquals((await h.waitForExport(id, seed.token, 60_000)).status, "SUCCESS");
      }
      sampling = false;
      await sampler;
      assertEquals(maxRunning, 1, "two exports of one user ran at once");
      for (const id of ids.slice(1)) {
        const admitted = (await jobLogs(h.sql, id)).filter((l) => l.message.startsWith("admitted"));
        assertEquals(admitted.length, 1, `export ${id} admitted ${admitted.length} times`);
      }
    } finally {
      sampling = false;
      await sampler.catch(() => {});
      await worker.stop();
      await h.close();
    }
  },
});

Deno.test({
  name:
    "a waiting export whose run is gone holds no slot: an admission its run never takes is withdrawn",
  ...serviceTest,
  async fn() {
    const h = await startHarness({
      storage: "fs",
      env: { EXPORT_MAX_RUNNING_PER_USER: "1", EXPORT_MAX_RUNNING_PER_PROJECT: "0" },
    });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 30, seed: 2203 });
      // the user's one slot, held by a row without a workflow until the test frees it
      const [holder] = await h.sql<{ id: number }[]>`
        insert into data_exports (user_id, project_id, format, status)
        values (${seed.user_id}, ${seed.project_id}, 'captures_csv', 'STARTED') returning id`;
      const gone = await requestExport(h, seed.token, seed.project_id);
      const next = await requestExport(h, seed.token, seed.project_id);
      // both wait, their workflows polling (awaitAdmission has heartbeated its position)
      const deadline = Date.now() + 60_000;
      for (const id of [gone, next]) {
        const handle = h.temporal.client.workflow.getHandle(
          (await workflowIdsOf(h.sql, id)).export,
        );
        for (;;) {
          const { raw } = await handle.describe();
          const polling = (raw.pendingActivities ?? []).some((a) =>
            a.activityType?.name === "awaitAdmission" && a.lastHeartbeatTime
          );
          if (polling) break;
          assert(Date.now() < deadline, `export ${id} never polled for a slot`);
          await sleep(200);
        }
      }
      await sleep(1500); // a poll after the heartbeat: both seen
      // an operator terminates the older one's workflow while it waits; then the slot frees:
      // the older one is admitted first (by its own poll still in flight, or the younger one's:
      // its poll was recent), and no run of it will take the slot
      await h.temporal.client.workflow.getHandle((await workflowIdsOf(h.sql, gone)).export)
        .terminate("stuck, says an operator");
      await h.sql`update data_exports set status = 'FAILURE' where id = ${holder.id}`;
      // the admission its run never takes is withdrawn after ADMISSION_LIVE_SECONDS (30 s): the
      // younger one runs, the older one reads PENDING again and is not admitted again
      const done = await h.waitForExport(next, seed.token, 90_000);
      assertEquals(done.status, "SUCCESS", String(done.error));
      await sleep(3000);
      const [row] = await h.sql<{ status: string; started_at: Date | null }[]>`
        select status, started_at from data_exports where id = ${gone}`;
      assertEquals([row.status, row.started_at], ["PENDING", null]);
      assertEquals((await readExport(h, gone, seed.token)).status, "PENDING");
      const logs = (await jobLogs(h.sql, gone)).map((l) => l.message);
      // admitted once at most, and then withdrawn
      const admitted = logs.filter((m) => m.startsWith("admitted")).length;
      const withdrawn = logs.filter((m) => m.startsWith("admission withdrawn")).length;
      assert(admitted <= 1 && withdrawn === admitted, logs.join("; "));
    } finally {
      await h.close();
    }
  },
});
