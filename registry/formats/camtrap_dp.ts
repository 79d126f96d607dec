// Long because the Camtrap DP 1.0.2 schemas fix three tables and a descriptor field by field.
/**
 * `camtrap_dp`: a Camera Trap Data Package (Camtrap DP 1.0.2, TDWG; camtrap-dp.tdwg.org), a zip
 * holding the three tables of the standard and their descriptor:
 *
 * - `deployments.csv`: one row per station (`deployments`) holding an exported occurrence;
 *   `deploymentStart`/`deploymentEnd` span its sessions and captures. Keyset on station id.
 * - `media.csv`: one row per capture holding a boxed detection of an exported occurrence of its
 *   own station. Keyset on capture id.
 * - `observations.csv`: per exported occurrence (keyset on occurrence id), one
 *   `observationLevel` `event` row (the occurrence: `eventStart`/`eventEnd` = its first and last
 *   detection, `eventID` = the occurrence id), then one `media` row per boxed detection (a real
 *   box, antenna-compat §4.1) on a capture of its station, in frame order, with the box
 *   normalised to 0–1 by the capture's width and height (`bboxX`, `bboxY`, `bboxWidth`,
 *   `bboxHeight`: top-left corner and size, as Camtrap DP defines them).
 * - `datapackage.json`: the package descriptor with the Camtrap DP profile's required metadata
 *   (`created`, `contributors`, `project`, `spatial`, `temporal`, `taxonomic`), written last so
 *   that the spatial and temporal coverage accumulated while writing the deployments is known.
 *
 * Rules settled here (the schemas leave no choice):
 * - `deployments.latitude`/`longitude` are required (WGS84, −90..90, −180..180): stations without
 *   a valid pair are left out, and with them their occurrences, media and observations; the
 *   count (`record_count` = event observations = occurrences) says so.
 * - Datetimes are `%Y-%m-%dT%H:%M:%S%z` (the table schemas' `format`): no fractional seconds, so
 *   instants are truncated to the second, then written in the station's zone with its offset
 *   (`2023-05-01T22:00:00-04:00`, `Z` for UTC).
 * - Boxes are clipped to the image; a box with no area inside it, or on a capture of unknown
 *   size, is written without `bbox*` (the observation stays).
 * - Impossible times (issue 23, `registry/time_sql.ts`; every datetime here is required, so
 *   nothing can be left empty): a session whose end precedes its start and a capture more than
 *   a day outside its session widen no `deploymentStart`/`deploymentEnd` and set the station's
 *   `timestampIssues` to `true`; such a capture has no `media` row nor media observations; an
 *   occurrence's `eventStart`/`eventEnd` span its detections within a day of its session, and
 *   an occurrence without any is left out (and not counted).
 *
 * Streamed like `dwca` over `registry/zip.ts`: one statement per chunk, a state of cursors, zip
 * offsets, CRC, sizes and the coverage, so a retried export resumes with identical bytes.
 */
import { stringify } from "csv-stringify/sync";
import { decimalText, wgs84 } from "../encoding.ts";
import { capturesOfBatch, standingIdentification, upToShardEnd } from "../batch_sql.ts";
import { keyShardBounds, occurrenceFilterKeys, occurrencePredicate } from "../filters.ts";
import {
  batchOccurrences,
  captureUrl,
  type Fragment,
  gbifTaxonUrl,
  isoTimestamp,
  lineageName,
  occurrenceBatch,
  realBox,
  settingsOf,
  stationZone,
} from "../occurrence_sql.ts";
import { countImpossibleTimes, possibleInterval, sessionTime, withinSession } from "../time_sql.ts";
import {
  type ExportQueryContext,
  type ImpossibleTimeCount,
  type RecordId,
  type ShardBound,
  type StreamExporter,
} from "../types.ts";
import { type MemberBatch, zipArchive, type ZipArchiveState } from "../zip_archive.ts";
import { keyedBatch, occurrencesOf } from "../keyed_batch.ts";
import { defaultLicense } from "./dwca.ts";
import type postgres from "postgres";

/** Where the Camtrap DP 1.0.2 profile and table schemas are published (tdwg/camtrap-dp). */
export const CAMTRAP_DP_BASE = "https://raw.githubusercontent.com/tdwg/camtrap-dp/1.0.2/";

/** `deployments.csv` header: every field of the deployments table schema, in its order. */
export const deploymentFields: readonly string[] = [
  "deploymentID",
  "locationID",
  "locationName",
  "latitude",
  "longitude",
  "coordinateUncertainty",
  "deploymentStart",
  "deploymentEnd",
  "setupBy",
  "cameraID",
  "cameraModel",
  "cameraDelay",
  "cameraHeight",
  "cameraDepth",
  "cameraTilt",
  "cameraHeading",
  "detectionDistance",
  "timestampIssues",
  "baitUse",
  "featureType",
  "habitat",
  "deploymentGroups",
  "deploymentTags",
  "deploymentComments",
];

/** `media.csv` header: every field of the media table schema, in its order. */
export const mediaFields: readonly string[] = [
  "mediaID",
  "deploymentID",
  "captureMethod",
  "timestamp",
  "filePath",
  "filePublic",
  "fileName",
  "fileMediatype",
  "exifData",
  "favorite",
  "mediaComments",
];

/** `observations.csv` header: every field of the observations table schema, in its order. */
export const observationFields: readonly string[] = [
  "observationID",
  "deploymentID",
  "mediaID",
  "eventID",
  "eventStart",
  "eventEnd",
  "observationLevel",
  "observationType",
  "cameraSetupType",
  "scientificName",
  "count",
  "lifeStage",
  "sex",
  "behavior",
  "individualID",
  "individualPositionRadius",
  "individualPositionAngle",
  "individualSpeed",
  "bboxX",
  "bboxY",
  "bboxWidth",
  "bboxHeight",
  "classificationMethod",
  "classifiedBy",
  "classificationTimestamp",
  "classificationProbability",
  "observationTags",
  "observationComments",
];

/** Spatial (WGS84 bounds) and temporal (local dates) coverage of the deployments written. */
interface Coverage {
  [key: string]: number | string;
  west: number;
  east: number;
  south: number;
  north: number;
  /** `YYYY-MM-DD` */
  start: string;
  end: string;
}

/** The package's state: the driver's, and the coverage (null before the first deployment). */
interface CamtrapState extends ZipArchiveState {
  coverage: Coverage | null;
}

/** RFC 4180 with LF line ends; exact values (a data package, not a spreadsheet). */
function csv(rows: Record<string, unknown>[], columns: readonly string[]): string {
  return stringify(rows, { columns: [...columns], record_delimiter: "\n" });
}

/** `t`: station id `d` has a valid WGS84 pair (NULL, NaN, ±Infinity and out of range: no). */
function validCoordinates(sql: postgres.Sql, d: string): Fragment {
  return sql`coalesce(${sql(d)}.latitude between -90 and 90
    and ${sql(d)}.longitude between -180 and 180, false)`;
}

/** The occurrence `o` is exported: the shared predicate, and its station has coordinates. */
function stationHasCoordinates(ctx: ExportQueryContext): Fragment {
  const { sql } = ctx;
  return sql`exists (select 1 from deployments od
    where od.id = o.deployment_id and ${validCoordinates(sql, "od")})`;
}

/**
 * The occurrence `o` has a time: at least one detection within a day of its session
 * (`registry/time_sql.ts`). `eventStart`/`eventEnd` are required, so an occurrence whose every
 * detection time is impossible cannot be written and is left out (issue 23), like a station
 * without coordinates.
 */
function hasPossibleTime(ctx: ExportQueryContext): Fragment {
  const { sql } = ctx;
  return sql`exists (select 1 from detections td
    where td.occurrence_id = o.id and ${withinSession(sql, sql`td.timestamp`, sql`o.event_id`)})`;
}

/** Both conditions the package adds to the shared predicate. */
function publishable(ctx: ExportQueryContext): Fragment {
  return ctx.sql`${stationHasCoordinates(ctx)} and ${hasPossibleTime(ctx)}`;
}

function exported(ctx: ExportQueryContext): Fragment {
  return ctx.sql`${occurrencePredicate(ctx)} and ${publishable(ctx)}`;
}

/**
 * A Camtrap DP datetime of the instant `value`: truncated to the second (the table schemas'
 * format `%Y-%m-%dT%H:%M:%S%z` has no fraction), in `zone` with its offset.
 */
export function camtrapTime(sql: postgres.Sql, value: Fragment, zone: Fragment): Fragment {
  return isoTimestamp(sql, sql`date_trunc('second', ${value})`, zone);
}

/** A float8 as a plain decimal (`numeric` text: 15 significant digits, never an exponent). */
function plain(sql: postgres.Sql, value: Fragment): Fragment {
  return sql`(${value})::numeric::text`;
}

/**
 * Keys (stations, captures, occurrences) in a deflated piece of a table of the package
 * (`ZipArchiveFormat.pieceKeys`; at most `EXPORT_BATCH_SIZE`).
 */
export const CAMTRAP_PIECE_KEYS = 500;

/** Exported occurrences: one statement. */
async function countRecords(ctx: ExportQueryContext): Promise<number> {
  const [row] = await ctx.sql<{ n: number }[]>`
    select count(*)::bigint as n from occurrences o where ${exported(ctx)}`;
  return Number(row.n);
}

/**
 * Impossible times of the package (issue 23): sessions and captures of its stations (left out
 * of `deploymentStart`/`deploymentEnd`, media rows left out), detections of its occurrences
 * (left out of `eventStart`/`eventEnd`), and occurrences with no possible time (left out).
 */
async function impossibleTimes(ctx: ExportQueryContext): Promise<ImpossibleTimeCount[]> {
  const { sql } = ctx;
  const station = (alias: string): Fragment =>
    sql`${sql(alias)}.deployment_id in (select o.deployment_id from occurrences o
      where o.project_id = ${ctx.projectId} and ${exported(ctx)})`;
  return await countImpossibleTimes(sql, [{
    kind: "session_interval",
    effect: "left out of deploymentStart and deploymentEnd, timestampIssues true",
    rows: sql`select not ${possibleInterval(sql, sql`e.start`, sql`e."end"`)} as bad
      from events e where e.project_id = ${ctx.projectId} and ${station("e")}`,
  }, {
    kind: "capture_time",
    universe: "captures",
    effect: "media rows and their media observations left out, " +
      "out of deploymentStart and deploymentEnd, timestampIssues true",
    rows: sql`select not ${withinSession(sql, sql`s.timestamp`, sql`s.event_id`)} as bad
      from source_images s where s.project_id = ${ctx.projectId} and ${station("s")}`,
  }, {
    kind: "detection_time",
    effect: "left out of their occurrence's eventStart and eventEnd",
    universe: "detections",
    rows: sql`select not ${withinSession(sql, sql`d.timestamp`, sql`o.event_id`)} as bad
      from occurrences o join detections d on d.occurrence_id = o.id where ${exported(ctx)}`,
  }, {
    kind: "occurrence_time",
    effect: "left out (no detection within a day of its session: eventStart is required)",
    universe: "occurrences",
    rows: sql`select not ${hasPossibleTime(ctx)} as bad
      from occurrences o where ${occurrencePredicate(ctx)} and ${stationHasCoordinates(ctx)}`,
  }], ctx.projectId);
}

async function deploymentRows(
  ctx: ExportQueryContext,
  afterId: RecordId,
  limit: number,
): Promise<Record<string, unknown>[]> {
  const { sql } = ctx;
  const zone = stationZone(sql, settingsOf(ctx), "d");
  const possible = possibleInterval(sql, sql`e.start`, sql`e."end"`);
  const inSession = withinSession(sql, sql`s.timestamp`, sql`s.event_id`);
  const span = (agg: "min" | "max"): Fragment => {
    const t = sessionTime(sql, sql`sd.timestamp`, sql`o.event_id`);
    return sql`select ${agg === "min" ? sql`min(${t})` : sql`max(${t})`}
      from occurrences o join detections sd on sd.occurrence_id = o.id
      where o.deployment_id = d.id and ${exported(ctx)}`;
  };
  const rows = await sql`
    with batch as (
      select bd.id from deployments bd
      where bd.project_id = ${ctx.projectId} and bd.id > ${afterId}
        and ${validCoordinates(sql, "bd")}
        and (select true from occurrences o
          where o.deployment_id = bd.id and ${exported(ctx)} limit 1)
      order by bd.id
      limit ${limit}
    )
    select
      d.id,
      d.id::text as "deploymentID",
      d.id::text as "locationID",
      d.name as "locationName",
      d.latitude,
      d.longitude,
      -- possible sessions and captures within a day of their session only (issue 23); when
      -- there is none, the station's exported detections (one has a possible time)
      ${camtrapTime(sql, sql`coalesce(least(ev.first, cs.first), (${span("min")}))`, zone)}
        as "deploymentStart",
      ${camtrapTime(sql, sql`coalesce(greatest(ev.last, cs.last), (${span("max")}))`, zone)}
        as "deploymentEnd",
      -- Camtrap DP: "timestamps … known to have (unsolvable) issues"; empty when none
      case when ev.impossible or cs.outside then 'true' end as "timestampIssues",
      nullif(d.description, '') as "deploymentComments"
    from batch
    join deployments d on d.id = batch.id
    cross join lateral (
      select min(e.start) filter (where ${possible}) as first,
        max(e."end") filter (where ${possible}) as last,
        coalesce(bool_or(not ${possible}), false) as impossible
      from events e where e.deployment_id = d.id
    ) ev
    cross join lateral (
      select min(s.timestamp) filter (where ${inSession}) as first,
        max(s.timestamp) filter (where ${inSession}) as last,
        coalesce(bool_or(not ${inSession}), false) as outside
      from source_images s where s.deployment_id = d.id
    ) cs
    order by d.id`;
  return rows.map((row) => {
    const pair = wgs84(row.latitude, row.longitude)!;
    return {
      ...row,
      latitude: decimalText(pair.latitude),
      longitude: decimalText(pair.longitude),
    };
  });
}

/**
 * The captures of `media.csv` (`source_images bs`): those holding a real box of an exported
 * occurrence of their own station, within a day of their session.
 */
function exportedCapture(ctx: ExportQueryContext): Fragment {
  const { sql } = ctx;
  return sql`bs.project_id = ${ctx.projectId}
    -- timestamp is required: a capture more than a day outside its session is left out
    -- with its media observations (issue 23)
    and ${withinSession(sql, sql`bs.timestamp`, sql`bs.event_id`)}
    -- a subplan per capture, not a semi-join: near the end of the captures the planner
    -- expected few left and hashed every detection of the table for each batch (~300 ms)
    and coalesce((
      select true from detections bd
      where bd.source_image_id = bs.id and ${realBox(sql, sql`bd.bbox`)}
        and (select true from occurrences o
          where o.id = bd.occurrence_id and o.deployment_id = bs.deployment_id
            and ${exported(ctx)})
      limit 1
    ), false)`;
}

/** Shard bounds of `media.csv`: its captures, by id. */
function mediaBounds(ctx: ExportQueryContext, every: number): Promise<ShardBound[]> {
  const keys = ctx.sql`select bs.id from source_images bs where ${exportedCapture(ctx)}`;
  return keyShardBounds(ctx, keys, every);
}

/** Shard bounds of `observations.csv`: its occurrences, by id. */
function observationBounds(ctx: ExportQueryContext, every: number): Promise<ShardBound[]> {
  const keys = ctx.sql`select o.id from occurrences o where ${exported(ctx)}`;
  return keyShardBounds(ctx, keys, every);
}

async function mediaRows(
  ctx: ExportQueryContext,
  afterId: RecordId,
  limit: number,
  untilId: RecordId | null = null,
): Promise<Record<string, unknown>[]> {
  const { sql } = ctx;
  const zone = stationZone(sql, settingsOf(ctx), "sd");
  const url = captureUrl(sql, sql`s.public_base_url`, sql`s.path`);
  const until = upToShardEnd(sql, sql`bs.id`, untilId);
  return await sql`
    with batch as (
      select bs.id from source_images bs
      where bs.id > ${afterId} ${until} and ${exportedCapture(ctx)}
      order by bs.id
      limit ${limit}
    )
    select
      s.id,
      s.id::text as "mediaID",
      s.deployment_id::text as "deploymentID",
      -- AMI traps photograph the lit sheet at intervals (the dwca samplingProtocol)
      'timeLapse' as "captureMethod",
      ${camtrapTime(sql, sql`s.timestamp`, zone)} as timestamp,
      -- the public URL; without a base, the storage path (relative: the schema's pattern)
      coalesce(${url}, ltrim(s.path, '/')) as "filePath",
      case when ${url} is null then 'false' else 'true' end as "filePublic",
      nullif(regexp_replace(s.path, '^.*[/\\\\]', ''), '') as "fileName",
      case when s.path ~* '[.]png$' then 'image/png' else 'image/jpeg' end as "fileMediatype"
    ${capturesOfBatch(sql)}`;
}

async function observationRows(
  ctx: ExportQueryContext,
  afterId: RecordId,
  limit: number,
  untilId: RecordId | null = null,
): Promise<{ occurrences: number; lastId: RecordId | null; rows: Record<string, unknown>[] }> {
  const { sql } = ctx;
  const zone = stationZone(sql, settingsOf(ctx), "od");
  const time = (value: Fragment): Fragment => camtrapTime(sql, value, zone);
  const otime = sessionTime(sql, sql`od_t.timestamp`, sql`o.event_id`);
  // the box clipped to the image: x1 ≤ x2, y1 ≤ y2 within [0, width] × [0, height]
  const x1 = sql`greatest(least(md.bbox[1], md.bbox[3]), 0)`;
  const x2 = sql`least(greatest(md.bbox[1], md.bbox[3]), ms.width)`;
  const y1 = sql`greatest(least(md.bbox[2], md.bbox[4]), 0)`;
  const y2 = sql`least(greatest(md.bbox[2], md.bbox[4]), ms.height)`;
  const boxed = sql`(ms.width > 0 and ms.height > 0
    and (${x2} - ${x1}) / ms.width >= 1e-15 and (${y2} - ${y1}) / ms.height >= 1e-15)`;
  const norm = (value: Fragment): Fragment => sql`case when ${boxed} then ${plain(sql, value)} end`;
  const rows = await sql`
    ${occurrenceBatch(ctx, { afterId, limit, untilId }, { also: publishable(ctx) })}
    select
      o.id,
      obs.*,
      o.deployment_id::text as "deploymentID",
      o.id::text as "eventID",
      'animal' as "observationType",
      t.name as "scientificName",
      1 as count,
      case when li.id is null then 'machine' else 'human' end as "classificationMethod",
      coalesce(li.user_label, bp.algorithm_name) as "classifiedBy",
      ${time(sql`coalesce(li.created_at, bp.created_at)`)} as "classificationTimestamp",
      case when o.determination_score between 0 and 1
        then ${plain(sql, sql`o.determination_score`)} end as "classificationProbability",
      case when o.event_id is not null then 'session:' || o.event_id end as "observationTags"
    from ${batchOccurrences(ctx, { afterId })}
    join deployments od on od.id = o.deployment_id
    left join taxa t on t.id = o.determination_id
    -- first and last detection within a day of the session (issue 23; one exists), each
    -- detection's time checked once (offset 0: not once per aggregate)
    cross join lateral (
      select min(od_tt.t) as first, max(od_tt.t) as last
      from (
        select ${otime} as t from detections od_t where od_t.occurrence_id = o.id offset 0
      ) od_tt
    ) ot
    -- the best machine prediction (antenna-compat §4.3) for who classified it and when
    left join lateral (
      select bc.created_at, ba.name as algorithm_name
      from detections bd
      join classifications bc on bc.detection_id = bd.id
      join algorithms ba on ba.id = bc.algorithm_id
      where bd.occurrence_id = o.id
      order by bc.terminal desc, bc.score desc, bc.id desc
      limit 1
    ) bp on true
    ${standingIdentification(ctx)}
    cross join lateral (
      select 0 as n, null::timestamptz as frame_time, null::bigint as frame_id,
        'occurrence-' || o.id as "observationID",
        null::text as "mediaID",
        ${time(sql`ot.first`)} as "eventStart",
        ${time(sql`ot.last`)} as "eventEnd",
        'event' as "observationLevel",
        null::text as "bboxX", null::text as "bboxY",
        null::text as "bboxWidth", null::text as "bboxHeight"
      union all
      select 1, ms.timestamp, md.id,
        'detection-' || md.id,
        ms.id::text,
        ${time(sql`ms.timestamp`)},
        ${time(sql`ms.timestamp`)},
        'media',
        ${norm(sql`${x1} / ms.width`)},
        ${norm(sql`${y1} / ms.height`)},
        ${norm(sql`(${x2} - ${x1}) / ms.width`)},
        ${norm(sql`(${y2} - ${y1}) / ms.height`)}
      from detections md
      join source_images ms on ms.id = md.source_image_id
      where md.occurrence_id = o.id and ${realBox(sql, sql`md.bbox`)}
        and ms.deployment_id = o.deployment_id
        and ${withinSession(sql, sql`ms.timestamp`, sql`ms.event_id`)}
    ) obs
    order by o.id, obs.n, obs.frame_time, obs.frame_id`;
  return { ...occurrencesOf(rows), rows };
}

/** Taxon ranks Camtrap DP's `taxonomic.taxonRank` allows. */
const RANKS = ["kingdom", "phylum", "class", "order", "family", "genus", "species", "subspecies"];

/** `datapackage.json`: the descriptor with the Camtrap DP profile's required properties. */
async function descriptor(ctx: ExportQueryContext, state: CamtrapState): Promise<string> {
  const { sql } = ctx;
  const [project] = await sql<
    { name: string; slug: string; description: string; license: string | null }[]
  >`select name, slug, description, license from projects where id = ${ctx.projectId}`;
  // the owner (contact), then the members (contributors), by user id
  const people = await sql<{ title: string; email: string; role: string }[]>`
    select coalesce(nullif(u.name, ''), u.email) as title, u.email,
      case when u.id = p.owner_id then 'contact' else 'contributor' end as role
    from projects p
    join users u on u.id = p.owner_id
      or u.id in (select m.user_id from project_memberships m where m.project_id = p.id)
    where p.id = ${ctx.projectId}
    order by u.id = p.owner_id desc, u.id`;
  // the taxa of the event observations' scientificName, one entry per name (lowest taxon id)
  const taxa = await sql<Record<string, string | null>[]>`
    select distinct on (t.name)
      t.name as "scientificName",
      ${gbifTaxonUrl(sql, sql`t.gbif_taxon_key`)} as "taxonID",
      lower(t.rank) as "taxonRank",
      ${lineageName(sql, "KINGDOM")} as kingdom,
      ${lineageName(sql, "PHYLUM")} as phylum,
      ${lineageName(sql, "CLASS")} as class,
      ${lineageName(sql, "ORDER")} as "order",
      ${lineageName(sql, "FAMILY")} as family,
      ${lineageName(sql, "GENUS")} as genus,
      t.common_name_en
    from taxa t
    where t.id in (
      select o.determination_id from occurrences o
      where o.project_id = ${ctx.projectId} and ${exported(ctx)})
    order by t.name, t.id`;
  const c = state.coverage;
  const spatial = c === null
    // no deployment: an empty geometry (RFC 7946 §3.1.8) still states "nowhere"
    ? { type: "GeometryCollection", geometries: [] }
    : c.west === c.east || c.south === c.north
    ? { type: "Point", coordinates: [c.west, c.south] }
    : {
      type: "Polygon",
      coordinates: [[
        [c.west, c.south],
        [c.east, c.south],
        [c.east, c.north],
        [c.west, c.north],
        [c.west, c.south],
      ]],
    };
  const license = project?.license || defaultLicense();
  const table = (name: string) => ({
    name,
    path: `${name}.csv`,
    profile: "tabular-data-resource",
    format: "csv",
    mediatype: "text/csv",
    encoding: "utf-8",
    schema: `${CAMTRAP_DP_BASE}${name}-table-schema.json`,
  });
  const title = project?.name ?? `Project ${ctx.projectId}`;
  const doc = {
    resources: [table("deployments"), table("media"), table("observations")],
    profile: `${CAMTRAP_DP_BASE}camtrap-dp-profile.json`,
    name: `ami-project-${ctx.projectId}`,
    created: state.modified,
    title,
    contributors: people.map((p) => ({ title: p.title, email: p.email, role: p.role })),
    ...(project?.description ? { description: project.description } : {}),
    version: "1.0",
    licenses: [{ name: license, scope: "data" }, { name: license, scope: "media" }],
    project: {
      id: String(ctx.projectId),
      title,
      ...(project?.description ? { description: project.description } : {}),
      // light traps attract the target taxa (an attractant is bait, Wearn & Glover-Kapfer 2017)
      samplingDesign: "targeted",
      captureMethod: ["timeLapse"],
      individualAnimals: false,
      observationLevel: ["event", "media"],
    },
    spatial,
    temporal: {
      start: c?.start ?? state.modified.slice(0, 10),
      end: c?.end ?? state.modified.slice(0, 10),
    },
    taxonomic: taxa.map(({ common_name_en, taxonRank, ...t }) => ({
      ...Object.fromEntries(Object.entries(t).filter(([, v]) => v !== null)),
      ...(taxonRank && RANKS.includes(taxonRank) ? { taxonRank } : {}),
      ...(common_name_en ? { vernacularNames: { eng: common_name_en } } : {}),
    })),
    sources: [{ title: "ami-exports", version: "1.0" }],
  };
  return JSON.stringify(doc, null, 2) + "\n";
}

/** Widens `coverage` with the deployments just written (all have valid coordinates). */
function widen(coverage: Coverage | null, rows: Record<string, unknown>[]): Coverage | null {
  let c = coverage;
  for (const row of rows) {
    const lat = Number(row.latitude);
    const lon = Number(row.longitude);
    const start = String(row.deploymentStart ?? "").slice(0, 10);
    const end = String(row.deploymentEnd ?? "").slice(0, 10);
    c = c === null ? { west: lon, east: lon, south: lat, north: lat, start, end } : {
      west: Math.min(c.west, lon),
      east: Math.max(c.east, lon),
      south: Math.min(c.south, lat),
      north: Math.max(c.north, lat),
      start: start && start < c.start ? start : c.start,
      end: end > c.end ? end : c.end,
    };
  }
  return c;
}

/** The header line of a table. */
function header(columns: readonly string[]): string {
  return columns.join(",") + "\n";
}

/** Rows keyed by `id` as one batch of a table member, as CSV. */
function csvBatch(rows: Record<string, unknown>[], columns: readonly string[]): MemberBatch {
  return keyedBatch(rows, rows.length > 0 ? csv(rows, columns) : "");
}

/** The Camera Trap Data Package (`camtrap_dp`): the tables, then the descriptor (the coverage). */
export const camtrapDp: StreamExporter = zipArchive({
  key: "camtrap_dp",
  // 2: tables deflated in pieces of 500 keys (pieceKeys), dated by the request; 3: README.md
  // writes the member descriptions as Markdown (backticks were escaped) and lists the members
  revision: 3,
  label: "Camera Trap Data Package (Camtrap DP 1.0.2)",
  description: "A Camtrap DP 1.0.2 package (zip): deployments.csv (stations), media.csv " +
    "(captures), observations.csv (occurrences as event observations, boxed detections as " +
    "media observations with normalised boxes) and datapackage.json; stations without valid " +
    "coordinates are left out with their occurrences",
  acceptedFilters: occurrenceFilterKeys,
  dataCard: true,
  contents: [
    {
      name: "deployments.csv",
      description: "one row per station holding an exported occurrence: place and first and " +
        "last time (Camtrap DP deployments table)",
      columns: deploymentFields,
    },
    {
      name: "media.csv",
      description: "one row per capture holding a boxed detection of an exported occurrence: " +
        "time, public URL, media type (Camtrap DP media table)",
      columns: mediaFields,
    },
    {
      name: "observations.csv",
      description: "per exported occurrence an event row (determination, classification), then " +
        "a media row per boxed detection with its box as 0–1 of the image (observations table)",
      columns: observationFields,
    },
    {
      name: "datapackage.json",
      description: "the package descriptor: resources, profile, project, contributors, " +
        "licenses, spatial, temporal and taxonomic coverage",
    },
  ],
  count: countRecords,
  impossibleTimes,
  members: [
    {
      name: "deployments.csv",
      head: () => header(deploymentFields),
      async batch(ctx, state, limit): Promise<MemberBatch> {
        const rows = await deploymentRows(ctx, state.afterId, limit);
        const coverage = widen((state as CamtrapState).coverage, rows);
        return { ...csvBatch(rows, deploymentFields), extra: { coverage } };
      },
    },
    {
      name: "media.csv",
      head: () => header(mediaFields),
      async batch(ctx, state, limit, untilId): Promise<MemberBatch> {
        return csvBatch(await mediaRows(ctx, state.afterId, limit, untilId), mediaFields);
      },
      shardBounds: mediaBounds,
    },
    {
      name: "observations.csv",
      head: () => header(observationFields),
      async batch(ctx, state, limit, untilId): Promise<MemberBatch> {
        const batch = await observationRows(ctx, state.afterId, limit, untilId);
        return {
          data: batch.rows.length > 0 ? csv(batch.rows, observationFields) : "",
          lastId: batch.lastId,
          rows: batch.occurrences,
          records: batch.occurrences,
        };
      },
      shardBounds: observationBounds,
      holdsRecords: true,
    },
    { name: "datapackage.json", head: (ctx, state) => descriptor(ctx, state as CamtrapState) },
  ],
  extra: { coverage: null },
  // shards cut media.csv by capture and observations.csv by occurrence; deployments.csv is one
  // unit (a row per station)
  pieceKeys: CAMTRAP_PIECE_KEYS,
});
