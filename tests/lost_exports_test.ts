/**
 * Exports whose workflow is gone (activities/lost_exports.ts), against the real services: an
 * export terminated from the Temporal UI is not handed out to an identical request once its
 * grace has passed (the request fails it, naming the workflow, and starts a new export), nor
 * read as running (a read or a list that holds it fails it), and
 * housekeeping fails a running row whose workflow never started, which frees the running slot
 * it held: the user's waiting export then runs.
 */
import {
  LOST_EXPORT_GRACE_SECONDS,
  UNSTARTED_EXPORT_GRACE_SECONDS,
} from "../activities/lost_exports.ts";
import { runHousekeeping } from "../cli/housekeeping.ts";
import { exportWorkflowId, jobLogs } from "../db/exports.ts";
import { seedDemo } from "../db/seed_demo.ts";
import { assert, assertEquals } from "./assert.ts";
import { createUser } from "./fixtures/access.ts";
import { startHarness, workflowIdsOf } from "./harness.ts";
import { serviceTest } from "./support.ts";

Deno.test({
  name:
    "an export whose workflow is gone ends FAILURE: on an identical request, and by housekeeping, which frees its running slot",
  ...serviceTest,
  async fn(t) {
    // no worker at first: a requested export's workflow runs in Temporal, and waits there
    const h = await startHarness({
      storage: "fs",
      batchSize: 500,
      worker: false,
      env: { EXPORT_MAX_RUNNING_PER_USER: "1" },
    });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 100, seed: 2301 });
      const request = async (format: string): Promise<{ status: number; id: number }> => {
        const res = await h.api("POST", "/api/v2/exports/", {
          token: seed.token,
          body: { project: seed.project_id, format },
        });
        return { status: res.status, id: (await res.json()).id };
      };
      const read = async (id: number) =>
        await (await h.api("GET", `/api/v2/exports/${id}/`, { token: seed.token })).json();
      /** As if the row had not changed for `seconds`. */
      const unchangedFor = async (id: number, seconds: number) => {
        await h.sql`
          update data_exports set updated_at = now() - make_interval(secs => ${seconds})
          where id = ${id}`;
      };
      let next = 0;

      await t.step(
        "terminated: an identical request fails it and starts a new export",
        async () => {
          const first = await request("occurrences_simple_csv");
          assertEquals(first.status, 201);
          const workflowId = (await workflowIdsOf(h.sql, first.id)).export;
          await h.temporal.client.workflow.getHandle(workflowId).terminate(
            "stuck, says an operator",
          );
          // within the grace its row may be one whose run is about to start: handed out
          const soon = await request("occurrences_simple_csv");
          assertEquals([soon.status, soon.id], [200, first.id]);
          assertEquals((await read(first.id)).status, "PENDING");
          await unchangedFor(first.id, LOST_EXPORT_GRACE_SECONDS + 5);
          const later = await request("occurrences_simple_csv");
          assertEquals(later.status, 201);
          assert(later.id !== first.id, "the terminated export was handed out again");
          next = later.id;
          const ended = await read(first.id);
          assertEquals(ended.status, "FAILURE");
          assert(
            String(ended.error).startsWith(`its workflow ${workflowId} is TERMINATED`),
            String(ended.error),
          );
          assertEquals(ended.job.status, "FAILURE");
          const logs = (await jobLogs(h.sql, first.id)).map((l) => l.message);
          assert(logs.some((m) => m.includes("is TERMINATED")), logs.join("\n"));
        },
      );

      await t.step("terminated: a read of it ends it, and says FAILURE", async () => {
        // another user's export (the first user's one slot is not theirs)
        const [, otherToken] = await createUser(h.sql, "lost-exports-reader", true);
        const res = await h.api("POST", "/api/v2/exports/", {
          token: otherToken,
          body: { project: seed.project_id, format: "sessions_csv", force: true },
        });
        assertEquals(res.status, 201);
        const id = (await res.json()).id;
        const workflowId = (await workflowIdsOf(h.sql, id)).export;
        await h.temporal.client.workflow.getHandle(workflowId).terminate("stuck");
        const get = async () =>
          await (await h.api("GET", `/api/v2/exports/${id}/`, { token: otherToken })).json();
        assertEquals((await get()).status, "PENDING"); // within the grace
        await unchangedFor(id, LOST_EXPORT_GRACE_SECONDS + 5);
        const read = await get();
        assertEquals(read.status, "FAILURE");
        assert(String(read.error).includes("is TERMINATED"), String(read.error));
      });

      await t.step("terminated: a list holding it ends it, and lists it again", async () => {
        const [, listerToken] = await createUser(h.sql, "lost-exports-lister", true);
        const res = await h.api("POST", "/api/v2/exports/", {
          token: listerToken,
          body: { project: seed.project_id, format: "deployments_csv", force: true },
        });
        assertEquals(res.status, 201);
        const id = (await res.json()).id;
        const workflowId = (await workflowIdsOf(h.sql, id)).export;
        await h.temporal.client.workflow.getHandle(workflowId).terminate("stuck");
        const list = async (status: string) => {
          const page = await (await h.api(
            "GET",
            `/api/v2/exports/?project_id=${seed.project_id}&status=${status}&limit=100`,
            { token: listerToken },
          )).json();
          return page as { count: number; results: { id: number; status: string }[] };
        };
        // within the grace: listed as it reads, PENDING
        assert((await list("PENDING")).results.some((e) => e.id === id), "not listed PENDING");
        await unchangedFor(id, LOST_EXPORT_GRACE_SECONDS + 5);
        // past it: the page that held it is listed again without it, and its count with it
        const pending = await list("PENDING");
        assertEquals(pending.results.some((e) => e.id === id), false);
        assertEquals(pending.count, pending.results.length);
        const failed = await list("FAILURE");
        const row = failed.results.find((e) => e.id === id);
        assertEquals(row?.status, "FAILURE");
        const one = await h.api("GET", `/api/v2/exports/${id}/`, { token: listerToken });
        assertEquals((await one.json()).status, "FAILURE");
      });

      await t.step(
        "never started: housekeeping fails it, and the user's slot is free",
        async () => {
          // a row STARTED without a workflow (its start lost with the process that made it),
          // unchanged past the grace: it holds the user's one running slot
          const [ghost] = await h.sql<{ id: number }[]>`
          insert into data_exports (user_id, project_id, format, status)
          values (${seed.user_id}, ${seed.project_id}, 'captures_csv', 'STARTED')
          returning id`;
          await unchangedFor(ghost.id, UNSTARTED_EXPORT_GRACE_SECONDS + 5);
          // another user's, unchanged for less: its workflow may yet start (a scheduled export's)
          const [otherId] = await createUser(h.sql, "lost-exports-other");
          const [young] = await h.sql<{ id: number }[]>`
          insert into data_exports (user_id, project_id, format, status)
          values (${otherId}, ${seed.project_id}, 'captures_csv', 'STARTED')
          returning id`;
          await unchangedFor(young.id, UNSTARTED_EXPORT_GRACE_SECONDS - 60);

          await h.startWorker();
          // the new export waits: the ghost holds the user's one slot
          await new Promise((resolve) => setTimeout(resolve, 3000));
          assertEquals((await read(next)).status, "PENDING");

          const report = await runHousekeeping(h.temporal.client, {
            taskQueue: h.config.temporalTaskQueue,
            minAgeSeconds: 3600,
          });
          assert(report.lostExports?.includes(ghost.id), JSON.stringify(report));
          assertEquals(report.lostExports?.includes(young.id), false);
          // (rows made here have no job: read from the table)
          const status = async (id: number) =>
            (await h.sql<{ status: string; error: string | null }[]>`
              select status, error from data_exports where id = ${id}`)[0];
          const ghostRow = await status(ghost.id);
          assertEquals(ghostRow.status, "FAILURE");
          assert(String(ghostRow.error).includes("is not found"), String(ghostRow.error));
          assertEquals((await status(young.id)).status, "STARTED");
          // the slot is free: the waiting export runs
          const done = await h.waitForExport(next, seed.token, 60_000);
          assertEquals(done.status, "SUCCESS", String(done.error));
          // a second run finds nothing more of its own
          const again = await runHousekeeping(h.temporal.client, {
            taskQueue: h.config.temporalTaskQueue,
            minAgeSeconds: 3600,
          });
          assertEquals(again.lostExports?.includes(ghost.id), false);
          await h.sql`delete from data_exports where id = ${young.id}`;
        },
      );
      await t.step(
        "housekeeping reaches a lost export behind a full page of waiting ones",
        async () => {
          // 500 rows that look running, older than the lost one, whose workflows may yet start
          // (not found, unchanged for less than UNSTARTED_EXPORT_GRACE_SECONDS): a full page
          const [queueUser] = await createUser(h.sql, "lost-exports-queue");
          const fillers = await h.sql<{ id: number }[]>`
            insert into data_exports (user_id, project_id, format, status)
            select ${queueUser}, ${seed.project_id}, 'captures_csv', 'STARTED'
            from generate_series(1, 500)
            returning id`;
          const fillerIds = fillers.map((f) => f.id);
          await h.sql`
            update data_exports
            set updated_at = now() - make_interval(secs => ${UNSTARTED_EXPORT_GRACE_SECONDS - 60})
            where id in ${h.sql(fillerIds)}`;
          // the lost one: its workflow terminated, unchanged past the grace, newer than them all
          const [lost] = await h.sql<{ id: number; file_uuid: string }[]>`
            insert into data_exports (user_id, project_id, format, status)
            values (${queueUser}, ${seed.project_id}, 'sessions_csv', 'STARTED')
            returning id, file_uuid::text`;
          const handle = await h.temporal.client.workflow.start("noSuchWorkflow", {
            taskQueue: `${h.config.temporalTaskQueue}-nobody`,
            workflowId: exportWorkflowId(lost),
          });
          await handle.terminate("stuck");
          await unchangedFor(lost.id, LOST_EXPORT_GRACE_SECONDS + 10);
          try {
            const report = await runHousekeeping(h.temporal.client, {
              taskQueue: h.config.temporalTaskQueue,
              minAgeSeconds: 3600,
            });
            assert(report.lostExports?.includes(lost.id), JSON.stringify(report.lostExports));
            const still = await h.sql<{ status: string; error: string | null; n: number }[]>`
              select status, error, count(*)::int as n from data_exports
              where id in ${h.sql(fillerIds)} group by 1, 2`;
            assertEquals(still.map((r) => [r.status, r.error, r.n]), [["STARTED", null, 500]]);
          } finally {
            await h.sql`delete from data_exports where id = any(${[...fillerIds, lost.id]})`;
          }
        },
      );
    } finally {
      await h.close();
    }
  },
});
