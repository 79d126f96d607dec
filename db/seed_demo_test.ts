// Long because it checks every table the demo generator writes, and each kind of invalid row, one by one.
/** The demo-data generator against the real database: shape, consistency and invalid rows. */
import type { Sql } from "./client.ts";
import { seedDemo, type SeedResult } from "./seed_demo.ts";
import { assert, assertEquals, assertRejects } from "../tests/assert.ts";
import { serviceTest, testDatabase } from "../tests/support.ts";

const N = 2_000;
const SEED = 7;

let seeded: Promise<SeedResult> | undefined;

/** One project of N occurrences shared by the tests below (they only read it). */
function demoProject(): Promise<SeedResult> {
  seeded ??= withSql((sql) => seedDemo(sql, { occurrences: N, seed: SEED }));
  return seeded;
}

async function withSql<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = testDatabase(2);
  try {
    return await fn(sql);
  } finally {
    await sql.end();
  }
}

function between(value: number, low: number, high: number, what: string): void {
  assert(value >= low && value <= high, `${what}: ${value} not in [${low}, ${high}]`);
}

Deno.test({
  name: "seedDemo: row counts are in the expected ranges",
  ...serviceTest,
  async fn() {
    const { project_id: p } = await demoProject();
    await withSql(async (sql) => {
      const [c] = await sql<Record<string, number>[]>`
        select
          (select count(*) from occurrences where project_id = ${p})::int8 as occurrences,
          (select count(*) from deployments where project_id = ${p})::int8 as deployments,
          (select count(*) from events where project_id = ${p})::int8 as events,
          (select count(*) from source_images where project_id = ${p})::int8 as captures,
          (select count(*) from detections d join occurrences o on o.id = d.occurrence_id
            where o.project_id = ${p})::int8 as detections,
          (select count(*) from detections d join occurrences o on o.id = d.occurrence_id
            where o.project_id = ${p} and o.determination_id is not null)::int8 as determined_detections,
          (select count(*) from classifications c join detections d on d.id = c.detection_id
            join occurrences o on o.id = d.occurrence_id where o.project_id = ${p})::int8
            as classifications,
          (select count(*) from identifications i join occurrences o on o.id = i.occurrence_id
            where o.project_id = ${p})::int8 as identifications,
          (select count(distinct role) from project_memberships where project_id = ${p})::int8
            as roles`;
      assertEquals(c.occurrences, N);
      between(c.deployments, 3, 8, "deployments");
      between(c.events, c.deployments * 2, N, "events");
      between(c.captures, c.events * 20, c.events * 300, "captures");
      between(c.detections, 2.6 * N, 3.6 * N, "detections");
      assertEquals(c.classifications, 2 * c.determined_detections, "two per determined detection");
      between(c.identifications, 0.01 * N, 0.08 * N, "identifications");
      assertEquals(c.roles, 4, "every membership role is present");
    });
  },
});

Deno.test({
  name: "seedDemo: stations, nights and captures are consistent",
  ...serviceTest,
  async fn() {
    const { project_id: p } = await demoProject();
    await withSql(async (sql) => {
      const deployments = await sql<
        { latitude: number; longitude: number; country_code: string; events: number }[]
      >`
        select d.latitude, d.longitude, d.country_code,
          (select count(*) from events e where e.deployment_id = d.id)::int8 as events
        from deployments d where d.project_id = ${p}`;
      for (const d of deployments) {
        assert(["US", "PA", "GB"].includes(d.country_code), `country ${d.country_code}`);
        between(d.latitude, 5, 60, "latitude");
        between(d.longitude, -85, 5, "longitude");
        assert(d.events > 0, "a deployment without nights");
      }
      const [e] = await sql<{ bad_events: number; bad_captures: number; per_event: number[] }[]>`
        select
          (select count(*) from events where project_id = ${p}
            and not ("end" - start between interval '9 hours' and interval '12 hours'))::int8
            as bad_events,
          (select count(*) from source_images s join events e on e.id = s.event_id
            where s.project_id = ${p} and (s.timestamp not between e.start and e."end"
              or s.deployment_id <> e.deployment_id or s.width is null or s.size <= 0
              or s.public_base_url not like 'https://%/'))::int8 as bad_captures,
          (select array_agg(n order by n) from (select count(*)::int as n from occurrences
            where project_id = ${p} group by event_id) x) as per_event`;
      assertEquals(e.bad_events, 0, "events last a night");
      assertEquals(e.bad_captures, 0, "captures inside their event, of its deployment");
      assert(e.per_event.at(-1)! > e.per_event[0] * 1.2, `nights all alike: ${e.per_event}`);
    });
  },
});

Deno.test({
  name: "seedDemo: every occurrence has 1–5 detections on consecutive captures of its event",
  ...serviceTest,
  async fn() {
    const { project_id: p } = await demoProject();
    await withSql(async (sql) => {
      const rows = await sql<{ n: number; occurrences: number }[]>`
        select coalesce(x.n, 0)::int as n, count(*)::int as occurrences
        from occurrences o
        left join (select occurrence_id, count(*) as n from detections group by 1) x
          on x.occurrence_id = o.id
        where o.project_id = ${p}
        group by 1 order by 1`;
      assertEquals(rows.map((r) => r.n), [1, 2, 3, 4, 5]);
      const [bad] = await sql<{ n: number }[]>`
        select count(*)::int as n from (
          select o.id from occurrences o
          join detections d on d.occurrence_id = o.id
          join source_images s on s.id = d.source_image_id
          where o.project_id = ${p}
          group by o.id
          having count(distinct s.id) <> count(*)
            or bool_or(s.event_id is distinct from o.event_id)
            or bool_or(s.deployment_id is distinct from o.deployment_id)
            or max(s.id) - min(s.id) <> count(*) - 1
        ) x`;
      assertEquals(bad.n, 0, "occurrences whose detections are not a track in their event");
    });
  },
});

Deno.test({
  name: "seedDemo: every bbox lies inside its capture, and detections carry its timestamp",
  ...serviceTest,
  async fn() {
    const { project_id: p } = await demoProject();
    await withSql(async (sql) => {
      const [r] = await sql<Record<string, number>[]>`
        select
          count(*) filter (where d.bbox is not null)::int as boxed,
          count(*) filter (where d.bbox is not null and not (
            array_length(d.bbox, 1) = 4 and d.bbox[1] >= 0 and d.bbox[2] >= 0
            and d.bbox[1] < d.bbox[3] and d.bbox[2] < d.bbox[4]
            and d.bbox[3] <= s.width and d.bbox[4] <= s.height))::int as outside,
          count(*) filter (where d.timestamp <> s.timestamp)::int as wrong_time,
          count(*) filter (where d.path is null or d.path not like 'crops/%.jpg')::int as no_path
        from detections d
        join occurrences o on o.id = d.occurrence_id
        join source_images s on s.id = d.source_image_id
        where o.project_id = ${p}`;
      assert(r.boxed > 2 * N, `too few boxes: ${r.boxed}`);
      assertEquals(r.outside, 0, "bboxes outside their image");
      assertEquals(r.wrong_time, 0, "detection timestamps differ from their capture's");
      assertEquals(r.no_path, 0, "detections without a crop path");
    });
  },
});

Deno.test({
  name: "seedDemo: taxa parents match the parent_id chains, ORDER → FAMILY → GENUS → SPECIES",
  ...serviceTest,
  async fn() {
    const { project_id: p } = await demoProject();
    await withSql(async (sql) => {
      // The whole tree below every root that the project's taxa hang from.
      const taxa = await sql<
        {
          id: number;
          rank: string;
          parent_rank: string | null;
          parents: unknown;
          chain: unknown;
          gbif_taxon_key: number | null;
          common_name_en: string | null;
          root_name: string;
        }[]
      >`
        with recursive used as (
          select determination_id as id from occurrences
            where project_id = ${p} and determination_id is not null
          union
          select c.taxon_id from classifications c join detections d on d.id = c.detection_id
            join occurrences o on o.id = d.occurrence_id where o.project_id = ${p}
        ), roots as (
          select distinct coalesce((t.parents -> 0 ->> 'id')::int8, t.id) as id
          from taxa t join used u on u.id = t.id
        ), tree as (
          select t.* from taxa t join roots r
            on r.id = coalesce((t.parents -> 0 ->> 'id')::int8, t.id)
        ), chain as (
          select t.id as taxon_id, t.parent_id as ancestor_id, 1 as depth
          from tree t where t.parent_id is not null
          union all
          select c.taxon_id, a.parent_id, c.depth + 1
          from chain c join taxa a on a.id = c.ancestor_id where a.parent_id is not null
        )
        select t.id, t.rank, pt.rank as parent_rank, t.parents, t.gbif_taxon_key,
          t.common_name_en, r.name as root_name,
          coalesce((
            select jsonb_agg(jsonb_build_object('id', a.id, 'name', a.name, 'rank', a.rank)
              order by c.depth desc)
            from chain c join taxa a on a.id = c.ancestor_id where c.taxon_id = t.id
          ), '[]'::jsonb) as chain
        from tree t
        left join taxa pt on pt.id = t.parent_id
        join taxa r on r.id = coalesce((t.parents -> 0 ->> 'id')::int8, t.id)`;
      const parentRank: Record<string, string | null> = {
        ORDER: null,
        FAMILY: "ORDER",
        GENUS: "FAMILY",
        SPECIES: "GENUS",
      };
      for (const t of taxa) {
        assertEquals(t.parents, t.chain, `parents of taxon ${t.id}`);
        assertEquals(t.parent_rank, parentRank[t.rank], `rank above ${t.rank} ${t.id}`);
        assert(t.gbif_taxon_key !== null, `taxon ${t.id} has no gbif_taxon_key`);
      }
      const moths = taxa.filter((t) => t.rank === "SPECIES" && t.root_name === "Lepidoptera");
      between(moths.length, 100, 300, "moth species");
      const named = moths.filter((t) => t.common_name_en !== null).length;
      assert(named > 0 && named < moths.length, `common names on some species: ${named}`);
    });
  },
});

Deno.test({
  name: "seedDemo: classifications and the machine determination of unverified occurrences",
  ...serviceTest,
  async fn() {
    const { project_id: p } = await demoProject();
    await withSql(async (sql) => {
      const [r] = await sql<Record<string, number>[]>`
        with det as (
          select d.id, o.id as occurrence_id
          from detections d join occurrences o on o.id = d.occurrence_id
          where o.project_id = ${p} and o.determination_id is not null
        ), per_detection as (
          select det.id,
            count(*) filter (where c.terminal) as terminal,
            count(*) filter (where not c.terminal) as non_terminal,
            count(distinct c.algorithm_id) as algorithms
          from det left join classifications c on c.detection_id = det.id group by det.id
        ), top as (
          select distinct on (d.occurrence_id) d.occurrence_id, c.taxon_id, c.score
          from classifications c join det d on d.id = c.detection_id
          where c.terminal order by d.occurrence_id, c.score desc
        ), unverified as (
          select o.* from occurrences o
          where o.project_id = ${p} and o.determination_id is not null
            and not exists (select 1 from identifications i
              where i.occurrence_id = o.id and not i.withdrawn)
        )
        select
          (select count(*) from per_detection
            where terminal <> 1 or non_terminal <> 1 or algorithms <> 2)::int as bad_detections,
          (select count(*) from unverified)::int as unverified,
          (select count(*) from unverified u join top t on t.occurrence_id = u.id
            where t.taxon_id <> u.determination_id or t.score <> u.determination_score)::int
            as not_top,
          (select count(*) from classifications c join det d on d.id = c.detection_id
            join top t on t.occurrence_id = d.occurrence_id
            where c.terminal and c.taxon_id <> t.taxon_id)::int as disagreeing`;
      assertEquals(r.bad_detections, 0, "detections without one terminal and one non-terminal");
      assert(r.unverified > 0.9 * N, `unverified occurrences: ${r.unverified}`);
      assertEquals(r.not_top, 0, "unverified determinations that are not the top prediction");
      assert(r.disagreeing > 0, "no detection ever predicts another species");
    });
  },
});

Deno.test({
  name: "seedDemo: the capture set holds 25–35% of the project's captures",
  ...serviceTest,
  async fn() {
    const { project_id: p, collection_id } = await demoProject();
    await withSql(async (sql) => {
      const [r] = await sql<
        { inside: number; foreign: number; captures: number; owner: number }[]
      >`
        select
          (select count(*) from source_image_collection_images ci
            join source_images s on s.id = ci.source_image_id
            where ci.collection_id = ${collection_id} and s.project_id = ${p})::int as inside,
          (select count(*) from source_image_collection_images ci
            join source_images s on s.id = ci.source_image_id
            where ci.collection_id = ${collection_id} and s.project_id <> ${p})::int as foreign,
          (select count(*) from source_images where project_id = ${p})::int as captures,
          (select project_id from source_image_collections where id = ${collection_id}) as owner`;
      assertEquals(r.owner, p, "the capture set's project");
      assertEquals(r.foreign, 0, "captures of another project in the set");
      between(r.inside / r.captures, 0.25, 0.35, "capture set share");
    });
  },
});

Deno.test({
  name: "seedDemo: a few invalid occurrences that exports must skip",
  ...serviceTest,
  async fn() {
    const { project_id: p } = await demoProject();
    await withSql(async (sql) => {
      const [r] = await sql<{ undetermined: number; boxless: number }[]>`
        select
          count(*) filter (where o.determination_id is null)::int as undetermined,
          count(*) filter (where o.determination_id is not null and not exists (
            select 1 from detections d where d.occurrence_id = o.id and d.bbox is not null))::int
            as boxless
        from occurrences o where o.project_id = ${p}`;
      assert(r.undetermined > 0, "no occurrence without a determination");
      assert(r.boxless > 0, "no occurrence whose detections all lack a bbox");
      between(r.undetermined + r.boxless, 2, 0.02 * N, "invalid occurrences");
    });
  },
});

Deno.test({
  name: "seedDemo: identifications mix, agreements and the verified determination",
  ...serviceTest,
  async fn() {
    const { project_id: p } = await demoProject();
    await withSql(async (sql) => {
      const [r] = await sql<Record<string, number>[]>`
        with ids as (
          select i.* from identifications i join occurrences o on o.id = i.occurrence_id
          where o.project_id = ${p}
        ), latest as (
          select distinct on (occurrence_id) occurrence_id, taxon_id from ids
          where not withdrawn order by occurrence_id, created_at desc, id desc
        )
        select
          (select count(*) from ids where withdrawn)::int as withdrawn,
          (select count(*) from ids where agreed_with_prediction_id is not null)::int
            as with_prediction,
          (select count(*) from ids where agreed_with_identification_id is not null)::int
            as with_identification,
          (select count(*) from ids i
            left join classifications c on c.id = i.agreed_with_prediction_id
            left join detections d on d.id = c.detection_id
            where i.agreed_with_prediction_id is not null and (d.occurrence_id is distinct from
              i.occurrence_id or c.taxon_id <> i.taxon_id or not c.terminal))::int
            as bad_prediction_agreements,
          (select count(*) from ids i left join ids a on a.id = i.agreed_with_identification_id
            where i.agreed_with_identification_id is not null and (a.occurrence_id is distinct
              from i.occurrence_id or a.taxon_id <> i.taxon_id or a.created_at >= i.created_at
              or a.user_id = i.user_id))::int as bad_identification_agreements,
          (select count(*) from latest)::int as verified,
          (select count(*) from latest l join occurrences o on o.id = l.occurrence_id
            where o.determination_id is distinct from l.taxon_id)::int as not_latest,
          (select count(*) from (select occurrence_id from ids where not withdrawn
            group by 1 having count(distinct taxon_id) > 1) x)::int as disputed,
          (select count(*) from latest l join taxa t on t.id = l.taxon_id
            where t.rank = 'GENUS')::int as genus_level,
          (select count(*) from ids i join users u on u.id = i.user_id
            where not u.is_superuser and not exists (select 1 from project_memberships m
              where m.project_id = ${p} and m.user_id = i.user_id))::int as strangers`;
      assert(r.withdrawn > 0, "no withdrawn identification");
      assert(r.with_prediction > 0, "no identification agreeing with a prediction");
      assert(r.with_identification > 0, "no identification agreeing with another one");
      assertEquals(r.bad_prediction_agreements, 0, "agreements with a foreign prediction");
      assertEquals(r.bad_identification_agreements, 0, "agreements with a foreign identification");
      between(r.verified, 0.01 * N, 0.06 * N, "verified occurrences");
      assertEquals(
        r.not_latest,
        0,
        "verified determinations that are not the latest identification",
      );
      assert(r.disputed > 0, "no occurrence where a later identification names another taxon");
      assert(r.genus_level > 0, "no genus-level identification");
      assertEquals(r.strangers, 0, "identifications by non-members");
    });
  },
});

Deno.test({
  name: "seedDemo: the token belongs to the owner, a project manager who may export",
  ...serviceTest,
  async fn() {
    const result = await demoProject();
    assert(/^[0-9a-f]{40}$/.test(result.token), `token: ${result.token}`);
    const digest = await crypto.subtle.digest(
      "SHA-256",
      new TextEncoder().encode(result.token),
    );
    const hash = Array.from(new Uint8Array(digest))
      .map((b) => b.toString(16).padStart(2, "0"))
      .join("");
    await withSql(async (sql) => {
      const rows = await sql<{ user_id: number; role: string | null; owner_id: number }[]>`
        select t.user_id, m.role, p.owner_id
        from api_tokens t
        join projects p on p.id = ${result.project_id}
        left join project_memberships m on m.project_id = p.id and m.user_id = t.user_id
        where t.token_hash = ${hash} and t.revoked_at is null`;
      assertEquals(rows.length, 1, "tokens with this hash");
      assertEquals(rows[0].user_id, result.user_id);
      assertEquals(rows[0].role, "project_manager");
      assertEquals(rows[0].owner_id, result.user_id);
    });
  },
});

Deno.test({
  name: "seedDemo: each call adds a distinct project; the same seed gives the same content",
  ...serviceTest,
  async fn() {
    const first = await demoProject();
    await withSql(async (sql) => {
      const again = await seedDemo(sql, { occurrences: N, seed: SEED });
      const other = await seedDemo(sql, { occurrences: N, seed: SEED + 1 });
      const projects = [first.project_id, again.project_id, other.project_id];
      assertEquals(new Set(projects).size, 3, `project ids ${projects}`);
      assertEquals(new Set([first.token, again.token, other.token]).size, 3, "tokens");
      const rows = await sql<{ id: number; slug: string; owner_id: number; users: number[] }[]>`
        select p.id, p.slug, p.owner_id,
          array(select user_id from project_memberships m where m.project_id = p.id) as users
        from projects p where p.id = any(${projects}::int8[])`;
      assertEquals(new Set(rows.map((r) => r.slug)).size, 3, "slugs");
      const members = rows.flatMap((r) => r.users);
      assertEquals(new Set(members).size, members.length, "a user in two demo projects");

      // Content, ids aside: determination and detections of each occurrence, in order.
      const signature = async (project: number): Promise<string[]> => {
        const r = await sql<{ s: string }[]>`
          select coalesce(t.name, '-') || ' ' || coalesce(o.determination_score::text, '-')
            || ' ' || (select string_agg(coalesce(d.bbox::text, '-'), ';' order by d.id)
              from detections d where d.occurrence_id = o.id) as s
          from occurrences o left join taxa t on t.id = o.determination_id
          where o.project_id = ${project} order by o.id`;
        return r.map((x) => x.s);
      };
      const [a, b, c] = await Promise.all(projects.map(signature));
      assertEquals(a.length, N);
      assertEquals(b, a, "same seed, different content");
      assert(c.filter((x, i) => x !== a[i]).length > N / 2, "another seed, same content");

      // Taxa are global: the later projects reuse the tree.
      const [t] = await sql<{ trees: number }[]>`
        select count(distinct (t.parents -> 0 ->> 'id'))::int as trees
        from occurrences o join taxa t on t.id = o.determination_id
        where o.project_id = any(${projects}::int8[]) and t.rank = 'SPECIES'
          and t.parents -> 0 ->> 'name' = 'Lepidoptera'`;
      assertEquals(t.trees, 1, "one Lepidoptera tree for all demo projects");
    });
  },
});

Deno.test({
  name: "seedDemo: rejects an occurrence count that is not a positive integer",
  ...serviceTest,
  async fn() {
    await withSql(async (sql) => {
      await assertRejects(() => seedDemo(sql, { occurrences: 0 }), Error, "occurrences must be");
      await assertRejects(() => seedDemo(sql, { occurrences: 1.5 }), Error, "occurrences must be");
    });
  },
});
