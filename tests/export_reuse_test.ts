/**
 * Issue 14: an identical request (same project, format, filters, options) reuses a SUCCESS
 * export while the project's source data is unchanged (200, `reused: true`); any committed
 * write to an exported table defeats reuse (per-project and global change markers moved by
 * triggers); `"force": true` exports anyway.
 */
import { createActivities } from "../activities/mod.ts";
import { createApp } from "../api/mod.ts";
import { type CreatedOrReused, createOrReuseExport, markExportDeleting } from "../db/exports.ts";
import { expireExport } from "../db/retention.ts";
import { seedDemo } from "../db/seed_demo.ts";
import type { ObjectStorage } from "../storage/types.ts";
import { assert, assertEquals } from "./assert.ts";
import { startHarness } from "./harness.ts";
import { serviceTest } from "./support.ts";

Deno.test({
  name: "identical requests reuse a SUCCESS export until the data changes; force exports anyway",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "s3" });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 200, seed: 21 });
      const other = await seedDemo(h.sql, { occurrences: 50, seed: 22 });
      const token = seed.token;
      const body = {
        project: seed.project_id,
        format: "occurrences_simple_csv",
        filters: { collection_id: seed.collection_id },
      };
      const create = async (extra: Record<string, unknown> = {}) => {
        const res = await h.api("POST", "/api/v2/exports/", { token, body: { ...body, ...extra } });
        const json = await res.json();
        return { status: res.status, id: json.id as number, json };
      };

      const first = await create();
      assertEquals(first.status, 201, JSON.stringify(first.json));
      assertEquals(first.json.reused, false);
      // an identical request while the first still runs starts another export (nothing to reuse)
      assertEquals((await h.waitForExport(first.id, token)).status, "SUCCESS");

      const again = await create();
      assertEquals(again.status, 200, JSON.stringify(again.json));
      assertEquals(again.json.reused, true);
      assertEquals(again.id, first.id);
      assertEquals(again.json.status, "SUCCESS");

      // a different request is not identical: other options, other filters, other format
      const bom = await create({ excel_compatible: true });
      assertEquals(bom.status, 201);
      const unfiltered = await h.api("POST", "/api/v2/exports/", {
        token,
        body: { project: seed.project_id, format: "occurrences_simple_csv" },
      });
      assertEquals(unfiltered.status, 201);
      for (const id of [bom.id, (await unfiltered.json()).id]) {
        assertEquals((await h.waitForExport(id, token)).status, "SUCCESS");
      }

      // force exports anyway, and the newest identical export is what is reused afterwards
      const forced = await create({ force: true });
      assertEquals(forced.status, 201);
      assert(forced.id > first.id);
      assertEquals((await h.waitForExport(forced.id, token)).status, "SUCCESS");
      assertEquals((await create()).id, forced.id);

      // a write to another project's data does not defeat reuse
      await h.sql`update occurrences set determination_score = determination_score
        where id = (select min(id) from occurrences where project_id = ${other.project_id})`;
      assertEquals((await create()).status, 200);

      // a write to this project's data does, even one that changes no value (it is a write)
      await h.sql`update identifications set comment = comment
        where id = (select min(i.id) from identifications i
          join occurrences o on o.id = i.occurrence_id where o.project_id = ${seed.project_id})`;
      const afterWrite = await create();
      assertEquals(afterWrite.status, 201, "a write to an exported table defeats reuse");
      assertEquals((await h.waitForExport(afterWrite.id, token)).status, "SUCCESS");
      assertEquals((await create()).id, afterWrite.id);

      // so does a write to a global table every export reads (taxa names)
      await h.sql`update taxa set name = name where id = (select min(id) from taxa)`;
      const afterTaxa = await create();
      assertEquals(afterTaxa.status, 201, "a write to taxa defeats reuse");
      assertEquals((await h.waitForExport(afterTaxa.id, token)).status, "SUCCESS");

      // a failed or deleted export is never reused
      assertEquals(
        (await h.api("DELETE", `/api/v2/exports/${afterTaxa.id}/`, { token })).status,
        204,
      );
      const afterDelete = await create();
      assertEquals(afterDelete.status, 201);
      assertEquals((await h.waitForExport(afterDelete.id, token)).status, "SUCCESS");
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "reusing a running export that has not counted moves its request position to the reuse",
  ...serviceTest,
  async fn() {
    // Read-your-writes on a replica (docs/replica.md): A requests at L1; B writes at L2 > L1 and
    // sends the identical request, which is given A's running export. That export must not be
    // counted on a replica that has not replayed L2.
    const h = await startHarness({ storage: "fs", worker: false });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 50, seed: 23 });
      const post = async () => {
        const res = await h.api("POST", "/api/v2/exports/", {
          token: seed.token,
          body: { project: seed.project_id, format: "occurrences_simple_csv" },
        });
        const json = await res.json();
        return { status: res.status, id: json.id as number };
      };
      const first = await post();
      assertEquals(first.status, 201);
      await h.sql`update projects set name = name || '!' where id = ${seed.project_id}`;
      const [{ written }] = await h.sql<{ written: string }[]>`
        select pg_current_wal_lsn()::text as written`;
      const reused = await post();
      assertEquals([reused.status, reused.id], [200, first.id]);
      const [row] = await h.sql<{ request_lsn: string; covers: boolean }[]>`
        select request_lsn::text, request_lsn >= ${written}::pg_lsn as covers
        from data_exports where id = ${first.id}`;
      assert(row.covers, `request_lsn ${row.request_lsn} is before the reuser's write ${written}`);

      // once its replica wait has passed (its reads may have begun) and before it has counted,
      // it is no longer handed out: a new export starts
      const acts = createActivities({ sql: h.sql, storage: h.storage, config: h.config });
      await acts.awaitReplica({ exportId: first.id });
      const after = await post();
      assertEquals(after.status, 201, "an export past its replica wait was reused uncounted");
      assert(after.id !== first.id);
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "reuse vs expiry and delete: no export about to expire, expiring or being deleted",
  ...serviceTest,
  async fn(t) {
    const h = await startHarness({ storage: "fs" });
    const seed = await seedDemo(h.sql, { occurrences: 50, seed: 24 });
    try {
      const token = seed.token;
      const body = { project: seed.project_id, format: "occurrences_simple_csv" };
      const post = async (app = h.app) => {
        const res = await app.request("/api/v2/exports/", {
          method: "POST",
          headers: { Authorization: `Token ${token}`, "Content-Type": "application/json" },
          body: JSON.stringify(body),
        });
        const json = await res.json();
        return { status: res.status, id: json.id as number, json };
      };
      const exported = async () => {
        const created = await post();
        assertEquals(created.status, 201, JSON.stringify(created.json));
        assertEquals((await h.waitForExport(created.id, token)).status, "SUCCESS");
        return created.id;
      };
      const first = await exported();

      await t.step("an export whose retention is about to end is not reused", async () => {
        await h.sql`update data_exports set finished_at = now() - interval '7 days',
          expires_at = now() + interval '30 minutes' where id = ${first}`;
        const next = await exported();
        assert(next !== first);
        const again = await post();
        assertEquals([again.status, again.id], [200, next]);
      });

      await t.step("expiry waits for a reuse in flight: the reuse answers SUCCESS", async () => {
        const [{ id, file_key: key }] = await h.sql<{ id: number; file_key: string }[]>`
          select id, file_key from data_exports
          where project_id = ${seed.project_id} and status = 'SUCCESS' order by id desc limit 1`;
        let reached!: () => void;
        const headed = new Promise<void>((resolve) => reached = resolve);
        let release!: () => void;
        const released = new Promise<void>((resolve) => release = resolve);
        const storage: ObjectStorage = {
          ...h.storage,
          async headObject(k) {
            const head = await h.storage.headObject(k);
            if (k === key) {
              reached();
              await released;
            }
            return head;
          },
        };
        const app = createApp({
          sql: h.sql,
          storage,
          config: h.config,
          temporal: h.temporal.client,
        });
        const reusing = post(app);
        await headed;
        // housekeeping reaches the export's expiry right after the reuse found its file
        const expiring = (async () => {
          await h.sql`update data_exports set expires_at = clock_timestamp() - interval '1 second'
            where id = ${id}`;
          return await expireExport(h.sql, id, (k) => h.storage.deleteObject(k));
        })();
        await new Promise((r) => setTimeout(r, 1000));
        release();
        const reused = await reusing;
        assertEquals(
          [reused.status, reused.id, reused.json.reused, reused.json.status],
          [200, id, true, "SUCCESS"],
        );
        assertEquals(await expiring, true, "the expiry went ahead once the reuse had answered");
      });

      await t.step("an export being deleted is not reused", async () => {
        const doomed = await exported();
        // the delete workflow's first step (stopExportWorkflow) marks it so before it stops the
        // run: called as an activity outside one, it failed 'Activity context not initialized'
        // whenever the ended run had not closed yet (a busy machine) and it had to wait
        assert(await markExportDeleting(h.sql, doomed), "marked as being deleted");
        const after = await post();
        assertEquals(after.status, 201, "an export being deleted was reused");
        assert(after.id !== doomed);
        assertEquals((await h.waitForExport(after.id, token)).status, "SUCCESS");
      });
    } finally {
      // leave nothing that a later test's housekeeping run in this database would expire
      await h.sql`update data_exports set expires_at = null
        where project_id = ${seed.project_id} and status = 'SUCCESS'`;
      await h.close();
    }
  },
});

Deno.test({
  name: "identical requests naming their options in another key order share one lock: no deadlock",
  ...serviceTest,
  async fn() {
    // Both match the one SUCCESS export and find its file gone. Keyed by their JSON text they took
    // two advisory locks, both share-locked the export and deadlocked marking it lost (40P01).
    const h = await startHarness({ storage: "fs", batchSize: 500 });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 50, seed: 29 });
      const res = await h.api("POST", "/api/v2/exports/", {
        token: seed.token,
        body: { project: seed.project_id, format: "occurrences_simple_csv", force: true },
      });
      const id = (await res.json()).id as number;
      assertEquals((await h.waitForExport(id, seed.token)).status, "SUCCESS");
      // as if it had been requested with two options (the db layer takes any)
      await h.sql`update data_exports
        set filters = filters || '{"_options": {"split_by": "capture", "split_seed": "s"}}'
        where id = ${id}`;
      const [row] = await h.sql<{ filters: Record<string, unknown>; settings_key: string }[]>`
        select filters - '_options' as filters, settings_key from data_exports where id = ${id}`;
      let arrived = 0;
      const request = (options: Record<string, unknown>) =>
        createOrReuseExport(h.sql, {
          userId: seed.user_id,
          projectId: seed.project_id,
          format: "occurrences_simple_csv",
          filters: row.filters,
          filtersDisplay: {},
          options: options as never,
          settingsKey: row.settings_key,
          reuse: true,
          settledSeconds: 120,
          // the file is gone; each waits (up to 2 s) for the other to look too
          async headFile() {
            arrived++;
            const until = Date.now() + 2_000;
            while (arrived < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
            return null;
          },
        });
      const outcomes = await Promise.allSettled([
        request({ split_by: "capture", split_seed: "s" }),
        request({ split_seed: "s", split_by: "capture" }),
      ]);
      const failed = outcomes.filter((o) => o.status === "rejected")
        .map((o) => String((o as PromiseRejectedResult).reason));
      assertEquals(failed, []);
      const [a, b] = outcomes.map((o) => (o as PromiseFulfilledResult<CreatedOrReused>).value);
      // one found the file lost and started a new export; the other, once it had the lock,
      // reused that one
      assertEquals(a.export.id, b.export.id);
      assertEquals([a.reused, b.reused].sort(), [false, true]);
      assertEquals([...a.lost, ...b.lost], [id]);
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "options equal to their defaults are the request without them: both reuse each other",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "s3" });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 60, seed: 23 });
      const token = seed.token;
      const create = async (options?: Record<string, unknown>) => {
        const res = await h.api("POST", "/api/v2/exports/", {
          token,
          body: { project: seed.project_id, format: "detections_coco", options },
        });
        const json = await res.json();
        return { status: res.status, id: json.id as number, json };
      };
      // the defaults named (detections_coco: include_images false, max_skipped_fraction 0.05):
      // stored as no option at all, so the export echoes {}
      const named = await create({ max_skipped_fraction: 0.05, include_images: false });
      assertEquals(named.status, 201, JSON.stringify(named.json));
      assertEquals(named.json.options, {});
      assertEquals((await h.waitForExport(named.id, token)).status, "SUCCESS");
      // without them: the same request, reused (was 201, a second identical file)
      const bare = await create();
      assertEquals(bare.status, 200, JSON.stringify(bare.json));
      assertEquals([bare.id, bare.json.reused], [named.id, true]);
      // and the other way round, in another key order
      const again = await create({ include_images: false, max_skipped_fraction: 0.05 });
      assertEquals([again.status, again.id], [200, named.id]);
      // a value other than the default is another request
      const other = await create({ max_skipped_fraction: 0.5 });
      assertEquals(other.status, 201, JSON.stringify(other.json));
      assertEquals(other.json.options, { max_skipped_fraction: 0.5 });
      const [{ stored }] = await h.sql<{ stored: unknown }[]>`
        select filters as stored from data_exports where id = ${named.id}`;
      assertEquals(stored, {});
    } finally {
      await h.close();
    }
  },
});
