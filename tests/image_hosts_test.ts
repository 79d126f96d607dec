/**
 * Image exports that could fetch no image are refused at request time: with
 * `SOURCE_IMAGE_HOSTS` empty, or not listing the host of the project's captures, every image
 * would be left out "host not allowed" and the export would fail late (newcomer trial). The
 * answer is a 400 naming the host and how to allow it; nothing is created.
 */
import { PUBLIC_BASE_URL } from "../db/seed_demo_data.ts";
import { seedDemo } from "../db/seed_demo.ts";
import { assert, assertEquals } from "./assert.ts";
import { type Harness, startHarness } from "./harness.ts";
import { serviceTest } from "./support.ts";
import { CAPTURE_SAMPLE } from "../api/image_hosts.ts";

const CAPTURE_HOST = new URL(PUBLIC_BASE_URL).host;

/** The image requests, with the field a refusal names. */
const IMAGE_REQUESTS: [Record<string, unknown>, string][] = [
  [{ format: "crops_by_taxon" }, "format"],
  [{ format: "yolo_dataset", options: { split_by: "capture" } }, "format"],
  [{ format: "detections_coco", options: { include_images: true } }, "options.include_images"],
];

async function create(
  h: Harness,
  seed: { project_id: number; token: string },
  body: Record<string, unknown>,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await h.api("POST", "/api/v2/exports/", {
    token: seed.token,
    body: { project: seed.project_id, ...body },
  });
  return { status: res.status, json: await res.json() };
}

async function exportCount(h: Harness, projectId: number): Promise<number> {
  const [{ count }] = await h.sql<{ count: number }[]>`
    select count(*)::int as count from data_exports where project_id = ${projectId}`;
  return count;
}

/**
 * Removes a project's exports: accepted here with no worker polling their task queue, they would
 * wait in the run's database for ever and stand in a later file's queue (the operator's queue of
 * tests/fair_queue_test.ts counted them: 26 waiting exports, not its 23).
 */
async function removeExports(h: Harness, projectId: number): Promise<void> {
  await h.sql`delete from data_exports where project_id = ${projectId}`;
}

Deno.test({
  name: "image hosts: an image export that could fetch no image is a 400 naming the host",
  ...serviceTest,
  async fn(t) {
    await t.step(
      "SOURCE_IMAGE_HOSTS empty: every image format refused, others accepted",
      async () => {
        const h = await startHarness({ storage: "s3", worker: false });
        try {
          const seed = await seedDemo(h.sql, { occurrences: 20, seed: 71 });
          for (const [body, field] of IMAGE_REQUESTS) {
            const res = await create(h, seed, body);
            const text = JSON.stringify(res.json);
            assertEquals(res.status, 400, text);
            assertEquals(Object.keys(res.json.fields as object), [field], text);
            const error = res.json.error as string;
            assert(error.startsWith("source image host not allowed: "), text);
            assert(error.includes("SOURCE_IMAGE_HOSTS is empty"), text);
            assert(error.includes(`the project's captures are on ${CAPTURE_HOST}`), text);
          }
          assertEquals(await exportCount(h, seed.project_id), 0);
          // the same format without images fetches nothing
          const json = await create(h, seed, { format: "detections_coco" });
          assertEquals(json.status, 201, JSON.stringify(json.json));
          assertEquals(await exportCount(h, seed.project_id), 1);
          await removeExports(h, seed.project_id);
        } finally {
          await h.close();
        }
      },
    );

    await t.step("a list without the captures' host: refused; with it: accepted", async () => {
      const h = await startHarness({
        storage: "s3",
        worker: false,
        env: { SOURCE_IMAGE_HOSTS: "images.example.org,127.0.0.1:9000" },
      });
      try {
        const seed = await seedDemo(h.sql, { occurrences: 20, seed: 72 });
        for (const [body, field] of IMAGE_REQUESTS) {
          const res = await create(h, seed, body);
          const text = JSON.stringify(res.json);
          assertEquals(res.status, 400, text);
          assertEquals(Object.keys(res.json.fields as object), [field], text);
          assert(
            (res.json.error as string).includes(
              `captures are on ${CAPTURE_HOST}, which SOURCE_IMAGE_HOSTS does not list`,
            ),
            text,
          );
          // the deployment's allowlist is not the caller's to read
          assert(!text.includes("images.example.org"), text);
        }
        assertEquals(await exportCount(h, seed.project_id), 0);
        // one capture moved to a listed host: images can be fetched, the export is accepted
        await h.sql`update source_images set public_base_url = 'http://images.example.org/'
          where id = (select min(id) from source_images where project_id = ${seed.project_id})`;
        const res = await create(h, seed, { format: "crops_by_taxon" });
        assertEquals(res.status, 201, JSON.stringify(res.json));
        await removeExports(h, seed.project_id);
      } finally {
        await h.close();
      }
    });

    await t.step(
      "more captures than the sample: a listed host past it is not refused",
      async () => {
        const h = await startHarness({
          storage: "s3",
          worker: false,
          env: { SOURCE_IMAGE_HOSTS: "images.example.org" },
        });
        try {
          const seed = await seedDemo(h.sql, { occurrences: 20, seed: 73 });
          const project = seed.project_id;
          // an old station's captures fill the first CAPTURE_SAMPLE rows read; the newest capture
          // is on the listed host, so images can be fetched and the export must be accepted
          const [first] = await h.sql<{ deployment_id: number; event_id: number }[]>`
            select deployment_id, event_id from source_images where project_id = ${project}
            order by id limit 1`;
          await h.sql`update source_images set public_base_url = 'http://old.example.org/'
            where project_id = ${project}`;
          await h.sql`insert into source_images (project_id, deployment_id, event_id, path,
              public_base_url, timestamp)
            select ${project}, ${first.deployment_id}, ${first.event_id}, 'old/' || g || '.jpg',
              'http://old.example.org/', now()
            from generate_series(1, ${CAPTURE_SAMPLE}) g`;
          await h.sql`update source_images set public_base_url = 'http://images.example.org/'
            where id = (select max(id) from source_images where project_id = ${project})`;
          const res = await create(h, seed, { format: "crops_by_taxon" });
          assertEquals(res.status, 201, JSON.stringify(res.json));
          // an empty list fetches nothing whatever the captures: still refused
          const empty = await startHarness({ storage: "s3", worker: false });
          try {
            const refused = await create(empty, seed, { format: "yolo_dataset" });
            assertEquals(refused.status, 400, JSON.stringify(refused.json));
          } finally {
            await empty.close();
          }
          await removeExports(h, project);
        } finally {
          await h.close();
        }
      },
    );

    await t.step("a schedule of an image format is refused like a single export", async () => {
      const h = await startHarness({ storage: "s3", worker: false });
      try {
        const seed = await seedDemo(h.sql, { occurrences: 20, seed: 74 });
        const res = await h.api("POST", "/api/v2/export-schedules/", {
          token: seed.token,
          body: { project: seed.project_id, format: "crops_by_taxon", interval: "1d" },
        });
        const json = await res.json();
        const text = JSON.stringify(json);
        assertEquals(res.status, 400, text);
        assertEquals(Object.keys(json.fields), ["format"], text);
        assert((json.error as string).includes("SOURCE_IMAGE_HOSTS is empty"), text);
        const [{ count }] = await h.sql<{ count: number }[]>`
          select count(*)::int as count from export_schedules where project_id = ${seed.project_id}`;
        assertEquals(count, 0);
        // a format that fetches no image is scheduled as before
        const csv = await h.api("POST", "/api/v2/export-schedules/", {
          token: seed.token,
          body: { project: seed.project_id, format: "occurrences_simple_csv", interval: "1d" },
        });
        const schedule = await csv.json();
        assertEquals(csv.status, 201, JSON.stringify(schedule));
        // its Temporal Schedule is named by its id, which a later test file's own database
        // also gives (export-schedule-1) in the namespace the run shares: remove it
        const removed = await h.api("DELETE", `/api/v2/export-schedules/${schedule.id}/`, {
          token: seed.token,
        });
        assertEquals(removed.status, 204, await removed.text());
      } finally {
        await h.close();
      }
    });
  },
});
