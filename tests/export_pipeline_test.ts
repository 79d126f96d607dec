/**
 * End to end through HTTP: seed → POST each format → workflow on a real worker → file in S3
 * (moto) → download and parse; plus progress, delete, empty exports and bad input.
 */
import { parse } from "csv-parse/sync";
import { seedDemo, type SeedResult } from "../db/seed_demo.ts";
import { assert, assertEquals } from "./assert.ts";
import { expectedOccurrenceIds, type Harness, startHarness, workflowIdsOf } from "./harness.ts";
import { serviceTest, sha256Hex } from "./support.ts";

const CSV_COLUMNS = [
  "id",
  "event_id",
  "event_name",
  "deployment_id",
  "deployment_name",
  "project_id",
  "project_name",
  "determination_id",
  "determination_name",
  "determination_score",
  "verification_status",
  "best_machine_prediction_name",
  "best_machine_prediction_algorithm",
  "best_machine_prediction_score",
  "verified_by",
  "participant_count",
  "agreed_with_algorithm",
  "agreed_with_user",
  "determination_matches_machine_prediction",
  "detections_count",
  "first_appearance_timestamp",
  "last_appearance_timestamp",
  "duration",
  "best_detection_url",
  "best_detection_bbox",
  "best_detection_width",
  "best_detection_height",
  "best_detection_capture_url",
];

async function createExport(
  h: Harness,
  seed: SeedResult,
  format: string,
  filters: Record<string, unknown> = {},
): Promise<number> {
  const res = await h.api("POST", "/api/v2/exports/", {
    token: seed.token,
    // force: every step checks a fresh export (an identical one would be reused)
    body: { project: seed.project_id, format, filters, force: true },
  });
  const body = await res.json();
  assertEquals(res.status, 201, JSON.stringify(body));
  // the answer reads the row after the workflow started: a worker may already have picked it up
  // (an empty export may even have ended); it is never a failed or revoked one
  assert(["PENDING", "STARTED", "SUCCESS"].includes(body.status), JSON.stringify(body));
  assertEquals(body.format, format);
  return body.id;
}

async function exportCount(h: Harness): Promise<number> {
  const [{ n }] = await h.sql<{ n: number }[]>`select count(*)::int as n from data_exports`;
  return n;
}

Deno.test({
  name: "export pipeline end to end (S3 storage)",
  ...serviceTest,
  async fn(t) {
    const h = await startHarness({ storage: "s3", batchSize: 500 });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 3000, seed: 7 });
      const expectedIds = await expectedOccurrenceIds(h.sql, seed.project_id);
      assert(expectedIds.length > 2500, `seed produced ${expectedIds.length} valid occurrences`);

      await t.step("occurrences_simple_csv: header, ids, counts, size and checksum", async () => {
        const id = await createExport(h, seed, "occurrences_simple_csv");
        const done = await h.waitForExport(id, seed.token);
        assertEquals(done.status, "SUCCESS", JSON.stringify(done));
        const bytes = await h.download(done.file_url as string);
        const rows: string[][] = parse(new TextDecoder().decode(bytes));
        assertEquals(rows[0], CSV_COLUMNS);
        const ids = rows.slice(1).map((r) => Number(r[0]));
        assertEquals(ids, expectedIds);
        assertEquals(done.record_count, expectedIds.length);
        assertEquals(done.file_size, bytes.length);
        assertEquals(done.checksum, `sha256:${await sha256Hex(bytes)}`);
        const job = done.job as {
          progress: {
            summary: { progress: number };
            stages: { key: string; status: string; params: { key: string; value: unknown }[] }[];
          };
        };
        assertEquals(job.progress.summary.progress, 1);
        const exportStage = job.progress.stages.find((s) => s.key === "data_export")!;
        assertEquals(
          exportStage.params.find((p) => p.key === "records_exported")!.value,
          expectedIds.length,
        );
        assertEquals(
          exportStage.params.find((p) => p.key === "total_records")!.value,
          expectedIds.length,
        );
        const upload = job.progress.stages.find((s) => s.key === "uploading_snapshot")!;
        assertEquals(upload.status, "SUCCESS");
        const [{ slug, file_key: key }] = await h.sql<{ slug: string; file_key: string }[]>`
          select p.slug, e.file_key from data_exports e join projects p on p.id = e.project_id
          where e.id = ${id}`;
        // exports/<the export's uuid>/<slug>_export-<id>.csv (docs/formats.md)
        assert(
          new RegExp(`^exports/[0-9a-f-]{36}/${slug}_export-${id}\\.csv$`).test(key),
          key,
        );
        assertEquals((await h.storage.headObject(key))?.size, bytes.length);
        assertEquals((await h.storage.listIncompleteUploads("exports/")).length, 0);
      });

      await t.step("collection filter: fewer rows, equal to the SQL count", async () => {
        const id = await createExport(h, seed, "occurrences_simple_csv", {
          collection_id: seed.collection_id,
        });
        const done = await h.waitForExport(id, seed.token);
        assertEquals(done.status, "SUCCESS", JSON.stringify(done));
        const expected = await expectedOccurrenceIds(h.sql, seed.project_id, seed.collection_id);
        assert(expected.length < expectedIds.length && expected.length > 0);
        const rows: string[][] = parse(
          new TextDecoder().decode(await h.download(done.file_url as string)),
        );
        assertEquals(rows.slice(1).map((r) => Number(r[0])), expected);
        assertEquals(done.record_count, expected.length);
        assertEquals(
          (done.filters_display as Record<string, { id: number }>).collection_id.id,
          seed.collection_id,
        );
      });

      await t.step("occurrences_api_json: one array of occurrence objects", async () => {
        const id = await createExport(h, seed, "occurrences_api_json");
        const done = await h.waitForExport(id, seed.token);
        assertEquals(done.status, "SUCCESS", JSON.stringify(done));
        const bytes = await h.download(done.file_url as string);
        const items = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>[];
        assertEquals(items.map((o) => o.id), expectedIds);
        for (
          const field of [
            "id",
            "details",
            "event",
            "deployment",
            "first_appearance_timestamp",
            "duration",
            "duration_label",
            "determination",
            "determination_score",
            "detections_count",
            "detection_images",
            "best_machine_prediction",
            "identifications",
            "detections",
          ]
        ) {
          assert(field in items[0], `missing field ${field}`);
        }
        const detections = items[0].detections as { classifications: unknown[] }[];
        assertEquals(detections.length, items[0].detections_count);
        assertEquals(done.file_size, bytes.length);
        assertEquals(done.record_count, expectedIds.length);
      });

      await t.step(
        "progress: intermediate values are visible, heartbeats carry the checkpoint",
        async () => {
          const seen = new Set<number>();
          const id = await createExport(h, seed, "occurrences_api_json");
          let heartbeatCheckpoint: unknown;
          const deadline = Date.now() + 60_000;
          while (Date.now() < deadline) {
            const body = await (await h.api("GET", `/api/v2/exports/${id}/`, { token: seed.token }))
              .json();
            seen.add(body.job.progress.stages[0].progress);
            if (!heartbeatCheckpoint) {
              const description = await h.temporal.client.workflow.getHandle(
                (await workflowIdsOf(h.sql, id)).export,
              )
                .describe();
              const pending = description.raw.pendingActivities?.[0];
              const payload = pending?.heartbeatDetails?.payloads?.[0]?.data;
              if (payload) {
                const text = new TextDecoder().decode(payload);
                const details = JSON.parse(text);
                // the readable progress comes first; the whole detail stays small (issue 14)
                assertEquals(Object.keys(details), ["progress", "checkpoint"]);
                assertEquals(Object.keys(details.progress), [
                  "records",
                  "total",
                  "percent",
                  "rowsPerSecond",
                  "bytes",
                ]);
                assertEquals(details.progress.total, expectedIds.length);
                assert(text.length < 1024, `heartbeat details of ${text.length} bytes: ${text}`);
                heartbeatCheckpoint = details.checkpoint;
              }
            }
            if (!["PENDING", "STARTED"].includes(body.status)) break;
            await new Promise((r) => setTimeout(r, 15));
          }
          assert(
            [...seen].some((p) => p > 0 && p < 1),
            `progress values seen: ${[...seen].join(", ")}`,
          );
          assert(heartbeatCheckpoint, "no heartbeat details were observed");
          const cp = heartbeatCheckpoint as {
            upload: { uploadId: string; partCount: number; partsDigest: string };
            records: number;
          };
          assert(typeof cp.upload.uploadId === "string" && typeof cp.records === "number");
          assert(typeof cp.upload.partCount === "number" && !("parts" in cp.upload));
        },
      );

      await t.step("empty export: SUCCESS, zero records, a valid file", async () => {
        const [empty] = await h.sql<{ id: number }[]>`
          insert into source_image_collections (project_id, name) values (${seed.project_id}, 'empty set')
          returning id`;
        const csvId = await createExport(h, seed, "occurrences_simple_csv", {
          collection_id: empty.id,
        });
        const jsonId = await createExport(h, seed, "occurrences_api_json", {
          collection_id: empty.id,
        });
        const csv = await h.waitForExport(csvId, seed.token);
        const json = await h.waitForExport(jsonId, seed.token);
        assertEquals([csv.status, json.status], ["SUCCESS", "SUCCESS"]);
        assertEquals([csv.record_count, json.record_count], [0, 0]);
        assertEquals(parse(new TextDecoder().decode(await h.download(csv.file_url as string))), [
          CSV_COLUMNS,
        ]);
        assertEquals(
          JSON.parse(new TextDecoder().decode(await h.download(json.file_url as string))),
          [],
        );
        assertEquals(
          (json.job as { progress: { summary: { progress: number } } }).progress.summary.progress,
          1,
        );
      });

      await t.step("delete: object and rows are gone; deleting twice is 404", async () => {
        const id = await createExport(h, seed, "occurrences_simple_csv", {
          collection_id: seed.collection_id,
        });
        const done = await h.waitForExport(id, seed.token);
        assertEquals(done.status, "SUCCESS");
        const [row] = await h.sql<
          { file_key: string }[]
        >`select file_key from data_exports where id = ${id}`;
        assert(await h.storage.headObject(row.file_key));
        const res = await h.api("DELETE", `/api/v2/exports/${id}/`, { token: seed.token });
        assertEquals(res.status, 204);
        assertEquals(await h.storage.headObject(row.file_key), null);
        assertEquals((await h.sql`select 1 from data_exports where id = ${id}`).length, 0);
        assertEquals((await h.sql`select 1 from jobs where data_export_id = ${id}`).length, 0);
        const again = await h.api("DELETE", `/api/v2/exports/${id}/`, { token: seed.token });
        assertEquals(again.status, 404);
      });

      await t.step("formats endpoint lists the registry", async () => {
        const res = await h.api("GET", "/api/v2/exports/formats/", { token: seed.token });
        const body = await res.json();
        const keys = body.results.map((f: { key: string }) => f.key);
        assert(keys.includes("occurrences_simple_csv") && keys.includes("occurrences_api_json"));
      });

      await t.step("list: paginated, scoped to the project", async () => {
        const res = await h.api("GET", `/api/v2/exports/?project_id=${seed.project_id}&limit=2`, {
          token: seed.token,
        });
        const body = await res.json();
        assertEquals(res.status, 200);
        assert(body.count >= 5, `count ${body.count}`);
        assertEquals(body.results.length, 2);
        assert(typeof body.next === "string" && body.previous === null);
        for (const r of body.results) assertEquals(r.project, seed.project_id);
      });

      await t.step("bad input: clear 4xx and nothing created", async () => {
        const other = await seedDemo(h.sql, { occurrences: 50, seed: 8 });
        const before = await exportCount(h);
        const cases: [string, () => Promise<Response>, number, string][] = [
          [
            "no token",
            () =>
              h.api("POST", "/api/v2/exports/", {
                body: { project: seed.project_id, format: "occurrences_simple_csv" },
              }),
            401,
            "credentials",
          ],
          [
            "bad token",
            () =>
              h.api("POST", "/api/v2/exports/", {
                token: "nope",
                body: { project: seed.project_id, format: "occurrences_simple_csv" },
              }),
            401,
            "invalid",
          ],
          [
            "malformed JSON",
            () => h.api("POST", "/api/v2/exports/", { token: seed.token, raw: "{not json" }),
            400,
            "JSON",
          ],
          [
            "unknown format",
            () =>
              h.api("POST", "/api/v2/exports/", {
                token: seed.token,
                body: { project: seed.project_id, format: "xlsx" },
              }),
            400,
            "occurrences_simple_csv",
          ],
          [
            "missing format",
            () =>
              h.api("POST", "/api/v2/exports/", {
                token: seed.token,
                body: { project: seed.project_id },
              }),
            400,
            "format",
          ],
          [
            "capture set that does not exist",
            () =>
              h.api("POST", "/api/v2/exports/", {
                token: seed.token,
                body: {
                  project: seed.project_id,
                  format: "occurrences_simple_csv",
                  filters: { collection_id: 999999999 },
                },
              }),
            400,
            "does not exist",
          ],
          [
            "capture set of another project",
            () =>
              h.api("POST", "/api/v2/exports/", {
                token: seed.token,
                body: {
                  project: seed.project_id,
                  format: "occurrences_simple_csv",
                  filters: { collection_id: other.collection_id },
                },
              }),
            400,
            "does not belong to project",
          ],
          [
            "unknown filter",
            () =>
              h.api("POST", "/api/v2/exports/", {
                token: seed.token,
                body: {
                  project: seed.project_id,
                  format: "occurrences_simple_csv",
                  filters: { colour: "red" },
                },
              }),
            400,
            "unknown filter",
          ],
          [
            "project that does not exist",
            () =>
              h.api("POST", "/api/v2/exports/", {
                token: seed.token,
                body: { project: 999999999, format: "occurrences_simple_csv" },
              }),
            400,
            "project",
          ],
          [
            "export in a project where the caller is no member",
            () =>
              h.api("POST", "/api/v2/exports/", {
                token: seed.token,
                body: { project: other.project_id, format: "occurrences_simple_csv" },
              }),
            403,
            "may not create",
          ],
          [
            "missing export",
            () => h.api("GET", "/api/v2/exports/999999999/", { token: seed.token }),
            404,
            "not found",
          ],
          [
            "non-numeric id",
            () => h.api("GET", "/api/v2/exports/abc/", { token: seed.token }),
            400,
            "id",
          ],
          [
            "bad limit",
            () => h.api("GET", "/api/v2/exports/?limit=1000", { token: seed.token }),
            400,
            "limit",
          ],
        ];
        for (const [name, call, status, text] of cases) {
          const res = await call();
          const body = await res.json();
          assertEquals(res.status, status, `${name}: ${JSON.stringify(body)}`);
          assert(
            typeof body.error === "string" && body.error.includes(text),
            `${name}: ${body.error}`,
          );
        }
        assertEquals(await exportCount(h), before);
      });
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "export pipeline on the filesystem backend, downloads through signed URLs",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "fs", batchSize: 300 });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 800, seed: 9 });
      const id = await createExport(h, seed, "occurrences_simple_csv");
      const done = await h.waitForExport(id, seed.token);
      assertEquals(done.status, "SUCCESS", JSON.stringify(done));
      const url = done.file_url as string;
      assert(url.startsWith("http://api.test/files/exports/"), url);
      const rows: string[][] = parse(new TextDecoder().decode(await h.download(url)));
      assertEquals(
        rows.slice(1).map((r) => Number(r[0])),
        await expectedOccurrenceIds(h.sql, seed.project_id),
      );
      const tampered = await h.app.request(
        url.replace("signature=", "signature=0").slice("http://api.test".length),
      );
      assertEquals(tampered.status, 403);
      const redirect = await h.api("GET", `/api/v2/exports/${id}/download/`, { token: seed.token });
      assertEquals(redirect.status, 302);
      assert(redirect.headers.get("location")?.startsWith("http://api.test/files/"));
      const leftovers = [...Deno.readDirSync(`${h.config.exportsDir}/.uploads`)];
      assertEquals(leftovers.length, 0, `temp files left: ${leftovers.map((e) => e.name)}`);
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "a missing export or an unknown format fails the workflow at once, status FAILURE",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "s3" });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 20, seed: 3 });
      const client = h.temporal.client;
      const missing = await client.workflow.start("exportWorkflow", {
        taskQueue: h.config.temporalTaskQueue,
        workflowId: `data-export-missing-${crypto.randomUUID()}`,
        args: [{ exportId: 987654321 }],
      });
      let failed = false;
      await missing.result().catch(() => failed = true);
      assert(failed, "workflow for a missing export did not fail");
      const [row] = await h.sql<{ id: number }[]>`
        insert into data_exports (user_id, project_id, format) values (${seed.user_id}, ${seed.project_id}, 'bogus')
        returning id`;
      await h.sql`insert into jobs (data_export_id, name, progress)
        values (${row.id}, 'bogus', ${
        h.sql.json({ summary: { status: "PENDING", progress: 0 }, stages: [], errors: [] })
      })`;
      const bogus = await client.workflow.start("exportWorkflow", {
        taskQueue: h.config.temporalTaskQueue,
        workflowId: (await workflowIdsOf(h.sql, row.id)).export,
        args: [{ exportId: row.id }],
      });
      await bogus.result().catch(() => {});
      const history = await bogus.fetchHistory();
      const attempts = history.events!.filter((e) => e.activityTaskStartedEventAttributes).map((
        e,
      ) => e.activityTaskStartedEventAttributes!.attempt);
      assert(attempts.every((a) => a === 1), `retried: attempts ${attempts}`);
      const [after] = await h.sql<{ status: string; error: string }[]>`
        select status, error from data_exports where id = ${row.id}`;
      assertEquals(after.status, "FAILURE");
      assert(after.error.includes("unknown export format: bogus"), after.error);
    } finally {
      await h.close();
    }
  },
});
