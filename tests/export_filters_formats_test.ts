/**
 * Filters and the new formats through HTTP, a real worker and S3 (moto): the formats endpoint,
 * every bad filter answered 400 with nothing created, readable `filters_display`, and each new
 * format exported with filters and checked against independent SQL.
 */
import { parse } from "csv-parse/sync";
import type { Sql } from "../db/client.ts";
import { seedDemo, type SeedResult } from "../db/seed_demo.ts";
import { occurrenceFilterKeys } from "../registry/filters.ts";
import { assert, assertEquals } from "./assert.ts";
import { checkDwca } from "./dwca.ts";
import { createSmallProject } from "./fixtures/small_project.ts";
import { type Harness, startHarness } from "./harness.ts";
import { serviceTest } from "./support.ts";

const decoder = new TextDecoder();

async function post(
  h: Harness,
  seed: SeedResult,
  format: string,
  filters: Record<string, unknown>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await h.api("POST", "/api/v2/exports/", {
    token: seed.token,
    body: { project: seed.project_id, format, filters, force: true },
  });
  return { status: res.status, body: await res.json() };
}

async function exportFile(
  h: Harness,
  seed: SeedResult,
  format: string,
  filters: Record<string, unknown>,
): Promise<{ done: Record<string, unknown>; bytes: Uint8Array }> {
  const created = await post(h, seed, format, filters);
  assertEquals(created.status, 201, JSON.stringify(created.body));
  const done = await h.waitForExport(created.body.id as number, seed.token, 120_000);
  assertEquals(done.status, "SUCCESS", JSON.stringify(done));
  const bytes = await h.download(done.file_url as string);
  assertEquals(done.file_size, bytes.length);
  return { done, bytes };
}

/** Ids of the occurrences the filters below select, by independent SQL. */
async function expectedIds(
  sql: Sql,
  projectId: number,
  f: { taxonId: number; minScore: number; deploymentIds: number[] },
): Promise<number[]> {
  const rows = await sql<{ id: number }[]>`
    with recursive subtree(id) as (
      select ${f.taxonId}::bigint
      union
      select t.id from taxa t join subtree s on t.parent_id = s.id
    )
    select o.id from occurrences o
    where o.project_id = ${projectId} and o.determination_id in (select id from subtree)
      and o.id in (select occurrence_id from detections where bbox is not null)
      and o.determination_score >= ${f.minScore}
      and o.deployment_id in ${sql(f.deploymentIds)}
    order by o.id`;
  return rows.map((r) => Number(r.id));
}

Deno.test({
  name: "filters and new formats through the API",
  ...serviceTest,
  async fn(t) {
    const h = await startHarness({ storage: "s3", batchSize: 150 });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 900, seed: 41 });
      const other = await createSmallProject(h.sql);
      const [family] = await h.sql<{ id: number; name: string }[]>`
        select t.id, t.name from taxa t
        where t.rank = 'FAMILY' and t.id in (
          select (p ->> 'id')::bigint from occurrences o join taxa ot on ot.id = o.determination_id
          cross join jsonb_array_elements(ot.parents) p
          where o.project_id = ${seed.project_id})
        order by t.id limit 1`;
      const deployments = await h.sql<{ id: number; name: string }[]>`
        select id, name from deployments where project_id = ${seed.project_id} order by id`;
      const [event] = await h.sql<{ id: number }[]>`
        select id from events where project_id = ${seed.project_id} order by id limit 1`;
      const filters = {
        taxon_id: Number(family.id),
        min_score: 0.4,
        deployment_ids: deployments.slice(0, 2).map((d) => Number(d.id)),
      };
      const ids = await expectedIds(h.sql, seed.project_id, {
        taxonId: filters.taxon_id,
        minScore: filters.min_score,
        deploymentIds: filters.deployment_ids,
      });
      assert(ids.length > 20, `only ${ids.length} occurrences selected`);

      await t.step("formats endpoint: every format with its accepted filters", async () => {
        const res = await h.api("GET", "/api/v2/exports/formats/", { token: seed.token });
        const body = await res.json();
        const byKey = new Map(
          body.results.map((f: { key: string }) => [f.key, f] as const),
        ) as Map<string, { description: string; accepted_filters: string[] }>;
        for (
          const key of [
            "occurrences_simple_csv",
            "occurrences_api_json",
            "occurrences_ndjson",
            "detections_csv",
            "taxa_list_csv",
            "dwca",
          ]
        ) {
          const format = byKey.get(key);
          assert(format, `${key} is not listed`);
          assert(format.description.length > 20, key);
          assertEquals(format.accepted_filters, [...occurrenceFilterKeys]);
        }
      });

      await t.step("bad filters: 400 naming the filter (and the id), nothing created", async () => {
        const count = async (): Promise<number> =>
          Number((await h.sql`select count(*)::int as n from data_exports`)[0].n);
        const before = await count();
        const cases: [Record<string, unknown>, string[]][] = [
          [{ colour: "red" }, ["unknown filter", "colour", "deployment_ids"]],
          [{ deployment_ids: "north" }, ["invalid filter deployment_ids", "list"]],
          [{ deployment_ids: [] }, ["invalid filter deployment_ids"]],
          [{ deployment_ids: [1.5] }, ["invalid filter deployment_ids"]],
          [{ deployment_ids: [other.deployments.north] }, [
            "deployment_ids",
            "does not belong to project",
            String(other.deployments.north),
          ]],
          [{ deployment_ids: [Number(deployments[0].id), 999999999] }, [
            "deployment_ids",
            "does not exist",
            "999999999",
          ]],
          [{ event_ids: [other.events.night1] }, [
            "event_ids",
            "does not belong to project",
            String(other.events.night1),
          ]],
          [{ event_ids: [999999998] }, ["event_ids", "does not exist", "999999998"]],
          [{ collection_id: other.collectionId }, ["collection_id", "does not belong"]],
          [{ taxon_id: 999999997 }, ["taxon_id", "does not exist", "999999997"]],
          [{ taxon_id: -3 }, ["invalid filter taxon_id"]],
          [{ taxon_id: true }, ["invalid filter taxon_id"]],
          [{ collection_id: "1e3" }, ["invalid filter collection_id"]],
          [{ event_ids: [Number.MAX_SAFE_INTEGER + 2] }, ["invalid filter event_ids"]],
          [{ date_start: "0000-01-01" }, ["invalid filter date_start"]],
          [{ date_start: 20240601 }, ["invalid filter date_start"]],
          [{ min_score: true }, ["invalid filter min_score"]],
          [{ min_score: -0.1 }, ["invalid filter min_score"]],
          [{ exclude_taxon_ids: [Number(family.id), 999999996] }, [
            "exclude_taxon_ids",
            "999999996",
          ]],
          [{ date_start: "2024-13-01" }, ["invalid filter date_start", "YYYY-MM-DD"]],
          [{ date_end: "2024-02-30" }, ["invalid filter date_end"]],
          [{ date_start: "2024-06-02", date_end: "2024-06-01" }, ["date_end", "date_start"]],
          [{ min_score: 1.5 }, ["invalid filter min_score", "0 to 1"]],
          [{ min_score: "high" }, ["invalid filter min_score"]],
          [{ verified: "maybe" }, ["invalid filter verified", "true"]],
          [{ apply_project_defaults: 3 }, ["invalid filter apply_project_defaults"]],
        ];
        for (const [bad, needles] of cases) {
          const res = await post(h, seed, "occurrences_ndjson", bad);
          assertEquals(res.status, 400, `${JSON.stringify(bad)}: ${JSON.stringify(res.body)}`);
          const message = String(res.body.error);
          for (const needle of needles) {
            assert(
              message.includes(needle),
              `${JSON.stringify(bad)}: "${message}" lacks ${needle}`,
            );
          }
        }
        const unknown = await post(h, seed, "dwca", { colour: "red" });
        const accepted = unknown.body.accepted_filters as Record<string, string>;
        assertEquals(Object.keys(accepted), [...occurrenceFilterKeys]);
        assertEquals(await count(), before);
      });

      await t.step("occurrences_ndjson: ids equal SQL; filters_display names things", async () => {
        const { done, bytes } = await exportFile(h, seed, "occurrences_ndjson", {
          ...filters,
          event_ids: undefined,
          verified: null,
        });
        const lines = decoder.decode(bytes).trimEnd().split("\n").map((l) => JSON.parse(l));
        assertEquals(lines.map((o) => o.id), ids);
        assertEquals(done.record_count, ids.length);
        const display = done.filters_display as Record<string, { label: string }>;
        assertEquals(Object.keys(display).sort(), ["deployment_ids", "min_score", "taxon_id"]);
        assert(display.taxon_id.label.includes(family.name), display.taxon_id.label);
        assert(display.deployment_ids.label.includes(deployments[0].name));
        assert(display.min_score.label.includes("0.4"));
        assertEquals(done.filters, filters);
      });

      await t.step(
        "detections_csv: one row per detection of the exported occurrences",
        async () => {
          const { done, bytes } = await exportFile(h, seed, "detections_csv", filters);
          const rows = parse(decoder.decode(bytes), { columns: true }) as Record<string, string>[];
          const [{ n }] = await h.sql<{ n: number }[]>`
          select count(*)::int as n from detections where occurrence_id in ${h.sql(ids)}`;
          assertEquals(rows.length, n);
          assertEquals(done.record_count, n);
          assertEquals([...new Set(rows.map((r) => Number(r.occurrence_id)))], ids);
          const keys = rows.map((r) => [Number(r.occurrence_id), Number(r.detection_id)]);
          const sorted = [...keys].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
          assertEquals(keys, sorted);
        },
      );

      await t.step("taxa_list_csv: counts and scores equal SQL aggregates", async () => {
        const { done, bytes } = await exportFile(h, seed, "taxa_list_csv", filters);
        const rows = parse(decoder.decode(bytes), { columns: true }) as Record<string, string>[];
        const want = await h.sql<
          {
            id: number;
            n: number;
            verified: number;
            min: number;
            max: number;
            deployments: number;
            events: number;
          }[]
        >`
          select o.determination_id as id, count(*)::int as n,
            count(*) filter (where o.id in (
              select occurrence_id from identifications where not withdrawn))::int as verified,
            min(o.determination_score) as min, max(o.determination_score) as max,
            count(distinct o.deployment_id)::int as deployments,
            count(distinct o.event_id)::int as events
          from occurrences o where o.id in ${h.sql(ids)}
          group by o.determination_id order by o.determination_id`;
        assertEquals(
          rows.map((r) => ({
            id: Number(r.taxon_id),
            n: Number(r.occurrence_count),
            verified: Number(r.verified_count),
            min: Number(r.determination_score_min),
            max: Number(r.determination_score_max),
            deployments: Number(r.deployments_count),
            events: Number(r.events_count),
          })),
          want.map((w) => ({ ...w, id: Number(w.id) })),
        );
        assertEquals(done.record_count, want.length);
        assert(rows.every((r) => r.family_name === family.name));
      });

      await t.step("dwca: a valid archive, counts and links equal SQL", async () => {
        const dwcaFilters = { ...filters, event_ids: [Number(event.id)] };
        const withEvent = await h.sql<{ id: number }[]>`
          select id from occurrences where id in ${h.sql(ids)} and event_id = ${event.id}`;
        const { done, bytes } = await exportFile(h, seed, "dwca", {
          taxon_id: filters.taxon_id,
          min_score: filters.min_score,
        });
        const report = await checkDwca(bytes);
        assertEquals(report.testzip, null);
        const [{ events }] = await h.sql<{ events: number }[]>`
          with recursive subtree(id) as (
            select ${filters.taxon_id}::bigint
            union select t.id from taxa t join subtree s on t.parent_id = s.id
          )
          select count(distinct o.event_id)::int as events from occurrences o
          where o.project_id = ${seed.project_id} and o.determination_id in (select id from subtree)
            and o.determination_score >= ${filters.min_score} and o.event_id is not null
            and o.id in (select occurrence_id from detections where bbox is not null)`;
        assertEquals(report.files["event.txt"].rows, events);
        assertEquals(report.files["occurrence.txt"].rows, done.record_count);
        assertEquals(
          report.reader.extensions["http://rs.tdwg.org/dwc/terms/Occurrence"].linked,
          done.record_count,
        );
        for (const f of Object.values(report.files)) assertEquals(f.dangling, 0);

        const narrow = await exportFile(h, seed, "dwca", dwcaFilters);
        const narrowReport = await checkDwca(narrow.bytes);
        assertEquals(narrowReport.reader.core_rows, withEvent.length > 0 ? 1 : 0);
        assertEquals(narrow.done.record_count, withEvent.length);
      });
    } finally {
      await h.close();
    }
  },
});
