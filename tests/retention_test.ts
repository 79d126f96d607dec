/**
 * Retention of export files, after GBIF's downloads (`eraseAfter`; docs/retention.md), against
 * the real services: exports kept 2 seconds (`EXPORT_RETENTION_SECONDS`), then a housekeeping
 * run deletes the file (checked with an S3 HEAD on moto) and marks the export EXPIRED (download
 * 410, row, counts and checksum kept); an extension keeps the file through a run; bad
 * extensions change nothing; a crash between the delete and the mark is finished by the next
 * run; rerun and reuse never return an EXPIRED export and produce the same file again.
 */
import { HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { runHousekeeping } from "../cli/housekeeping.ts";
import { jobLogs } from "../db/exports.ts";
import { expireExport } from "../db/retention.ts";
import { seedDemo } from "../db/seed_demo.ts";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { createUser } from "./fixtures/access.ts";
import { type Harness, startHarness } from "./harness.ts";
import { requireEnv, serviceTest } from "./support.ts";
import type { housekeepingWorkflow } from "../workflows/housekeeping_workflow.ts";
import { EXPORT_STATUS } from "../workflows/search_attributes.ts";

type ExportJson = {
  id: number;
  status: string;
  format: string;
  filters: Record<string, unknown>;
  record_count: number;
  checksum: string | null;
  file_url: string | null;
  download_url: string | null;
  finished_at: string | null;
  expires_at: string | null;
  reused?: boolean;
  job: {
    status: string;
    progress: {
      summary: { status: string };
      stages: { key: string; params: { key: string; value: unknown }[] }[];
    };
  };
};

const FORMAT = "occurrences_simple_csv";

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Sleeps until `expires_at` of `e` has passed (by 200 ms). */
async function untilExpired(e: ExportJson): Promise<void> {
  const wait = Date.parse(e.expires_at!) - Date.now() + 200;
  if (wait > 0) await sleep(wait);
}

/** Whether moto still holds `key` in the harness bucket: an S3 HEAD, not through the app. */
async function s3Holds(s3: S3Client, h: Harness, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: h.config.s3.bucket, Key: key }));
    return true;
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) {
      return false;
    }
    throw error;
  }
}

Deno.test({
  name: "retention: expiry, extension, housekeeping, rerun and reuse (GBIF eraseAfter)",
  ...serviceTest,
  async fn(t) {
    const h = await startHarness({
      storage: "s3",
      batchSize: 500,
      env: { EXPORT_RETENTION_SECONDS: "2", EXPORT_RETENTION_MAX_DAYS: "365" },
    });
    const s3 = new S3Client({
      endpoint: requireEnv("TEST_S3_ENDPOINT"),
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: "testing", secretAccessKey: "testing" },
    });
    const seed = await seedDemo(h.sql, { occurrences: 150, seed: 2020 });
    const api = (method: string, path: string, token = seed.token, body?: unknown) =>
      h.api(method, path, { token, body });
    const read = async (id: number, token = seed.token): Promise<ExportJson> => {
      const res = await api("GET", `/api/v2/exports/${id}/`, token);
      assertEquals(res.status, 200);
      return await res.json();
    };
    const fileKey = async (id: number): Promise<string> => {
      const [row] = await h.sql<{ file_key: string }[]>`
        select file_key from data_exports where id = ${id}`;
      return row.file_key;
    };
    /** Requests an export (201) and waits for its SUCCESS. */
    const exportNow = async (
      body: Record<string, unknown>,
      token = seed.token,
    ): Promise<ExportJson> => {
      const res = await api("POST", "/api/v2/exports/", token, {
        project: seed.project_id,
        ...body,
      });
      const created = await res.json();
      assertEquals(res.status, 201, JSON.stringify(created));
      const done = await h.waitForExport(created.id, token) as ExportJson;
      assertEquals(done.status, "SUCCESS", JSON.stringify(done));
      return done;
    };
    const housekeeping = async () =>
      await runHousekeeping(h.temporal.client, {
        taskQueue: h.config.temporalTaskQueue,
        minAgeSeconds: 3600,
      });
    const [researcherId, researcher] = await createUser(h.sql, "researcher");
    const [otherResearcherId, otherResearcher] = await createUser(h.sql, "researcher");
    const [memberId, member] = await createUser(h.sql, "basic_member");
    const [, stranger] = await createUser(h.sql, "stranger"); // a public project: may read
    for (
      const [userId, role] of [
        [researcherId, "researcher"],
        [otherResearcherId, "researcher"],
        [memberId, "basic_member"],
      ] as const
    ) {
      await h.sql`
        insert into project_memberships (project_id, user_id, role)
        values (${seed.project_id}, ${userId}, ${role})`;
    }

    try {
      // A expires; B is extended before it expires; C's run is cut between delete and mark
      const a = await exportNow({ format: FORMAT, force: true });
      const b = await exportNow({ format: "occurrences_api_json", force: true });
      const c = await exportNow({ format: "sessions_csv", force: true });
      const aKey = await fileKey(a.id);

      await t.step("a SUCCESS export expires its retention after it finished", () => {
        for (const e of [a, b, c]) {
          assertEquals(Date.parse(e.expires_at!) - Date.parse(e.finished_at!), 2000);
        }
      });

      await t.step("extend: bad input is a 400 and changes nothing", async () => {
        const before = (await read(b.id)).expires_at;
        for (
          const [body, says] of [
            [{ days: 366 }, "at most 365 days (EXPORT_RETENTION_MAX_DAYS)"],
            [{ days: 0 }, "days"],
            [{ days: 1.5 }, "days"],
            [{ days: "7" }, "days"],
            [{ weeks: 1 }, "weeks"],
          ] as const
        ) {
          const res = await api("POST", `/api/v2/exports/${b.id}/extend/`, seed.token, body);
          const problem = await res.json();
          assertEquals(res.status, 400, JSON.stringify(problem));
          assert(problem.error.includes(says), problem.error);
        }
        const text = await h.app.request(`/api/v2/exports/${b.id}/extend/`, {
          method: "POST",
          headers: { Authorization: `Token ${seed.token}`, "Content-Type": "text/plain" },
          body: "days=3",
        });
        assertEquals(text.status, 415);
        const notJson = await text.json();
        assert(notJson.error.includes("Content-Type: application/json"), notJson.error);
        // sent as JSON, a body that does not parse is a 400 (docs/retention.md); an empty one
        // is no body (api/empty_body.ts), which takes the defaults
        for (const body of ["notjson"]) {
          const res = await h.app.request(`/api/v2/exports/${b.id}/extend/`, {
            method: "POST",
            headers: { Authorization: `Token ${seed.token}`, "Content-Type": "application/json" },
            body,
          });
          const problem = await res.json();
          assertEquals(res.status, 400, JSON.stringify(problem));
          assert(problem.error.includes("Malformed JSON"), problem.error);
        }
        assertEquals((await read(b.id)).expires_at, before);
      });

      await t.step("extend: only the requester or a project manager", async () => {
        const mine = await exportNow({ format: "taxa_list_csv", force: true }, researcher);
        for (const token of [otherResearcher, member, stranger]) {
          const res = await api("POST", `/api/v2/exports/${mine.id}/extend/`, token, { days: 2 });
          assertEquals(res.status, 403, await res.text());
        }
        const own = await api("POST", `/api/v2/exports/${mine.id}/extend/`, researcher, {
          days: 2,
        });
        assertEquals(own.status, 200, await own.text());
        const byManager = await api("POST", `/api/v2/exports/${mine.id}/extend/`, seed.token);
        assertEquals(byManager.status, 200); // no body: the configured retention, 2 s
        const row = await read(mine.id);
        assert(Date.parse(row.expires_at!) - Date.now() < 3000, row.expires_at!);
      });

      await t.step("extend moves expires_at to now + days", async () => {
        const started = Date.now();
        const res = await api("POST", `/api/v2/exports/${b.id}/extend/`, seed.token, { days: 3 });
        const body = await res.json() as ExportJson;
        assertEquals(res.status, 200, JSON.stringify(body));
        const until = Date.parse(body.expires_at!) - started;
        assert(Math.abs(until - 3 * 86_400_000) < 10_000, body.expires_at!);
        assertEquals((await read(b.id)).expires_at, body.expires_at);
      });

      await t.step("a signed file URL never outlives the export's expiry", async () => {
        const amzExpires = async (id: number): Promise<number> => {
          const res = await api("GET", `/api/v2/exports/${id}/download/`);
          assertEquals(res.status, 302);
          await res.body?.cancel();
          const url = new URL(res.headers.get("location")!);
          return Number(url.searchParams.get("X-Amz-Expires"));
        };
        // b is kept 3 days: the configured lifetime
        assertEquals(await amzExpires(b.id), h.config.downloadUrlExpirySeconds);
        const near = await exportNow({ format: "deployments_csv", force: true });
        await h.sql`update data_exports set expires_at = now() + interval '30 seconds'
          where id = ${near.id}`;
        const seconds = await amzExpires(near.id);
        assert(seconds >= 1 && seconds <= 30, `X-Amz-Expires=${seconds}`);
        assert(h.config.downloadUrlExpirySeconds > 30, "the cap is what bounds it");
      });

      await t.step(
        "a run cut between the delete and the mark is finished by the next",
        async () => {
          await untilExpired(c);
          await assertRejects(
            () =>
              expireExport(h.sql, c.id, async (key) => {
                await h.storage.deleteObject(key);
                throw new Error("worker killed after the delete");
              }),
            Error,
            "worker killed",
          );
          assertEquals((await read(c.id)).status, "SUCCESS"); // the mark rolled back
          assertEquals(await s3Holds(s3, h, await fileKey(c.id)), false);
        },
      );

      await t.step("housekeeping deletes expired files and marks them EXPIRED", async () => {
        await untilExpired(a);
        assertEquals(await s3Holds(s3, h, aKey), true);
        // run as the Schedule would, under a known id, to read its search attributes
        const workflowId = `retention-housekeeping-${crypto.randomUUID()}`;
        const report = await h.temporal.client.workflow.execute<typeof housekeepingWorkflow>(
          "housekeepingWorkflow",
          {
            taskQueue: h.config.temporalTaskQueue,
            workflowId,
            args: [{ minAgeSeconds: 3600 }],
          },
        );
        const described = await h.temporal.client.workflow.getHandle(workflowId).describe();
        assertEquals(described.typedSearchAttributes.get(EXPORT_STATUS), "EXPIRED");
        const expired = (report.expiredExports ?? []).map((e) => e.id);
        assert(expired.includes(a.id) && expired.includes(c.id), JSON.stringify(report));
        assert(!expired.includes(b.id), "an extended export expired");
        assertEquals(await s3Holds(s3, h, aKey), false);
        assertEquals(await s3Holds(s3, h, await fileKey(b.id)), true);
        for (const before of [a, c]) {
          const after = await read(before.id);
          assertEquals(after.status, "EXPIRED");
          assertEquals(after.job.status, "EXPIRED");
          assertEquals(after.job.progress.summary.status, "EXPIRED");
          assertEquals(after.record_count, before.record_count);
          assertEquals(after.checksum, before.checksum);
          assertEquals(after.filters, before.filters);
          assertEquals(after.file_url, null);
          assertEquals(after.download_url, null);
          assertEquals(after.expires_at, before.expires_at);
          // no read of it names the deleted file: the upload stage's parameter neither
          const fileUrlParams = after.job.progress.stages.flatMap((stage) =>
            stage.params.filter((param) => param.key === "file_url").map((param) => param.value)
          );
          assertEquals(fileUrlParams, [null]);
          assertEquals(after.finished_at, before.finished_at);
        }
        const b2 = await read(b.id);
        assertEquals(b2.status, "SUCCESS");
        assert(b2.file_url, "the extended export lost its file_url");
        // the data cards agree with the rows: deleted (and when), kept until expires_at
        const card = async (id: number): Promise<string> => {
          const res = await api("GET", `/api/v2/exports/${id}/datacard/`);
          assertEquals(res.status, 200);
          return await res.text();
        };
        const aCard = await card(a.id);
        assert(
          aCard.includes(`- Retention: ended ${a.expires_at}; the file was deleted then`) &&
            aCard.includes(`\`POST /api/v2/exports/${a.id}/rerun/\``),
          aCard,
        );
        const bCard = await card(b.id);
        assert(
          bCard.includes(`- Retention: the file is kept until ${b2.expires_at}, then deleted`),
          bCard,
        );
      });

      await t.step("a download of an EXPIRED export is 410 Gone, saying why", async () => {
        const res = await api("GET", `/api/v2/exports/${a.id}/download/`);
        const body = await res.json();
        assertEquals(res.status, 410);
        assert(body.error.includes("has expired"), body.error);
        assert(body.error.includes(`/api/v2/exports/${a.id}/rerun/`), body.error);
        const extend = await api("POST", `/api/v2/exports/${a.id}/extend/`, seed.token, {
          days: 1,
        });
        assertEquals(extend.status, 409);
        assertEquals((await read(a.id)).status, "EXPIRED");
      });

      await t.step("a second run never acts twice", async () => {
        const again = await housekeeping();
        assertEquals(again.expiredExports?.some((e) => e.id === a.id), false);
        const lines = (await jobLogs(h.sql, a.id)).filter((l) =>
          l.message.startsWith("export expired")
        );
        assertEquals(lines.length, 1);
      });

      await t.step("EXPIRED is a list filter", async () => {
        const res = await api(
          "GET",
          `/api/v2/exports/?project_id=${seed.project_id}&status=EXPIRED`,
        );
        const page = await res.json();
        assertEquals(res.status, 200);
        const ids = (page.results as ExportJson[]).map((e) => e.id);
        assert(ids.includes(a.id) && !ids.includes(b.id), JSON.stringify(ids));
      });

      let again: ExportJson;
      await t.step("reuse never returns an EXPIRED export: a new one starts", async () => {
        again = await exportNow({ format: FORMAT }); // no force: reuse would answer 200
        assert(again.id !== a.id);
        assertEquals(again.checksum, a.checksum);
      });

      await t.step(
        "rerun: a new export of the same request, same file on unchanged data",
        async () => {
          await untilExpired(again);
          await housekeeping(); // `again` EXPIRED too: nothing identical left to reuse
          const member403 = await api("POST", `/api/v2/exports/${a.id}/rerun/`, member);
          assertEquals(member403.status, 403, await member403.text());
          const res = await api("POST", `/api/v2/exports/${a.id}/rerun/`);
          const created = await res.json() as ExportJson;
          assertEquals(res.status, 201, JSON.stringify(created));
          assertEquals(created.reused, false);
          assert(![a.id, again.id].includes(created.id));
          assertEquals(created.format, a.format);
          assertEquals(created.filters, a.filters);
          const done = await h.waitForExport(created.id, seed.token) as ExportJson;
          assertEquals(done.status, "SUCCESS");
          assertEquals(done.checksum, a.checksum);
          assertEquals(done.record_count, a.record_count);
          // the same creation path: an identical export of unchanged data is reused (200)
          const keep = await api("POST", `/api/v2/exports/${done.id}/extend/`, seed.token, {
            days: 1,
          });
          assertEquals(keep.status, 200);
          const reused = await api("POST", `/api/v2/exports/${a.id}/rerun/`);
          const body = await reused.json() as ExportJson;
          assertEquals(reused.status, 200, JSON.stringify(body));
          assertEquals([body.id, body.reused], [done.id, true]);
        },
      );
    } finally {
      // leave nothing that a later test's housekeeping run in this database would expire
      await h.sql`
        update data_exports set expires_at = null
        where project_id = ${seed.project_id} and status = 'SUCCESS'`;
      s3.destroy();
      await h.close();
    }
  },
});
