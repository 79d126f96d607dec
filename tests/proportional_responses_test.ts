/**
 * Issue 23, "responses stay proportional": a 5 MB station, event, taxon, capture set or user
 * name, a list of 10,000 ids, 10,000 unknown keys or a 900 KB format key (the most a body under
 * the 1 MiB limit carries; a bigger body answers a short 413) never come back whole.
 * Display strings are at most MAX_DISPLAY_CHARS, echoed lists at most MAX_ECHO_ITEMS then
 * `… and N more`, messages at most MAX_MESSAGE_CHARS (domain/echo.ts), on create, retrieve,
 * list, schedules, job logs and errors, and on display documents stored before the limits.
 */
import { appendJobLog, insertExport } from "../db/exports.ts";
import type { Sql } from "../db/client.ts";
import { ELLIPSIS, MAX_DISPLAY_CHARS, MAX_ECHO_ITEMS, MAX_MESSAGE_CHARS } from "../domain/echo.ts";
import { assert, assertEquals } from "./assert.ts";
import { createProject, type TestProject } from "./fixtures/access.ts";
import { startHarness } from "./harness.ts";
import { serviceTest } from "./support.ts";

/** 5 MiB of one letter: the issue's station name. */
const HUGE = "N".repeat(5 * 1024 * 1024);

/**
 * 900 KiB of one letter: the biggest string a request body can carry under the API's 1 MiB
 * body limit (bigger bodies answer 413 before they are read whole; docs/http-api.md).
 */
const NEAR_LIMIT = "N".repeat(900 * 1024);

/** A response no bigger than a few messages: what every answer below must stay under. */
const SMALL_BYTES = 30_000;

const graphemes = new Intl.Segmenter("en", { granularity: "grapheme" });
function width(text: string): number {
  return [...graphemes.segment(text)].length;
}

/** Every string in `value` (recursively) is at most `max` characters; returns how many. */
function assertStringsWithin(value: unknown, max: number, where: string): number {
  if (typeof value === "string") {
    assert(width(value) <= max, `${where}: ${value.length} characters: ${value.slice(0, 80)}…`);
    return 1;
  }
  if (value === null || typeof value !== "object") return 0;
  let count = 0;
  for (const [key, item] of Object.entries(value)) {
    count += assertStringsWithin(item, max, `${where}.${key}`);
  }
  return count;
}

interface Fixture {
  project: TestProject;
  token: string;
  collection: number;
  deployments: number[];
  event: number;
  hugeTaxon: number;
  taxa: number[];
}

async function createFixture(sql: Sql): Promise<Fixture> {
  const project = await createProject(sql, { draft: false });
  await sql`update users set name = ${HUGE} where id = ${project.userIds.owner}`;
  await sql`update projects set default_score_threshold = 0.5 where id = ${project.projectId}`;
  const id = async (query: Promise<{ id: number }[]>): Promise<number> =>
    Number((await query)[0].id);
  const deployments: number[] = [];
  for (let i = 0; i < 33; i++) {
    const name = i < 3 ? `${HUGE}${i}` : `station ${i}`;
    deployments.push(
      await id(sql`insert into deployments (project_id, name)
        values (${project.projectId}, ${name}) returning id`),
    );
  }
  const event = await id(sql`insert into events (project_id, deployment_id, start, "end")
    values (${project.projectId}, ${deployments[0]}, '2024-06-01T21:00Z', '2024-06-02T05:00Z')
    returning id`);
  const collection = await id(sql`insert into source_image_collections (project_id, name)
    values (${project.projectId}, ${HUGE}) returning id`);
  const hugeTaxon = await id(sql`insert into taxa (name, rank)
    values (${HUGE}, 'SPECIES') returning id`);
  const taxa = [hugeTaxon];
  for (let i = 0; i < 24; i++) {
    taxa.push(
      await id(sql`insert into taxa (name, rank) values (${`Taxon ${i}`}, 'GENUS')
      returning id`),
    );
  }
  for (const taxon of taxa) {
    await sql`insert into project_default_exclude_taxa (project_id, taxon_id)
      values (${project.projectId}, ${taxon})`;
    await sql`insert into project_default_include_taxa (project_id, taxon_id)
      values (${project.projectId}, ${taxon})`;
  }
  return {
    project,
    token: project.tokens.owner,
    collection,
    deployments,
    event,
    hugeTaxon,
    taxa,
  };
}

/** The filters that name every huge thing of the fixture. */
function hugeFilters(f: Fixture): Record<string, unknown> {
  return {
    collection_id: f.collection,
    deployment_ids: f.deployments,
    event_ids: [f.event],
    taxon_id: f.hugeTaxon,
    exclude_taxon_ids: f.taxa,
    apply_project_defaults: true,
  };
}

/** Reads `res` as JSON after checking its status and that its body is small. */
// deno-lint-ignore no-explicit-any -- the tests read many shapes of response
async function smallJson(res: Response, status: number, label: string): Promise<any> {
  const text = await res.text();
  assertEquals(res.status, status, `${label}: ${text.slice(0, 300)}`);
  assert(text.length < SMALL_BYTES, `${label}: ${text.length} bytes`);
  return JSON.parse(text);
}

/** The checks every `filters_display` of the fixture's filters passes. */
// deno-lint-ignore no-explicit-any -- a display document of known shape
function assertDisplayCut(display: Record<string, any>, label: string): void {
  assert(assertStringsWithin(display, MAX_DISPLAY_CHARS, label) > 0, label);
  const deployments = display.deployment_ids;
  assertEquals(deployments.names.length, MAX_ECHO_ITEMS, label);
  assertEquals(deployments.names_omitted, 33 - MAX_ECHO_ITEMS, label);
  assertEquals(deployments.ids.length, MAX_ECHO_ITEMS, label);
  assert(
    /^Deployments: N+…, … and 32 more$/.test(deployments.label),
    `${label}: ${deployments.label.slice(-40)}`,
  );
  assert(display.taxon_id.label.endsWith(`${ELLIPSIS} and its descendants`), label);
  assert(display.exclude_taxon_ids.label.endsWith(" and their descendants"), label);
  assert(display.exclude_taxon_ids.label.includes(" more"), label);
  assert(display.collection_id.label.startsWith("Capture set: NNN"), label);
  assert(display.event_ids.names[0].startsWith("2024-06-01 NNN"), label);
  const defaults: string = display.apply_project_defaults.label;
  assert(defaults.includes("only ") && defaults.includes("excluding "), defaults);
}

Deno.test({
  name: "proportional: 5 MB names come back cut in exports, lists and schedules",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "s3", worker: false });
    try {
      const f = await createFixture(h.sql);
      const filters = hugeFilters(f);
      const created = await smallJson(
        await h.api("POST", "/api/v2/exports/", {
          token: f.token,
          body: { project: f.project.projectId, format: "occurrences_simple_csv", filters },
        }),
        201,
        "create",
      );
      assertDisplayCut(created.filters_display, "create");
      // the filters themselves are the truth: every id stays
      assertEquals(created.filters.deployment_ids, f.deployments);
      assertEquals(width(created.user.name), MAX_DISPLAY_CHARS);
      // what was stored is cut too (the database holds no 10 MB display)
      const [{ bytes }] = await h.sql<{ bytes: number }[]>`
        select pg_column_size(filters_display) as bytes from data_exports where id = ${created.id}`;
      assert(bytes < SMALL_BYTES, `stored filters_display: ${bytes} bytes`);

      const retrieved = await smallJson(
        await h.api("GET", `/api/v2/exports/${created.id}/`, { token: f.token }),
        200,
        "retrieve",
      );
      assertDisplayCut(retrieved.filters_display, "retrieve");
      const page = await smallJson(
        await h.api("GET", `/api/v2/exports/?project_id=${f.project.projectId}`, {
          token: f.token,
        }),
        200,
        "list",
      );
      assertDisplayCut(page.results[0].filters_display, "list");

      const schedule = await smallJson(
        await h.api("POST", "/api/v2/export-schedules/", {
          token: f.token,
          body: {
            project: f.project.projectId,
            format: "occurrences_simple_csv",
            filters,
            interval: "1d",
          },
        }),
        201,
        "schedule create",
      );
      assertDisplayCut(schedule.filters_display, "schedule create");
      assertEquals(width(schedule.user.name), MAX_DISPLAY_CHARS);
      const schedules = await smallJson(
        await h.api("GET", `/api/v2/export-schedules/?project_id=${f.project.projectId}`, {
          token: f.token,
        }),
        200,
        "schedule list",
      );
      assertDisplayCut(schedules.results[0].filters_display, "schedule list");
      await h.temporal.client.schedule.getHandle(schedule.schedule_id).delete();
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "proportional: stored display, errors and job logs of any size come back cut",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "s3", worker: false });
    try {
      const p = await createProject(h.sql, { draft: false });
      const token = p.tokens.basic_member;
      // a row written before the limits existed, by another writer, or by a failed export
      const names = Array.from({ length: 10_000 }, (_, i) => `${HUGE.slice(0, 1000)}${i}`);
      const created = await insertExport(h.sql, {
        userId: p.userIds.owner,
        projectId: p.projectId,
        format: "occurrences_simple_csv",
        filters: {},
        filtersDisplay: {
          deployment_ids: {
            ids: names.map((_, i) => i + 1),
            names,
            label: `Deployments: ${HUGE}`,
          },
        },
      });
      await h
        .sql`update data_exports set status = 'FAILURE', error = ${HUGE} where id = ${created.id}`;
      const errors = Array.from({ length: 500 }, (_, i) => `attempt ${i}: ${HUGE.slice(0, 5000)}`);
      await h.sql`update jobs set progress = jsonb_set(progress, '{errors}', ${
        h.sql.json(errors as never)
      }) where data_export_id = ${created.id}`;
      await appendJobLog(h.sql, created.id, `export failed: ${HUGE}`, "error");
      await appendJobLog(h.sql, created.id, "short line");

      const body = await smallJson(
        await h.api("GET", `/api/v2/exports/${created.id}/?logs=true`, { token }),
        200,
        "retrieve with logs",
      );
      const display = body.filters_display.deployment_ids;
      assertEquals(display.names.length, MAX_ECHO_ITEMS);
      assertEquals(display.names_omitted, 10_000 - MAX_ECHO_ITEMS);
      assertEquals(display.ids_omitted, 10_000 - MAX_ECHO_ITEMS);
      assertEquals(width(display.label), MAX_DISPLAY_CHARS);
      assertStringsWithin(body.filters_display, MAX_DISPLAY_CHARS, "stored display");
      assertEquals(width(body.error), MAX_MESSAGE_CHARS);
      assert(body.error.endsWith(ELLIPSIS));
      assertEquals(body.job.progress.errors.length, MAX_ECHO_ITEMS + 1);
      assertEquals(body.job.progress.errors.at(-1), `${ELLIPSIS} and 480 more`);
      assertStringsWithin(body.job.progress.errors, MAX_MESSAGE_CHARS, "job errors");
      assertEquals(body.logs.length, 2);
      assertEquals(width(body.logs[0].message), MAX_MESSAGE_CHARS);
      assertEquals(body.logs[1].message, "short line");
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "proportional: 400s, 404s and 405s echo at most 20 items and 200-character strings",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "s3", worker: false });
    try {
      const p = await createProject(h.sql, { draft: false });
      const token = p.tokens.owner;
      const exportWith = (filters: unknown, extra: Record<string, unknown> = {}) =>
        h.api("POST", "/api/v2/exports/", {
          token,
          body: { project: p.projectId, format: "occurrences_simple_csv", filters, ...extra },
        });
      const ids = Array.from({ length: 10_000 }, (_, i) => i + 1);

      const tooMany = await smallJson(await exportWith({ deployment_ids: ids }), 400, "10k ids");
      assert(tooMany.error.startsWith("invalid filter deployment_ids: must be a list of"));
      assert(tooMany.error.includes(`[1,2,3,`), tooMany.error);
      assert(tooMany.error.endsWith(`${ELLIPSIS} and 9980 more]`), tooMany.error);

      const manyKeys = Object.fromEntries(ids.map((i) => [`key_${i}_${"k".repeat(80)}`, i]));
      const unknown = await smallJson(await exportWith(manyKeys), 400, "10k unknown filters");
      assert(unknown.error.includes(" more (accepted: "), unknown.error);

      const hugeValue = await smallJson(
        await exportWith({ collection_id: NEAR_LIMIT }),
        400,
        "900 KB filter value",
      );
      assert(hugeValue.error.includes(`got "NNN`), hugeValue.error);

      const nested = await smallJson(
        await exportWith({ event_ids: [ids, { a: ids, b: [[[[ids]]]] }] }),
        400,
        "nested lists",
      );
      assert(nested.error.includes(`and 9980 more`), nested.error);

      const format = await smallJson(
        await h.api("POST", "/api/v2/exports/", {
          token,
          body: { project: p.projectId, format: NEAR_LIMIT },
        }),
        400,
        "900 KB format",
      );
      assert(format.error.startsWith(`unknown export format: NNN`), format.error);

      const strict = await smallJson(
        await exportWith({}, Object.fromEntries(ids.map((i) => [`extra_${i}`, i]))),
        400,
        "10k unknown body keys",
      );
      assert(Object.keys(strict.fields).length <= MAX_ECHO_ITEMS + 1, JSON.stringify(strict));
      assertStringsWithin(strict.fields, MAX_MESSAGE_CHARS, "fields");

      const schedule = await smallJson(
        await h.api("POST", "/api/v2/export-schedules/", {
          token,
          body: {
            project: p.projectId,
            format: HUGE.slice(0, 100_000),
            filters: { exclude_taxon_ids: ids },
            interval: 60,
          },
        }),
        400,
        "schedule with a 100 KB format",
      );
      assert(schedule.error.startsWith("unknown export format: NNN"), schedule.error);

      const tooBig = await smallJson(
        await exportWith({ collection_id: HUGE }),
        413,
        "5 MB filter value",
      );
      assert(tooBig.error.startsWith("request body larger than"), tooBig.error);

      const longPath = "/api/v2/" + "p".repeat(100_000);
      const notFound = await smallJson(await h.api("GET", longPath, { token }), 404, "long path");
      assert(notFound.error.startsWith("no such route: GET /api/v2/ppp"), notFound.error);
      const notAllowed = await smallJson(
        await h.api("PUT", `/api/v2/exports/${"9".repeat(100_000)}/`, { token }),
        405,
        "long id with PUT",
      );
      assert(
        notAllowed.error.includes(`${ELLIPSIS} (allowed: GET, HEAD, DELETE)`),
        notAllowed.error,
      );

      const [{ count }] = await h.sql<{ count: number }[]>`
        select count(*)::int as count from data_exports where project_id = ${p.projectId}`;
      assertEquals(count, 0);
    } finally {
      await h.close();
    }
  },
});
