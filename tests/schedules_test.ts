/**
 * Scheduled exports through the API against real Temporal Schedules: a short interval produces
 * exports owned by the schedule's user, keep_last prunes through the delete workflow, pause stops
 * runs, trigger and unpause start them, delete removes the schedule; cron with a time zone;
 * validation and permissions. Every response is checked against the OpenAPI document.
 */
import { ScheduleNotFoundError } from "@temporalio/client";
import { createScheduleActivities, createScheduledRunExport } from "../activities/schedules.ts";
import { createApp } from "../api/mod.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { createProject } from "./fixtures/access.ts";
import { type Harness, startHarness } from "./harness.ts";
import { callDocumented } from "./openapi_support.ts";
import { serviceTest } from "./support.ts";

/** Polls `check` until it returns a value (not undefined); fails after `timeoutMs`. */
async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 90_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function scheduleExports(
  h: Harness,
  scheduleId: number,
): Promise<{ id: number; status: string; user_id: number; file_key: string | null }[]> {
  return await h.sql`
    select id, status, user_id, file_key from data_exports
    where schedule_id = ${scheduleId} order by id`;
}

Deno.test({
  name: "export schedules: runs, keep_last, pause, trigger, unpause, delete, cron, validation",
  ...serviceTest,
  async fn(t) {
    const h = await startHarness({ storage: "s3" });
    // intervals of seconds, so that runs happen within the test
    const app = createApp({
      sql: h.sql,
      storage: h.storage,
      config: { ...h.config, scheduleMinIntervalSeconds: 1 },
      temporal: h.temporal.client,
    });
    // the default SCHEDULE_MIN_INTERVAL_SECONDS (60)
    const strictApp = createApp({
      sql: h.sql,
      storage: h.storage,
      config: h.config,
      temporal: h.temporal.client,
    });
    const schedules = h.temporal.client.schedule;
    /** A new project's researcher creates a yearly schedule of `format` there (201). */
    const yearlyScheduleInNewProject = async (format: string) => {
      const other = await createProject(h.sql, { draft: false });
      const created = await callDocumented(app, "POST", "/api/v2/export-schedules/", {
        token: other.tokens.researcher,
        body: { project: other.projectId, format, cron: "0 3 1 1 *" },
      });
      assertEquals(created.status, 201);
      return { other, created };
    };
    try {
      const p = await createProject(h.sql, { draft: false });
      const researcher = p.tokens.researcher;
      let scheduleId = 0;

      await t.step("create: an interval schedule in Temporal, overlap SKIP", async () => {
        const res = await callDocumented(app, "POST", "/api/v2/export-schedules/", {
          token: researcher,
          body: {
            project: p.projectId,
            format: "occurrences_simple_csv",
            interval: "2s",
            keep_last: 2,
          },
        });
        assertEquals(res.status, 201, JSON.stringify(res.body));
        scheduleId = res.body.id;
        assertEquals(res.body.schedule_id, `export-schedule-${scheduleId}`);
        assertEquals(res.body.interval_seconds, 2);
        assertEquals(res.body.user.id, p.userIds.researcher);
        const described = await schedules.getHandle(`export-schedule-${scheduleId}`).describe();
        assertEquals(described.policies.overlap, "SKIP");
        assertEquals(described.action.type, "startWorkflow");
        assert(
          described.action.type === "startWorkflow" &&
            described.action.workflowType === "scheduledExportWorkflow",
        );
      });

      await t.step("runs create exports as the owner; keep_last prunes older ones", async () => {
        const seen = new Map<number, string | null>();
        await eventually("four scheduled runs", async () => {
          for (const row of await scheduleExports(h, scheduleId)) {
            if (row.status === "SUCCESS") seen.set(row.id, row.file_key);
            assertEquals(row.user_id, p.userIds.researcher);
          }
          const d = await schedules.getHandle(`export-schedule-${scheduleId}`).describe();
          return d.info.numActionsTaken >= 4 && seen.size >= 3 ? true : undefined;
        });
        const paused = await callDocumented(
          app,
          "POST",
          `/api/v2/export-schedules/${scheduleId}/pause/`,
          { token: researcher },
        );
        assertEquals(paused.status, 202);
        assertEquals(paused.body.paused, true);
        await eventually("the last run to finish", async () => {
          const d = await schedules.getHandle(`export-schedule-${scheduleId}`).describe();
          return d.info.runningActions.length === 0 ? true : undefined;
        });
        const left = await scheduleExports(h, scheduleId);
        assertEquals(left.length, 2, JSON.stringify(left));
        for (const row of left) assertEquals(row.status, "SUCCESS");
        const kept = left.map((r) => r.id);
        assert(Math.min(...kept) > Math.min(...seen.keys()), "the oldest export was pruned");
        for (const [id, key] of seen) {
          if (kept.includes(id)) continue;
          const [gone] = await h.sql`select id from data_exports where id = ${id}`;
          assertEquals(gone, undefined, `export ${id} pruned`);
          assertEquals(await h.storage.headObject(key!), null, `file of export ${id} removed`);
        }
        const got = await callDocumented(app, "GET", `/api/v2/export-schedules/${scheduleId}/`, {
          token: p.tokens.basic_member,
        });
        assertEquals(got.body.recent_exports, [...kept].reverse());
        assertEquals(got.body.paused, true);
        const listed = await callDocumented(
          app,
          "GET",
          `/api/v2/exports/?project_id=${p.projectId}&status=SUCCESS`,
          { token: researcher },
        );
        for (const id of kept) {
          assert(listed.body.results.some((r: { id: number }) => r.id === id), `${id} listed`);
        }
      });

      await t.step("pause stops runs; trigger runs once anyway; unpause resumes", async () => {
        const handle = schedules.getHandle(`export-schedule-${scheduleId}`);
        const before = (await handle.describe()).info.numActionsTaken;
        const exportsBefore = (await scheduleExports(h, scheduleId)).map((r) => r.id);
        // three intervals go by while paused
        await new Promise((r) => setTimeout(r, 6000));
        const paused = await handle.describe();
        assertEquals(paused.state.paused, true);
        assertEquals(paused.info.numActionsTaken, before);
        assertEquals((await scheduleExports(h, scheduleId)).map((r) => r.id), exportsBefore);

        const triggered = await callDocumented(
          app,
          "POST",
          `/api/v2/export-schedules/${scheduleId}/trigger/`,
          { token: researcher },
        );
        assertEquals(triggered.status, 202);
        const newest = Math.max(...exportsBefore);
        const oldest = Math.min(...exportsBefore);
        const afterTrigger = await eventually("the triggered run's export", async () => {
          const rows = await scheduleExports(h, scheduleId);
          const fresh = rows.find((r) => r.id > newest);
          return fresh?.status === "SUCCESS" && !rows.some((r) => r.id === oldest)
            ? rows
            : undefined;
        });
        assertEquals(afterTrigger.map((r) => r.id).filter((id) => id > newest).length, 1);
        assertEquals(afterTrigger.length, 2);

        const unpaused = await callDocumented(
          app,
          "POST",
          `/api/v2/export-schedules/${scheduleId}/unpause/`,
          { token: researcher },
        );
        assertEquals(unpaused.body.paused, false);
        const latest = Math.max(...afterTrigger.map((r) => r.id));
        await eventually("a scheduled run after unpausing", async () => {
          const rows = await scheduleExports(h, scheduleId);
          return rows.some((r) => r.id > latest) ? true : undefined;
        });
      });

      await t.step("delete removes the Temporal Schedule; its exports stay", async () => {
        const remaining = (await scheduleExports(h, scheduleId)).map((r) => r.id);
        const deleted = await callDocumented(
          app,
          "DELETE",
          `/api/v2/export-schedules/${scheduleId}/`,
          { token: researcher },
        );
        assertEquals(deleted.status, 204);
        await assertRejects(
          () => schedules.getHandle(`export-schedule-${scheduleId}`).describe(),
          ScheduleNotFoundError,
        );
        const gone = await callDocumented(app, "GET", `/api/v2/export-schedules/${scheduleId}/`, {
          token: researcher,
        });
        assertEquals(gone.status, 404);
        const [{ n }] = await h.sql<{ n: number }[]>`
          select count(*)::int as n from data_exports where id = any(${remaining})`;
        assertEquals(n, remaining.length);
      });

      await t.step("cron with a time zone: next runs at 03:00 Paris time", async () => {
        const res = await callDocumented(app, "POST", "/api/v2/export-schedules/", {
          token: p.tokens.owner,
          body: {
            project: p.projectId,
            format: "occurrences_api_json",
            cron: "0 3 * * *",
            timezone: "Europe/Paris",
          },
        });
        assertEquals(res.status, 201, JSON.stringify(res.body));
        assert(res.body.next_run_times.length > 0);
        for (const time of res.body.next_run_times) {
          const hour = new Intl.DateTimeFormat("en-GB", {
            timeZone: "Europe/Paris",
            hour: "2-digit",
            minute: "2-digit",
          }).format(new Date(time));
          assertEquals(hour, "03:00");
        }
        const list = await callDocumented(
          app,
          "GET",
          `/api/v2/export-schedules/?project_id=${p.projectId}`,
          { token: p.tokens.non_member },
        );
        assertEquals(list.body.results.map((s: { id: number }) => s.id), [res.body.id]);
        const denied = await callDocumented(
          app,
          "POST",
          `/api/v2/export-schedules/${res.body.id}/pause/`,
          { token: p.tokens.basic_member },
        );
        assertEquals(denied.status, 403);
        const removed = await callDocumented(
          app,
          "DELETE",
          `/api/v2/export-schedules/${res.body.id}/`,
          { token: p.tokens.owner },
        );
        assertEquals(removed.status, 204);
      });

      await t.step(
        "a run whose owner lost the right to export fails, creating nothing",
        async () => {
          const { other, created } = await yearlyScheduleInNewProject("occurrences_simple_csv");
          await h.sql`update project_memberships set role = 'basic_member'
          where project_id = ${other.projectId} and user_id = ${other.userIds.researcher}`;
          const handle = schedules.getHandle(`export-schedule-${created.body.id}`);
          await handle.trigger();
          const runId = await eventually("the triggered run", async () => {
            const d = await handle.describe();
            return d.info.recentActions[0]?.action.workflow.workflowId;
          });
          const run = h.temporal.client.workflow.getHandle(runId);
          let failure = "";
          await run.result().catch((e) => {
            for (let c = e; c; c = c.cause) failure += ` ${c.message}`;
          });
          assert(failure.includes("may no longer create exports"), failure);
          assertEquals((await scheduleExports(h, created.body.id)).length, 0);
          await handle.delete();
        },
      );

      await t.step(
        "a run whose schedule row is gone (owner or project deleted) deletes its Temporal Schedule",
        async () => {
          const { other, created } = await yearlyScheduleInNewProject("sessions_csv");
          const id = created.body.id as number;
          // what deleting the user or the project does to the row (on delete cascade)
          await h.sql`delete from users where id = ${other.userIds.researcher}`;
          const [{ n: rows }] = await h.sql<{ n: number }[]>`
            select count(*)::int as n from export_schedules where id = ${id}`;
          assertEquals(rows, 0);
          const handle = schedules.getHandle(`export-schedule-${id}`);
          await handle.trigger();
          await eventually("the Temporal Schedule deleted by its run", async () => {
            try {
              await handle.describe();
              return undefined;
            } catch (error) {
              return error instanceof ScheduleNotFoundError ? true : undefined;
            }
          });
          assertEquals((await scheduleExports(h, id)).length, 0);
        },
      );

      await t.step(
        "a retried run's export creation finds the first attempt's row: the insert names the run",
        async () => {
          const { other, created } = await yearlyScheduleInNewProject("occurrences_simple_csv");
          const id = created.body.id as number;
          const runId = `export-schedule-${id}-retried-${crypto.randomUUID()}`;
          // Every export row of the project as its INSERT wrote it (a BEFORE INSERT trigger):
          // what a worker that dies right after the insert commits leaves behind. Written
          // without its run id, a retry of the activity would not find it and insert another.
          const sfx = crypto.randomUUID().replaceAll("-", "").slice(0, 12);
          await h.sql.unsafe(`
            create table inserted_${sfx} (id bigint, schedule_id bigint, schedule_run_id text);
            create function record_insert_${sfx}() returns trigger language plpgsql as $$
            begin
              if new.project_id = ${other.projectId} then
                insert into inserted_${sfx} values (new.id, new.schedule_id, new.schedule_run_id);
              end if;
              return new;
            end $$;
            create trigger record_insert_${sfx} before insert on data_exports
              for each row execute function record_insert_${sfx}();`);
          try {
            const deps = { sql: h.sql, config: h.config, temporal: h.temporal.client };
            const first = await createScheduledRunExport(deps, { scheduleId: id, runId });
            const retried = await createScheduledRunExport(deps, { scheduleId: id, runId });
            assert(first && retried, "the schedule exists: a run is created");
            assertEquals(retried.exportId, first.exportId);
            const rows = await h.sql`
              select id::int, schedule_id::int, schedule_run_id from data_exports
              where project_id = ${other.projectId}`;
            assertEquals([...rows], [{
              id: first.exportId,
              schedule_id: id,
              schedule_run_id: runId,
            }]);
            const inserted = await h.sql.unsafe(
              `select id::int, schedule_id::int, schedule_run_id from inserted_${sfx}`,
            );
            assertEquals(
              [...inserted],
              [{ id: first.exportId, schedule_id: id, schedule_run_id: runId }],
              "the export row was committed without its schedule and run",
            );
            await h.sql`delete from data_exports where id = ${first.exportId}`;
          } finally {
            await h.sql.unsafe(`
              drop trigger record_insert_${sfx} on data_exports;
              drop function record_insert_${sfx}();
              drop table inserted_${sfx};`);
            await schedules.getHandle(`export-schedule-${id}`).delete();
          }
        },
      );

      await t.step("bad requests: 400/403 with a message, no schedule created", async () => {
        const [{ n: before }] = await h.sql<{ n: number }[]>`
          select count(*)::int as n from export_schedules`;
        const base = { project: p.projectId, format: "occurrences_simple_csv" };
        const cases: [string, unknown, number, string][] = [
          ["neither cron nor interval", base, 400, "cron"],
          ["both", { ...base, cron: "0 3 * * *", interval: 60 }, 400, "cron"],
          ["bad interval", { ...base, interval: "soon" }, 400, "interval"],
          ["interval under the minimum", { ...base, interval: "59s" }, 400, "at least 60 s"],
          ["bad time zone", { ...base, cron: "0 3 * * *", timezone: "Mars/Olympus" }, 400, "zone"],
          ["bad cron", { ...base, cron: "every full moon" }, 400, "cron must be 5 fields"],
          // the reason, not the SDK's "Failed to create schedule"
          ["minute out of range", { ...base, cron: "61 3 * * *" }, 400, "Minute"],
          ["a step of 0", { ...base, cron: "*/0 * * * *" }, 400, "Step"],
          ["February 31st", { ...base, cron: "0 3 31 2 *" }, 400, "matches no date"],
          ["keep_last 0", { ...base, interval: 60, keep_last: 0 }, 400, "keep_last"],
          ["unknown format", { ...base, format: "xlsx", interval: 60 }, 400, "format"],
          ["unknown filter", { ...base, interval: 60, filters: { colour: "red" } }, 400, "filter"],
        ];
        for (const [name, body, status, text] of cases) {
          const res = await callDocumented(strictApp, "POST", "/api/v2/export-schedules/", {
            token: researcher,
            body,
          });
          assertEquals(res.status, status, `${name}: ${JSON.stringify(res.body)}`);
          assert(res.body.error.includes(text), `${name}: ${res.body.error}`);
        }
        for (const role of ["basic_member", "ml_data_manager", "non_member"] as const) {
          const res = await callDocumented(app, "POST", "/api/v2/export-schedules/", {
            token: p.tokens[role],
            body: { ...base, interval: 60 },
          });
          assertEquals(res.status, 403, role);
        }
        const [{ n: after }] = await h.sql<{ n: number }[]>`
          select count(*)::int as n from export_schedules`;
        assertEquals(after, before);
      });
    } finally {
      for await (const s of h.temporal.client.schedule.list()) {
        if (s.scheduleId.startsWith("export-schedule-")) {
          await h.temporal.client.schedule.getHandle(s.scheduleId).delete().catch(() => {});
        }
      }
      await h.close();
    }
  },
});

Deno.test({
  name:
    "export schedules: keep_last never prunes the newest good files when later runs fail; actions take no field; list and read agree on paused",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "fs", worker: false });
    const app = createApp({
      sql: h.sql,
      storage: h.storage,
      config: h.config,
      temporal: h.temporal.client,
    });
    const p = await createProject(h.sql, { draft: false });
    const created = await callDocumented(app, "POST", "/api/v2/export-schedules/", {
      token: p.tokens.researcher,
      body: { project: p.projectId, format: "taxa_list_csv", cron: "0 3 1 1 *", keep_last: 2 },
    });
    assertEquals(created.status, 201, JSON.stringify(created.body));
    const scheduleId = created.body.id as number;
    const deps = { sql: h.sql, config: h.config, temporal: h.temporal.client };
    const acts = createScheduleActivities(deps);
    /** One scheduled run's export, ended with `status` (as its export workflow would). */
    const run = async (n: number, status: "SUCCESS" | "FAILURE" | "REVOKED"): Promise<number> => {
      const made = await createScheduledRunExport(deps, { scheduleId, runId: `run-${n}` });
      assert(made, "the schedule exists");
      await h.sql`update data_exports set status = ${status} where id = ${made.exportId}`;
      return made.exportId;
    };
    const pruned = async (): Promise<number[]> =>
      (await acts.exportsBeyondKeepLast({ scheduleId, keepLast: 2 })).map((s) => s.exportId);
    try {
      const good1 = await run(1, "SUCCESS");
      const good2 = await run(2, "SUCCESS");
      const good3 = await run(3, "SUCCESS");
      assertEquals(await pruned(), [good1]);
      // storage went down: two runs fail; the newest two files (and the failures) are kept
      await h.sql`delete from data_exports where id = ${good1}`;
      const bad4 = await run(4, "FAILURE");
      const bad5 = await run(5, "REVOKED");
      assertEquals(await pruned(), [], "the last good files were pruned by failed runs");
      // a good run again: the older good file and the older failure go
      const good6 = await run(6, "SUCCESS");
      assertEquals(await pruned(), [good2, bad4]);
      assert(good3 < bad5 && bad5 < good6, "ids in run order");

      // pause, unpause and trigger take no field: a key or a non-JSON body changes nothing
      const handle = h.temporal.client.schedule.getHandle(`export-schedule-${scheduleId}`);
      for (const action of ["pause", "trigger"]) {
        const path = `/api/v2/export-schedules/${scheduleId}/${action}/`;
        const keyed = await callDocumented(app, "POST", path, {
          token: p.tokens.researcher,
          body: { note: "nightly backup off" },
        });
        assertEquals(keyed.status, 400, JSON.stringify(keyed.body));
        assertEquals(keyed.body.fields, { note: ["is not accepted by this request"] });
        const text = await app.request(path, {
          method: "POST",
          headers: { Authorization: `Token ${p.tokens.researcher}`, "Content-Type": "text/plain" },
          body: "pause",
        });
        assertEquals(text.status, 415, action);
        await text.body?.cancel();
      }
      const described = await handle.describe();
      assertEquals(described.state.paused, false);
      assertEquals(described.info.numActionsTaken, 0, "a refused trigger ran the schedule");
      const [row] = await h.sql<{ paused: boolean }[]>`
        select paused from export_schedules where id = ${scheduleId}`;
      assertEquals(row.paused, false);
      // without a body, or with {}: done
      const paused = await callDocumented(
        app,
        "POST",
        `/api/v2/export-schedules/${scheduleId}/pause/`,
        { token: p.tokens.researcher },
      );
      assertEquals(paused.status, 202, JSON.stringify(paused.body));
      assertEquals(paused.body.paused, true);
      const unpaused = await callDocumented(
        app,
        "POST",
        `/api/v2/export-schedules/${scheduleId}/unpause/`,
        { token: p.tokens.researcher, body: {} },
      );
      assertEquals(unpaused.status, 202, JSON.stringify(unpaused.body));
      assertEquals(unpaused.body.paused, false);

      // an operator pauses it in the Temporal UI or CLI: the list and one read both say so
      await handle.pause("paused by an operator");
      const one = await callDocumented(app, "GET", `/api/v2/export-schedules/${scheduleId}/`, {
        token: p.tokens.basic_member,
      });
      const list = await callDocumented(
        app,
        "GET",
        `/api/v2/export-schedules/?project_id=${p.projectId}`,
        { token: p.tokens.basic_member },
      );
      assertEquals(one.body.paused, true);
      assertEquals(
        list.body.results.map((r: { id: number; paused: boolean }) => [r.id, r.paused]),
        [[scheduleId, true]],
        "the list contradicts the schedule's own read",
      );
    } finally {
      await h.temporal.client.schedule.getHandle(`export-schedule-${scheduleId}`).delete();
      await h.close();
    }
  },
});
