/**
 * Every filter alone and in combination, against an independent computation: the facts of each
 * valid occurrence (lineage by a recursive walk of `parent_id`, first-appearance date, standing
 * identifications, capture sets) are read with plain SQL and filtered in TypeScript. The shared
 * predicate must select the same ids for the count, a plain `where` and the batched keyset path.
 */
import type { Sql } from "../db/client.ts";
import { seedDemo } from "../db/seed_demo.ts";
import { assert, assertEquals } from "../tests/assert.ts";
import { createSmallProject } from "../tests/fixtures/small_project.ts";
import { serviceTest, testDatabase } from "../tests/support.ts";
import { countOccurrences, occurrencePredicate } from "./filters.ts";
import { occurrenceBatch } from "./occurrence_sql.ts";
import type { ExportFilters, ExportQueryContext } from "./types.ts";

/** What the independent check knows about a valid occurrence. */
interface Facts {
  id: number;
  deployment_id: number | null;
  event_id: number | null;
  determination_id: number;
  score: number | null;
  first_date: string;
  verified: boolean;
  lineage: number[];
  collections: number[];
}

async function facts(sql: Sql, projectId: number): Promise<Facts[]> {
  const rows = await sql<Facts[]>`
    with recursive lineage(taxon_id, ancestor_id) as (
      select id, id from taxa
      union
      select l.taxon_id, t.parent_id from lineage l join taxa t on t.id = l.ancestor_id
      where t.parent_id is not null
    )
    select o.id, o.deployment_id, o.event_id, o.determination_id, o.determination_score as score,
      to_char((select min(d.timestamp) from detections d where d.occurrence_id = o.id)
        at time zone 'UTC', 'YYYY-MM-DD') as first_date,
      o.id in (select occurrence_id from identifications where not withdrawn) as verified,
      array(select ancestor_id from lineage where taxon_id = o.determination_id) as lineage,
      array(select distinct ci.collection_id from detections d
        join source_image_collection_images ci on ci.source_image_id = d.source_image_id
        where d.occurrence_id = o.id) as collections
    from occurrences o
    where o.project_id = ${projectId} and o.determination_id is not null
      and o.id in (select occurrence_id from detections where bbox is not null)
    order by o.id`;
  return rows.map((r) => ({
    ...r,
    id: Number(r.id),
    deployment_id: r.deployment_id === null ? null : Number(r.deployment_id),
    event_id: r.event_id === null ? null : Number(r.event_id),
    determination_id: Number(r.determination_id),
    lineage: r.lineage.map(Number),
    collections: r.collections.map(Number),
  }));
}

interface Defaults {
  threshold: number | null;
  include: number[];
  exclude: number[];
}

function expected(all: Facts[], f: ExportFilters, defaults: Defaults): number[] {
  const inSubtree = (o: Facts, roots: number[]): boolean =>
    o.lineage.some((t) => roots.includes(t));
  return all.filter((o) =>
    (f.collection_id === undefined || o.collections.includes(f.collection_id)) &&
    (f.deployment_ids === undefined || f.deployment_ids.includes(o.deployment_id ?? -1)) &&
    (f.event_ids === undefined || f.event_ids.includes(o.event_id ?? -1)) &&
    (f.taxon_id === undefined || inSubtree(o, [f.taxon_id])) &&
    (f.exclude_taxon_ids === undefined || !inSubtree(o, f.exclude_taxon_ids)) &&
    (f.date_start === undefined || o.first_date >= f.date_start) &&
    (f.date_end === undefined || o.first_date <= f.date_end) &&
    (f.min_score === undefined || (o.score !== null && o.score >= f.min_score)) &&
    (f.verified === undefined || o.verified === f.verified) &&
    (!f.apply_project_defaults || (
      (defaults.threshold === null || (o.score !== null && o.score >= defaults.threshold)) &&
      (defaults.include.length === 0 || inSubtree(o, defaults.include)) &&
      !inSubtree(o, defaults.exclude)
    ))
  ).map((o) => o.id);
}

/** Ids by a plain `where`, by the batched keyset path (batches of 7), and the count. */
async function selected(ctx: ExportQueryContext): Promise<number[]> {
  const { sql } = ctx;
  const plain = (await sql<{ id: number }[]>`
    select o.id from occurrences o where ${occurrencePredicate(ctx)} order by o.id`)
    .map((r) => Number(r.id));
  const batched: number[] = [];
  let afterId: number | null = null;
  for (;;) {
    const rows: { id: number }[] = await sql<{ id: number }[]>`
      ${occurrenceBatch(ctx, { afterId, limit: 7 })} select id from batch order by id`;
    if (rows.length === 0) break;
    batched.push(...rows.map((r) => Number(r.id)));
    afterId = batched[batched.length - 1];
  }
  assertEquals(batched, plain, "batched and plain selections differ");
  assertEquals(Number(await countOccurrences(ctx)), plain.length, "count differs");
  return plain;
}

Deno.test({
  name: "filters: each filter alone on the small project, with descendants and boundary dates",
  ...serviceTest,
  async fn(t) {
    const sql = testDatabase();
    try {
      const p = await createSmallProject(sql);
      const all = await facts(sql, p.projectId);
      assertEquals(all.map((o) => o.id), p.validIds);
      const noDefaults: Defaults = { threshold: null, include: [], exclude: [] };
      const { rich, agreesWithPrediction: agrees, machineOnly, noEvent } = p.occurrences;
      const cases: [string, ExportFilters, number[]][] = [
        ["no filter", {}, p.validIds],
        ["collection_id", { collection_id: p.collectionId }, p.collectionValidIds],
        ["empty collection", { collection_id: p.emptyCollectionId }, []],
        ["deployment_ids", { deployment_ids: [p.deployments.south] }, [machineOnly, noEvent]],
        ["event_ids", { event_ids: [p.events.night1] }, [rich, agrees]],
        ["event_ids, two", { event_ids: [p.events.night1, p.events.night2] }, [
          rich,
          agrees,
          machineOnly,
        ]],
        // Noctuidae: itself (machineOnly) and its species (Agrotis, Catocala)
        ["taxon_id family", { taxon_id: p.taxa.noctuidae }, p.validIds],
        ["taxon_id order", { taxon_id: p.taxa.lepidoptera }, p.validIds],
        ["taxon_id species", { taxon_id: p.taxa.catocala }, [noEvent]],
        ["exclude species", { exclude_taxon_ids: [p.taxa.agrotis] }, [machineOnly, noEvent]],
        ["exclude family", { exclude_taxon_ids: [p.taxa.noctuidae] }, []],
        ["exclude two species", { exclude_taxon_ids: [p.taxa.agrotis, p.taxa.catocala] }, [
          machineOnly,
        ]],
        // first appearances: rich 06-01 22:15, agrees 06-01 23:00, machineOnly 06-03 21:30,
        // noEvent 06-05 01:00 (UTC)
        ["date_start inclusive", { date_start: "2024-06-03" }, [machineOnly, noEvent]],
        ["date_end inclusive", { date_end: "2024-06-03" }, [rich, agrees, machineOnly]],
        ["one day", { date_start: "2024-06-01", date_end: "2024-06-01" }, [rich, agrees]],
        ["empty day", { date_start: "2024-06-02", date_end: "2024-06-02" }, []],
        ["date_start after all", { date_start: "2024-06-06" }, []],
        ["min_score", { min_score: 0.5 }, [rich, agrees, machineOnly]],
        ["min_score 1", { min_score: 1 }, [agrees]],
        ["min_score 0", { min_score: 0 }, p.validIds],
        // machineOnly has only a withdrawn identification: unverified
        ["verified true", { verified: true }, [rich, agrees]],
        ["verified false", { verified: false }, [machineOnly, noEvent]],
        ["defaults with none set", { apply_project_defaults: true }, p.validIds],
        ["combined", {
          deployment_ids: [p.deployments.north, p.deployments.south],
          taxon_id: p.taxa.noctuidae,
          exclude_taxon_ids: [p.taxa.catocala],
          min_score: 0.5,
          verified: false,
        }, [machineOnly]],
      ];
      for (const [name, filters, ids] of cases) {
        await t.step(name, async () => {
          const got = await selected({ sql, projectId: p.projectId, filters });
          assertEquals(got, ids);
          assertEquals(got, expected(all, filters, noDefaults));
        });
      }

      await t.step("apply_project_defaults: threshold, include and exclude taxa", async () => {
        await sql`update projects set default_score_threshold = 0.45 where id = ${p.projectId}`;
        const ctx = { sql, projectId: p.projectId, filters: { apply_project_defaults: true } };
        assertEquals(await selected(ctx), [rich, agrees, machineOnly]);
        await sql`insert into project_default_include_taxa (project_id, taxon_id)
          values (${p.projectId}, ${p.taxa.noctuidae})`;
        await sql`insert into project_default_exclude_taxa (project_id, taxon_id)
          values (${p.projectId}, ${p.taxa.agrotis})`;
        assertEquals(await selected(ctx), [machineOnly]);
        await sql`update projects set default_score_threshold = null where id = ${p.projectId}`;
        assertEquals(await selected(ctx), [machineOnly, noEvent]);
        // not applied: everything
        assertEquals(
          await selected({ ...ctx, filters: { apply_project_defaults: false } }),
          p.validIds,
        );
        const defaults = {
          threshold: null,
          include: [p.taxa.noctuidae],
          exclude: [p.taxa.agrotis],
        };
        assertEquals(expected(all, { apply_project_defaults: true }, defaults), [
          machineOnly,
          noEvent,
        ]);
      });
    } finally {
      await sql.end();
    }
  },
});

Deno.test({
  name: "filters: alone and combined on a demo project equal the independent computation",
  ...serviceTest,
  async fn(t) {
    const sql = testDatabase();
    try {
      const seed = await seedDemo(sql, { occurrences: 1500, seed: 23 });
      const projectId = seed.project_id;
      const all = await facts(sql, projectId);
      assert(all.length > 1000, `only ${all.length} valid occurrences`);
      const [project] = await sql<{ threshold: number | null }[]>`
        select default_score_threshold as threshold from projects where id = ${projectId}`;
      const deployments = [...new Set(all.map((o) => o.deployment_id!))].sort((a, b) => a - b);
      const events = [...new Set(all.map((o) => o.event_id!))].sort((a, b) => a - b);
      // a family and a genus that occur in the data, from the lineages
      const [family] = await sql<{ id: number }[]>`
        select t.id from taxa t where t.rank = 'FAMILY'
          and t.id = any(${[...new Set(all.flatMap((o) => o.lineage))].map(String)}::bigint[])
        order by t.id limit 1`;
      const [genus] = await sql<{ id: number }[]>`
        select t.id from taxa t where t.rank = 'GENUS' and t.parent_id = ${family.id}
        order by t.id limit 1`;
      const dates = [...new Set(all.map((o) => o.first_date))].sort();
      const middle = dates[Math.floor(dates.length / 2)];
      const defaults: Defaults = { threshold: project.threshold, include: [], exclude: [] };
      const cases: [string, ExportFilters][] = [
        ["collection_id", { collection_id: seed.collection_id }],
        ["deployment_ids", { deployment_ids: deployments.slice(0, 2) }],
        ["event_ids", { event_ids: events.slice(1, 4) }],
        ["taxon_id family", { taxon_id: Number(family.id) }],
        ["exclude genus", { exclude_taxon_ids: [Number(genus.id)] }],
        ["date_start", { date_start: middle }],
        ["date_end", { date_end: middle }],
        ["min_score", { min_score: 0.7 }],
        ["verified", { verified: true }],
        ["unverified", { verified: false }],
        ["project defaults", { apply_project_defaults: true }],
        ["family minus genus, verified, dates", {
          taxon_id: Number(family.id),
          exclude_taxon_ids: [Number(genus.id)],
          verified: true,
          date_start: dates[1],
          date_end: dates[dates.length - 2],
        }],
        ["collection, deployment, score, defaults", {
          collection_id: seed.collection_id,
          deployment_ids: [deployments[0]],
          min_score: 0.3,
          apply_project_defaults: true,
        }],
      ];
      for (const [name, filters] of cases) {
        await t.step(name, async () => {
          const want = expected(all, filters, defaults);
          assert(want.length > 0 && want.length < all.length, `${name}: ${want.length} expected`);
          assertEquals(await selected({ sql, projectId, filters }), want);
        });
      }
    } finally {
      await sql.end();
    }
  },
});
