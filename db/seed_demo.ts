/**
 * The demo-data generator: one realistic moth-monitoring project per call, written with a few
 * set-based statements so that a million occurrences load in minutes.
 *
 * Randomness comes from `hashint8extended(ordinal, seed·1024 + salt)`: every value is a pure
 * function of the seed and a row's ordinal (never of ids or row order), so the same seed gives
 * the same content in any database. Ids are reserved as contiguous ranges, so rows can refer to
 * each other by arithmetic (detection j of occurrence k is `detectionBase + start(k) + j`)
 * instead of by lookups.
 *
 * What it generates is pure data in `seed_demo_data.ts` (stations, algorithms, people, the
 * project's shape) and `seed_demo_taxa.ts` (the taxon tree); this file and
 * `seed_demo_occurrences.ts` write it.
 */
import type postgres from "postgres";
import type { Sql } from "./client.ts";
import {
  BINARY_ALGORITHM,
  DEMO_PEOPLE,
  type DemoAlgorithm,
  type DemoUsers,
  FIRST_NIGHT,
  projectShape,
  PUBLIC_BASE_URL,
  SPECIES_ALGORITHM,
  STATIONS,
} from "./seed_demo_data.ts";
import { insertOccurrenceRows, planOccurrences } from "./seed_demo_occurrences.ts";
import {
  orderOf,
  parentKey,
  type TaxonArrays,
  taxonArrays,
  taxonNodes,
  TREE,
} from "./seed_demo_taxa.ts";

/** What to generate. */
export interface SeedOptions {
  /** Rows to write to `occurrences` (about 0.5% of them invalid on purpose). */
  occurrences: number;
  /** Drives every pseudo-random choice; the same seed gives the same content. Default 42. */
  seed?: number;
}

/** The project written, and the credentials of its owner (a project manager). */
export interface SeedResult {
  project_id: number;
  collection_id: number;
  user_id: number;
  /** Plain API token of `user_id`; only its sha256 is stored. */
  token: string;
}

type Tx = postgres.TransactionSql;
type Fragment = postgres.PendingQuery<postgres.Row[]>;

/** Serialises concurrent seeders (taxon tree creation and id range reservation). */
const SEED_LOCK = 727_002;

/**
 * Writes one new demo project of `options.occurrences` occurrences and returns its ids and the
 * owner's API token. Holds exclusive locks on the bulk tables while it writes (readers are not
 * blocked), then runs `ANALYZE` on them: autovacuum is off where this runs.
 */
export async function seedDemo(sql: Sql, options: SeedOptions): Promise<SeedResult> {
  const n = options.occurrences;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new Error(`occurrences must be a positive integer: ${n}`);
  }
  const seed = options.seed ?? 42;
  if (!Number.isSafeInteger(seed) || Math.abs(seed) > 2 ** 40) {
    throw new Error(`seed must be an integer of at most 2^40: ${seed}`);
  }
  const token = randomHex(20);
  const tokenHash = await sha256Hex(token);
  const result = await sql.begin((tx) => writeProject(tx, n, seed, token, tokenHash));
  await sql`
    analyze taxa, algorithms, users, api_tokens, projects, project_memberships, deployments,
      events, source_images, source_image_collections, source_image_collection_images,
      occurrences, detections, classifications, identifications`;
  return result;
}

async function writeProject(
  tx: Tx,
  n: number,
  seed: number,
  token: string,
  tokenHash: string,
): Promise<SeedResult> {
  await tx`set local synchronous_commit = off`;
  await tx`set local work_mem = '512MB'`;
  await tx`set local timezone = 'UTC'`;
  await tx`select pg_advisory_xact_lock(${SEED_LOCK})`;

  const species = await ensureTaxa(tx);
  const [binaryAlgorithm, speciesAlgorithm] = [
    await ensureAlgorithm(tx, BINARY_ALGORITHM),
    await ensureAlgorithm(tx, SPECIES_ALGORITHM),
  ];

  const { stations, nights, events, captures, captureSeconds, images } = projectShape(n);

  const [{ id: projectId }] = await tx<{ id: number }[]>`
    select nextval(pg_get_serial_sequence('projects', 'id')) as id`;
  const users = await createUsers(tx, projectId, tokenHash);

  await tx`
    insert into projects (id, name, slug, description, draft, owner_id, license,
      default_score_threshold)
    values (${projectId}, ${`Demo moth survey ${projectId}`}, ${`demo-${projectId}`},
      ${`Generated demo data (seed ${seed}): ${n} occurrences from ${stations} light-trap stations in Vermont, Panama and the UK.`},
      false, ${users.manager}, 'CC-BY-4.0', 0.5)`;
  await tx`
    insert into project_memberships (project_id, user_id, role)
    values (${projectId}, ${users.manager}, 'project_manager'),
      (${projectId}, ${users.researcher1}, 'researcher'),
      (${projectId}, ${users.researcher2}, 'researcher'),
      (${projectId}, ${users.member}, 'basic_member'),
      (${projectId}, ${users.mlManager}, 'ml_data_manager')`;
  const [{ id: collectionId }] = await tx<{ id: number }[]>`
    insert into source_image_collections (project_id, name, description)
    values (${projectId}, 'Random sample (30%)',
      'About 30% of the project''s captures, drawn at random')
    returning id`;

  // The bulk tables: lock, then reserve one contiguous id range per table.
  for (
    const table of [
      "deployments",
      "events",
      "source_images",
      "occurrences",
      "detections",
      "classifications",
      "identifications",
    ]
  ) {
    await tx`lock table ${tx(table)} in exclusive mode`;
  }
  const stationList = STATIONS.slice(0, stations);
  const deploymentBase = await reserveIds(tx, "deployments", stations);
  const eventBase = await reserveIds(tx, "events", events);
  const imageBase = await reserveIds(tx, "source_images", images);
  const occurrenceBase = await reserveIds(tx, "occurrences", n);

  // Uniform [0, 1) from the seed, a salt and a row ordinal.
  const rnd = (ordinal: Fragment, salt: number): Fragment =>
    tx`((hashint8extended(${ordinal}, ${seed * 1024 + salt}::int8) & 4503599627370495)::float8
      / 4503599627370496.0)`;
  const widths = `{${stationList.map((s) => s.w).join(",")}}`;
  const heights = `{${stationList.map((s) => s.h).join(",")}}`;
  const latitudes = stationList.map((s) => s.lat);
  const longitudes = stationList.map((s) => s.lon);

  await tx`
    insert into deployments (id, project_id, name, description, latitude, longitude, country_code,
      time_zone)
    select ${deploymentBase}::int8 + i - 1, ${projectId}, name, 'Light trap with a camera',
      lat, lon, cc, tz
    from unnest(${stationList.map((s) => s.name)}::text[], ${latitudes}::float8[],
      ${longitudes}::float8[], ${stationList.map((s) => s.cc)}::text[],
      ${stationList.map((s) => s.tz)}::text[])
      with ordinality as s(name, lat, lon, cc, tz, i)`;

  // Night n of station d is event d·nights + n: 20:00 station time (its IANA zone, DST
  // included) plus up to 15 min.
  await tx`
    insert into events (id, project_id, deployment_id, start, "end")
    select ${eventBase}::int8 + e, ${projectId}, ${deploymentBase}::int8 + e / ${nights},
      s.start, s.start + make_interval(hours => 10, mins => floor(${rnd(tx`e`, 1)} * 45)::int)
    from generate_series(0::int8, ${events - 1}::int8) e
    cross join lateral (
      select (${FIRST_NIGHT}::timestamp + make_interval(
        days => (e % ${nights})::int,
        hours => 20,
        mins => floor(${rnd(tx`e`, 2)} * 15)::int))
        at time zone (${stationList.map((s) => s.tz)}::text[])[e / ${nights} + 1] as start
    ) s`;

  // Capture c of event e is image e·captures + c, every captureSeconds from the event start.
  await tx`
    insert into source_images (id, project_id, deployment_id, event_id, path, public_base_url,
      timestamp, width, height, size)
    select ${imageBase}::int8 + ev.e * ${captures} + c, ${projectId}, ev.deployment_id, ev.id,
      ${`demo-${projectId}/station-`} || (ev.d + 1) || '/' || to_char(t.ts, 'YYYY-MM-DD') || '/'
        || to_char(t.ts, 'YYYYMMDDHH24MISS') || '-snapshot.jpg',
      ${PUBLIC_BASE_URL}, t.ts, (${widths}::int[])[ev.d + 1], (${heights}::int[])[ev.d + 1],
      1200000 + floor(${rnd(tx`ev.e * ${captures} + c`, 3)} * 1800000)::int8
    from (
      select id, deployment_id, start, id - ${eventBase}::int8 as e,
        (id - ${eventBase}::int8) / ${nights} as d
      from events where id between ${eventBase}::int8 and ${eventBase + events - 1}::int8
    ) ev
    cross join generate_series(0, ${captures - 1}) c
    cross join lateral (select ev.start + make_interval(secs => c * ${captureSeconds}) as ts) t`;

  await tx`
    insert into source_image_collection_images (collection_id, source_image_id)
    select ${collectionId}, ${imageBase}::int8 + i
    from generate_series(0::int8, ${images - 1}::int8) i
    where ${rnd(tx`i`, 4)} < 0.3`;

  await planOccurrences(tx, {
    n,
    events,
    nights,
    captures,
    eventBase,
    occurrenceBase,
    widths,
    heights,
    species,
    rnd,
  });
  const [{ detections, identified }] = await tx<{ detections: number; identified: number }[]>`
    select coalesce(sum(nd), 0)::int8 as detections,
      count(*) filter (where id_kind > 0)::int8 as identified
    from demo_occ`;
  const detectionBase = await reserveIds(tx, "detections", detections);
  const classificationBase = await reserveIds(tx, "classifications", 2 * detections);
  const identificationBase = await reserveIds(tx, "identifications", 2 * identified);

  await insertOccurrenceRows(tx, {
    projectId,
    imageBase,
    captures,
    captureSeconds,
    detectionBase,
    classificationBase,
    identificationBase,
    species,
    binaryAlgorithm,
    speciesAlgorithm,
    users,
    rnd,
  });

  await tx`drop table demo_occ`;
  return { project_id: projectId, collection_id: collectionId, user_id: users.manager, token };
}

/**
 * Finds the demo taxon tree (taxa are global) or creates it. Reuse needs every node of the tree
 * under one root per order, so a lone "Lepidoptera" made by someone else is never mistaken for
 * it.
 */
async function ensureTaxa(tx: Tx): Promise<TaxonArrays> {
  const nodes = taxonNodes();
  const rows = await tx<
    { id: number; name: string; rank: string; parent_id: number | null; root: number }[]
  >`
    select id, name, rank, parent_id, coalesce((parents -> 0 ->> 'id')::int8, id) as root
    from taxa where name = any(${nodes.map((x) => x.name)}::text[])
    order by id`;
  const byKey = new Map<string, number>();
  for (const order of TREE) {
    const wanted = nodes.filter((x) => x.name === order.order || orderOf(nodes, x) === order.order);
    const roots = rows.filter((r) =>
      r.name === order.order && r.rank === "ORDER" && r.parent_id === null
    );
    for (const root of roots) {
      const found = new Map<string, number>();
      for (const r of rows) if (r.root === root.id) found.set(`${r.rank}:${r.name}`, r.id);
      if (wanted.every((x) => found.has(`${x.rank}:${x.name}`))) {
        for (const x of wanted) byKey.set(`${x.rank}:${x.name}`, found.get(`${x.rank}:${x.name}`)!);
        break;
      }
    }
  }
  if (byKey.size !== nodes.length) {
    byKey.clear();
    for (const rank of ["ORDER", "FAMILY", "GENUS", "SPECIES"] as const) {
      const level = nodes.filter((x) => x.rank === rank);
      const parentIds = level.map((x) => (x.parent === null ? 0 : byKey.get(parentKey(nodes, x))!));
      const created = await tx<{ id: number; name: string }[]>`
        insert into taxa (name, rank, parent_id, parents, gbif_taxon_key, common_name_en)
        select x.name, ${rank}, p.id,
          coalesce(p.parents || jsonb_build_array(
            jsonb_build_object('id', p.id, 'name', p.name, 'rank', p.rank)), '[]'::jsonb),
          x.gbif, nullif(x.common, '')
        from unnest(${level.map((x) => x.name)}::text[], ${parentIds}::int8[],
          ${level.map((x) => x.gbif)}::int8[], ${level.map((x) => x.common)}::text[])
          with ordinality as x(name, parent_id, gbif, common, i)
        left join taxa p on p.id = x.parent_id
        order by x.i
        returning id, name`;
      for (const r of created) byKey.set(`${rank}:${r.name}`, r.id);
    }
  }
  return taxonArrays(nodes, byKey);
}

async function ensureAlgorithm(
  tx: Tx,
  algorithm: DemoAlgorithm,
): Promise<number> {
  await tx`
    insert into algorithms (name, key, version, description, task_type, uri)
    values (${algorithm.name}, ${algorithm.key}, ${algorithm.version}, ${algorithm.description},
      ${algorithm.taskType}, ${algorithm.uri})
    on conflict (key) do nothing`;
  const [{ id }] = await tx<
    { id: number }[]
  >`select id from algorithms where key = ${algorithm.key}`;
  return id;
}

/** The project's people: an owner (project manager, holds the token), members, an admin. */
async function createUsers(
  tx: Tx,
  projectId: number,
  tokenHash: string,
): Promise<DemoUsers> {
  const ids: Record<string, number> = {};
  for (const [role, name, superuser] of DEMO_PEOPLE) {
    const [{ id }] = await tx<{ id: number }[]>`
      insert into users (email, name, is_superuser, image)
      values (${`demo-${projectId}-${role.toLowerCase()}@example.org`}, ${name}, ${superuser},
        ${role === "manager" || role === "researcher1" ? `users/${role.toLowerCase()}.jpg` : null})
      returning id`;
    ids[role] = id;
  }
  await tx`
    insert into api_tokens (user_id, token_hash, name)
    values (${ids.manager}, ${tokenHash}, 'demo')`;
  return {
    manager: ids.manager,
    researcher1: ids.researcher1,
    researcher2: ids.researcher2,
    member: ids.member,
    mlManager: ids.mlManager,
    admin: ids.admin,
  };
}

/**
 * First id of a fresh contiguous range of `count` ids of `table`. The caller holds an exclusive
 * lock on the table, so no concurrent insert can draw from the range.
 */
async function reserveIds(tx: Tx, table: string, count: number): Promise<number> {
  const [{ base }] = await tx<{ base: number }[]>`
    select nextval(pg_get_serial_sequence(${table}, 'id')) as base`;
  if (count > 1) {
    await tx`select setval(pg_get_serial_sequence(${table}, 'id'), ${base + count - 1}::int8)`;
  }
  return base;
}

function randomHex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)))
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest)).map((b) => b.toString(16).padStart(2, "0")).join("");
}
