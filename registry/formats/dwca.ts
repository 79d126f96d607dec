// Long because a Darwin Core Archive is three term-mapped files plus meta.xml and EML 2.2.0.
/**
 * `dwca`: a Darwin Core Archive (zip) for GBIF with an Event core.
 *
 * - `event.txt` (core): one row per event (monitoring session) holding at least one exported
 *   occurrence, keyset on event id.
 * - `occurrence.txt` (extension, `coreid` = eventID): one row per valid, filtered occurrence that
 *   has an event (an occurrence without an event has no core row to link to and is left out;
 *   the count says so), keyset on occurrence id.
 * - `multimedia.txt` (GBIF Simple Multimedia, `coreid` = eventID): the best detection's crop
 *   and its capture image for each exported occurrence.
 * - `meta.xml` (the archive descriptor) and `eml.xml` (EML 2.2.0 metadata, with geographic and
 *   temporal coverage accumulated while the events were written).
 *
 * Impossible times (issue 23, `registry/time_sql.ts`): an event whose end precedes its start
 * has no `eventDate` (Darwin Core: an ISO 8601 interval runs forwards), no `sampleSizeValue`
 * (it would be negative) nor `sampleSizeUnit`, and widens no EML temporal coverage; a
 * multimedia `created` more than a day outside its session is left empty.
 *
 * The archive is a {@link StreamExporter} over `registry/zip.ts`: one statement per chunk, and a
 * state that holds only cursors, zip offsets, CRC and sizes, so memory stays flat and a retried
 * export resumes from any checkpoint with identical bytes.
 */
import { decimalText, wgs84, xmlText } from "../encoding.ts";
import { standingIdentification } from "../batch_sql.ts";
import { keyShardBounds, occurrenceFilterKeys, occurrencePredicate } from "../filters.ts";
import {
  batchDetectionSets,
  batchOccurrences,
  bestDetection,
  type Fragment,
  gbifTaxonUrl,
  isoTimestamp,
  lineageName,
  mediaUrl,
  occurrenceBatch,
  settingsOf,
  stationZone,
} from "../occurrence_sql.ts";
import {
  countImpossibleTimes,
  ifPossibleInterval,
  possibleInterval,
  sessionTime,
  withinSession,
} from "../time_sql.ts";
import {
  type ExportQueryContext,
  type ImpossibleTimeCount,
  type RecordId,
  type ShardBound,
  type StreamExporter,
  type StreamState,
} from "../types.ts";
import { type MemberBatch, zipArchive, type ZipArchiveState } from "../zip_archive.ts";
import { keyedBatch, occurrencesOf } from "../keyed_batch.ts";

const DWC = "http://rs.tdwg.org/dwc/terms/";
const DC = "http://purl.org/dc/terms/";

/** A column of a data file: the SQL alias, its header and its term URI. */
interface Column {
  name: string;
  term: string;
}

function dwc(name: string): Column {
  return { name, term: DWC + name };
}

function dc(name: string): Column {
  return { name, term: DC + name };
}

/** `event.txt`, in file order; `eventID` (index 0) is the core id. */
export const eventColumns: readonly Column[] = [
  dwc("eventID"),
  dwc("eventDate"),
  dwc("samplingProtocol"),
  dwc("sampleSizeValue"),
  dwc("sampleSizeUnit"),
  dwc("locationID"),
  dwc("locality"),
  dwc("decimalLatitude"),
  dwc("decimalLongitude"),
  dwc("geodeticDatum"),
  dwc("countryCode"),
];

/** `occurrence.txt`, in file order; `eventID` (index 0) links to the core. */
export const occurrenceColumns: readonly Column[] = [
  dwc("eventID"),
  dwc("occurrenceID"),
  dwc("basisOfRecord"),
  dwc("occurrenceStatus"),
  dwc("individualCount"),
  dwc("scientificName"),
  dwc("taxonRank"),
  dwc("vernacularName"),
  dwc("kingdom"),
  dwc("phylum"),
  dwc("class"),
  dwc("order"),
  dwc("family"),
  dwc("genus"),
  dwc("taxonID"),
  dwc("identifiedBy"),
  dwc("dateIdentified"),
  dwc("identificationVerificationStatus"),
  dwc("associatedMedia"),
];

/** `multimedia.txt` (GBIF Simple Multimedia), in file order; index 0 links to the core. */
export const multimediaColumns: readonly Column[] = [
  dwc("eventID"),
  dc("type"),
  dc("format"),
  dc("identifier"),
  dc("title"),
  dc("description"),
  dc("created"),
];

const SAMPLING_PROTOCOL =
  "Automated light trap with a camera (AMI): insects attracted to a light sheet are " +
  "photographed at intervals and detected and identified by machine learning models";

/** The license written to `eml.xml` when the project names none (env `DWCA_DEFAULT_LICENSE`). */
export function defaultLicense(): string {
  return Deno.env.get("DWCA_DEFAULT_LICENSE") || "CC-BY-4.0";
}

const LICENSE_URLS: Record<string, string> = {
  "CC0-1.0": "http://creativecommons.org/publicdomain/zero/1.0/legalcode",
  "CC-BY-4.0": "http://creativecommons.org/licenses/by/4.0/legalcode",
  "CC-BY-NC-4.0": "http://creativecommons.org/licenses/by-nc/4.0/legalcode",
};

interface Coverage {
  [key: string]: number | string | null;
  west: number;
  east: number;
  south: number;
  north: number;
  /** First and last possible session instants (ISO 8601); null while there is none. */
  begin: string | null;
  end: string | null;
}

/** A TSV cell: tabs and line breaks would break the row, so they become spaces. */
export function tsvCell(value: unknown): string {
  if (value === null || value === undefined) return "";
  return String(value).replace(/[\t\r\n]+/g, " ");
}

function tsv(rows: Record<string, unknown>[], columns: readonly Column[]): string {
  return rows.map((row) => columns.map((c) => tsvCell(row[c.name])).join("\t") + "\n").join("");
}

function header(columns: readonly Column[]): string {
  return columns.map((c) => c.name).join("\t") + "\n";
}

/** Rows keyed by `id` as one batch of a table member, tab-separated. */
function tsvBatch(rows: Record<string, unknown>[], columns: readonly Column[]): MemberBatch {
  return keyedBatch(rows, tsv(rows, columns));
}

/**
 * Text that is empty once the characters XML 1.0 forbids are gone falls back to `fallback`:
 * EML's NonEmptyStringType (title, surName, para) needs a non-blank value.
 */
function nonBlank(text: string | null | undefined, fallback: string): string {
  return xmlText(text ?? "").trim() === "" ? fallback : text!;
}

/** `meta.xml`: every file with its row type, separators and term URIs. */
export function metaXml(): string {
  const fileAttributes = 'encoding="UTF-8" fieldsTerminatedBy="\\t" linesTerminatedBy="\\n" ' +
    'fieldsEnclosedBy="" ignoreHeaderLines="1"';
  const fields = (columns: readonly Column[]): string =>
    columns.map((c, i) => `    <field index="${i}" term="${c.term}"/>`).join("\n");
  return `<?xml version="1.0" encoding="UTF-8"?>
<archive xmlns="http://rs.tdwg.org/dwc/text/" metadata="eml.xml">
  <core ${fileAttributes} rowType="${DWC}Event">
    <files><location>event.txt</location></files>
    <id index="0"/>
${fields(eventColumns)}
  </core>
  <extension ${fileAttributes} rowType="${DWC}Occurrence">
    <files><location>occurrence.txt</location></files>
    <coreid index="0"/>
${fields(occurrenceColumns)}
  </extension>
  <extension ${fileAttributes} rowType="http://rs.gbif.org/terms/1.0/Multimedia">
    <files><location>multimedia.txt</location></files>
    <coreid index="0"/>
${fields(multimediaColumns)}
  </extension>
</archive>
`;
}

/** `eml.xml`: EML 2.2.0 dataset metadata. */
export function emlXml(info: {
  projectId: number;
  title: string;
  description: string;
  creatorName: string | null;
  creatorEmail: string | null;
  license: string;
  pubDate: string;
  coverage: Coverage | null;
  events: number;
  occurrences: number;
}): string {
  const x = xmlText;
  const title = nonBlank(info.title, `Project ${info.projectId}`);
  const creatorName = nonBlank(info.creatorName, "") || nonBlank(info.creatorEmail, "");
  const creatorEmail = nonBlank(info.creatorEmail, "");
  const person = creatorName
    ? `<individualName><surName>${x(creatorName)}</surName>` +
      `</individualName>` +
      (creatorEmail ? `<electronicMailAddress>${x(creatorEmail)}</electronicMailAddress>` : "")
    : `<organizationName>${x(title)}</organizationName>`;
  const url = LICENSE_URLS[info.license];
  const rights = url
    ? `This work is licensed under <ulink url="${x(url)}"><citetitle>${
      x(info.license)
    }</citetitle></ulink>.`
    : x(info.license);
  const c = info.coverage;
  const geographic = c !== null && Number.isFinite(c.west) && Number.isFinite(c.south)
    ? `
      <geographicCoverage>
        <geographicDescription>Bounding box of the monitoring stations</geographicDescription>
        <boundingCoordinates>
          <westBoundingCoordinate>${decimalText(c.west)}</westBoundingCoordinate>
          <eastBoundingCoordinate>${decimalText(c.east)}</eastBoundingCoordinate>
          <northBoundingCoordinate>${decimalText(c.north)}</northBoundingCoordinate>
          <southBoundingCoordinate>${decimalText(c.south)}</southBoundingCoordinate>
        </boundingCoordinates>
      </geographicCoverage>`
    : "";
  // from possible session intervals only (issue 23): none, no temporal coverage
  const temporal = c !== null && c.begin !== null && c.end !== null
    ? `
      <temporalCoverage>
        <rangeOfDates>
          <beginDate><calendarDate>${c.begin.slice(0, 10)}</calendarDate></beginDate>
          <endDate><calendarDate>${c.end.slice(0, 10)}</calendarDate></endDate>
        </rangeOfDates>
      </temporalCoverage>`
    : "";
  // EML's coverage needs at least one of its parts
  const coverage = geographic + temporal === "" ? "" : `
    <coverage>${geographic}${temporal}
    </coverage>`;
  const abstract = nonBlank(
    info.description,
    `Insect occurrences recorded by automated light traps with cameras.`,
  );
  return `<?xml version="1.0" encoding="UTF-8"?>
<eml:eml xmlns:eml="https://eml.ecoinformatics.org/eml-2.2.0"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="https://eml.ecoinformatics.org/eml-2.2.0 https://eml.ecoinformatics.org/eml-2.2.0/eml.xsd"
  packageId="ami-exports-project-${info.projectId}-${x(info.pubDate)}" system="ami-exports"
  scope="system" xml:lang="en">
  <dataset>
    <title xml:lang="en">${x(title)}</title>
    <creator>${person}</creator>
    <pubDate>${x(info.pubDate.slice(0, 10))}</pubDate>
    <language>en</language>
    <abstract>
      <para>${x(abstract)}</para>
      <para>${info.events} sampling events and ${info.occurrences} occurrences.</para>
    </abstract>
    <intellectualRights>
      <para>${rights}</para>
    </intellectualRights>${coverage}
    <contact>${person}</contact>
    <methods>
      <methodStep><description><para>${x(SAMPLING_PROTOCOL)}</para></description></methodStep>
    </methods>
  </dataset>
</eml:eml>
`;
}

/** `o.event_id is not null`: the archive's extra condition on the shared predicate. */
function hasEvent(ctx: ExportQueryContext): Fragment {
  return ctx.sql`o.event_id is not null`;
}

/**
 * Keys (occurrences, events) in a deflated piece of a table of the archive
 * (`ZipArchiveFormat.pieceKeys`): ~350 KB of `occurrence.txt`, well past deflate's 32 KiB window,
 * so the pieces cost nothing in size; at most `EXPORT_BATCH_SIZE`.
 */
export const DWCA_PIECE_KEYS = 500;

/** Shard bounds of `occurrence.txt` and `multimedia.txt`: occurrences with an event, by id. */
function occurrenceBounds(ctx: ExportQueryContext, every: number): Promise<ShardBound[]> {
  const keys = ctx.sql`select o.id from occurrences o
    where ${occurrencePredicate(ctx)} and ${hasEvent(ctx)}`;
  return keyShardBounds(ctx, keys, every);
}

/** Occurrences written to `occurrence.txt`: the shared predicate plus an event. */
async function countRecords(ctx: ExportQueryContext): Promise<number> {
  const [row] = await ctx.sql<{ n: number }[]>`
    select count(*)::bigint as n from occurrences o
    where ${occurrencePredicate(ctx)} and ${hasEvent(ctx)}`;
  return Number(row.n);
}

/**
 * Impossible times of the archive (issue 23): its events whose end precedes their start, and
 * the best detections and captures of `multimedia.txt` more than a day outside their session.
 */
async function impossibleTimes(ctx: ExportQueryContext): Promise<ImpossibleTimeCount[]> {
  const { sql } = ctx;
  const written = sql`from occurrences o ${bestDetection(sql)}
    where ${occurrencePredicate(ctx)} and ${hasEvent(ctx)}`;
  return await countImpossibleTimes(sql, [{
    kind: "session_interval",
    effect: "eventDate, sampleSizeValue and sampleSizeUnit left empty in event.txt, " +
      "and out of the EML temporal coverage",
    rows: sql`select not ${possibleInterval(sql, sql`e.start`, sql`e."end"`)} as bad
      from events e where e.project_id = ${ctx.projectId}
        and exists (select 1 from occurrences o where o.event_id = e.id and ${
      occurrencePredicate(ctx)
    })`,
  }, {
    kind: "detection_time",
    effect: "created of the crop left empty in multimedia.txt",
    universe: "detections",
    rows: sql`select not ${withinSession(sql, sql`bx.timestamp`, sql`o.event_id`)} as bad
      ${written} and bx.crop_path is not null`,
  }, {
    kind: "capture_time",
    effect: "created of the capture image left empty in multimedia.txt",
    universe: "detection_captures",
    rows: sql`select not ${
      withinSession(sql, sql`bx.capture_timestamp`, sql`bx.capture_event_id`)
    } as bad ${written} and bx.detection_id is not null`,
  }], ctx.projectId);
}

async function eventRows(
  ctx: ExportQueryContext,
  afterId: RecordId,
  limit: number,
): Promise<Record<string, unknown>[]> {
  const { sql } = ctx;
  const zone = stationZone(sql, settingsOf(ctx), "d");
  const possible = (value: Fragment): Fragment =>
    ifPossibleInterval(sql, { start: sql`e.start`, end: sql`e."end"` }, value);
  const rows = await sql`
    with batch as (
      select be.id from events be
      where be.project_id = ${ctx.projectId} and be.id > ${afterId}
        and (select true from occurrences o
          where o.event_id = be.id and ${occurrencePredicate(ctx)} limit 1)
      order by be.id
      limit ${limit}
    )
    select
      e.id,
      e.id as "eventID",
      ${possible(isoTimestamp(sql, sql`e.start`, zone))} as start_iso,
      ${possible(isoTimestamp(sql, sql`e."end"`, zone))} as end_iso,
      -- station-local with the offset, every microsecond (issue 11; GBIF's eventDate advice);
      -- empty when the session ends before it starts (issue 23: no interval, time_sql.ts)
      ${
    possible(
      sql`${isoTimestamp(sql, sql`e.start`, zone)} || '/' || ${
        isoTimestamp(sql, sql`e."end"`, zone)
      }`,
    )
  } as "eventDate",
      ${SAMPLING_PROTOCOL} as "samplingProtocol",
      ${
    possible(sql`round((extract(epoch from e."end" - e.start) / 60)::numeric)::int`)
  } as "sampleSizeValue",
      ${possible(sql`'minutes'`)} as "sampleSizeUnit",
      d.id as "locationID",
      d.name as "locality",
      d.latitude,
      d.longitude,
      upper(d.country_code) as "countryCode"
    from batch
    join events e on e.id = batch.id
    join deployments d on d.id = e.deployment_id
    order by e.id`;
  return Array.from(rows, withCoordinates);
}

/**
 * The event row with `decimalLatitude`, `decimalLongitude` (plain decimals) and `geodeticDatum`
 * only when its station has a valid WGS84 pair (Darwin Core: −90..90, −180..180); else all
 * three are empty.
 */
function withCoordinates(row: Record<string, unknown>): Record<string, unknown> {
  const pair = wgs84(row.latitude, row.longitude);
  return {
    ...row,
    decimalLatitude: pair ? decimalText(pair.latitude) : null,
    decimalLongitude: pair ? decimalText(pair.longitude) : null,
    geodeticDatum: pair ? "EPSG:4326" : null,
  };
}

async function occurrenceRows(
  ctx: ExportQueryContext,
  afterId: RecordId,
  limit: number,
  untilId: RecordId | null = null,
): Promise<Record<string, unknown>[]> {
  const { sql } = ctx;
  const serviceZone = sql`${settingsOf(ctx).timeZone}::text`;
  return await sql`
    ${occurrenceBatch(ctx, { afterId, limit, untilId }, { also: hasEvent(ctx) })}${
    batchDetectionSets(sql)
  }
    select
      o.id,
      o.event_id as "eventID",
      o.id as "occurrenceID",
      case when li.id is null then 'MachineObservation' else 'HumanObservation' end
        as "basisOfRecord",
      'present' as "occurrenceStatus",
      1 as "individualCount",
      t.name as "scientificName",
      lower(t.rank) as "taxonRank",
      t.common_name_en as "vernacularName",
      coalesce(${lineageName(sql, "KINGDOM")}, 'Animalia') as "kingdom",
      ${lineageName(sql, "PHYLUM")} as "phylum",
      ${lineageName(sql, "CLASS")} as "class",
      ${lineageName(sql, "ORDER")} as "order",
      ${lineageName(sql, "FAMILY")} as "family",
      ${lineageName(sql, "GENUS")} as "genus",
      ${gbifTaxonUrl(sql, sql`t.gbif_taxon_key`)} as "taxonID",
      coalesce(li.user_label, bp.algorithm_name) as "identifiedBy",
      ${
    isoTimestamp(sql, sql`coalesce(li.created_at, bpc.created_at)`, serviceZone)
  } as "dateIdentified",
      case when li.id is null then 'unverified' else 'verified' end
        as "identificationVerificationStatus",
      concat_ws(' | ',
        case when bx.crop_path is not null
          then ${mediaUrl(sql, sql`bx.public_base_url`, sql`bx.crop_path`)} end,
        ${mediaUrl(sql, sql`bx.public_base_url`, sql`bx.capture_path`)}) as "associatedMedia"
    from ${batchOccurrences(ctx, { afterId })}
    left join taxa t on t.id = o.determination_id
    left join bp on bp.occurrence_id = o.id
    left join classifications bpc on bpc.id = bp.classification_id
    left join bx on bx.occurrence_id = o.id
    ${standingIdentification(ctx)}
    order by batch.id`;
}

/**
 * The multimedia rows of the next `limit` occurrences after `afterId` (up to `untilId`): 0–2
 * rows each. `occurrences` counts every occurrence the batch read, one without any image
 * included (its only row has no `n` and is not written), so that a batch of fewer than `limit`
 * occurrences means the end and `lastId` moves past image-less ones.
 */
async function multimediaRows(
  ctx: ExportQueryContext,
  afterId: RecordId,
  limit: number,
  untilId: RecordId | null = null,
): Promise<{ occurrences: number; lastId: RecordId | null; rows: Record<string, unknown>[] }> {
  const { sql } = ctx;
  // the best detection of each occurrence as a set over the batch (`batchDetectionSets`); the
  // capture's station zone (antenna-compat §2, else TIME_ZONE) and the two session-checked
  // times computed once per occurrence (`offset 0`: not repeated in every use the ISO text
  // makes of them)
  const rows = await sql`
    ${occurrenceBatch(ctx, { afterId, limit, untilId }, { also: hasEvent(ctx) })}${
    batchDetectionSets(sql)
  }
    select o.id, o.event_id as "eventID", mm.*
    from ${batchOccurrences(ctx, { afterId })}
    left join bx on bx.occurrence_id = o.id
    cross join lateral (
      select coalesce(
          (select xz.time_zone from deployments xz where xz.id = bx.capture_deployment_id),
          ${settingsOf(ctx).timeZone}::text) as zone,
        -- a time more than a day outside its session is left empty (issue 23, time_sql.ts)
        ${sessionTime(sql, sql`bx.timestamp`, sql`o.event_id`)} as crop_time,
        ${sessionTime(sql, sql`bx.capture_timestamp`, sql`bx.capture_event_id`)} as capture_time
      offset 0
    ) tm
    left join lateral (select * from (values
      (1,
        case when bx.crop_path is not null
          then ${mediaUrl(sql, sql`bx.public_base_url`, sql`bx.crop_path`)} end,
        bx.crop_path,
        'Occurrence ' || o.id || ': best detection (crop)',
        'Crop of detection ' || bx.detection_id || ', the best of occurrence ' || o.id,
        ${isoTimestamp(sql, sql`tm.crop_time`, sql`tm.zone`)}),
      (2,
        ${mediaUrl(sql, sql`bx.public_base_url`, sql`bx.capture_path`)},
        bx.capture_path,
        'Occurrence ' || o.id || ': capture ' || bx.capture_id,
        'Capture image holding the best detection of occurrence ' || o.id,
        ${isoTimestamp(sql, sql`tm.capture_time`, sql`tm.zone`)})
    ) as v(n, identifier, path, title, description, created)
      where v.identifier is not null) mm on true
    order by o.id, mm.n`;
  return {
    ...occurrencesOf(rows),
    rows: rows.filter((row) => row.n !== null).map(({ n: _n, ...row }) => ({
      ...row,
      type: "StillImage",
      format: /\.png$/i.test(String(row.path)) ? "image/png" : "image/jpeg",
    })),
  };
}

/** Widens `coverage` with the events just written. */
function widen(coverage: Coverage | null, rows: Record<string, unknown>[]): Coverage | null {
  let c = coverage;
  for (const row of rows) {
    const pair = wgs84(row.latitude, row.longitude);
    const lat = pair?.latitude ?? null;
    const lon = pair?.longitude ?? null;
    // null for a session that ends before it starts (issue 23): it widens no time coverage
    const begin = row.start_iso as string | null;
    const end = row.end_iso as string | null;
    if (c === null) {
      c = {
        west: Infinity,
        east: -Infinity,
        south: Infinity,
        north: -Infinity,
        begin,
        end,
      };
    }
    c = {
      west: lon === null ? c.west : Math.min(c.west, lon),
      east: lon === null ? c.east : Math.max(c.east, lon),
      south: lat === null ? c.south : Math.min(c.south, lat),
      north: lat === null ? c.north : Math.max(c.north, lat),
      begin: begin !== null && (c.begin === null || begin < c.begin) ? begin : c.begin,
      end: end !== null && (c.end === null || end > c.end) ? end : c.end,
    };
  }
  return c;
}

/** JSON cannot hold ±Infinity: the coverage goes into the state with nulls for "none yet". */
function storeCoverage(c: Coverage | null): StreamState {
  if (c === null) return null;
  const finite = (v: number): number | null => (Number.isFinite(v) ? v : null);
  return {
    west: finite(c.west),
    east: finite(c.east),
    south: finite(c.south),
    north: finite(c.north),
    begin: c.begin,
    end: c.end,
  };
}

function loadCoverage(raw: StreamState): Coverage | null {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return null;
  const v = (x: StreamState, fallback: number): number => (typeof x === "number" ? x : fallback);
  return {
    west: v(raw.west, Infinity),
    east: v(raw.east, -Infinity),
    south: v(raw.south, Infinity),
    north: v(raw.north, -Infinity),
    begin: typeof raw.begin === "string" ? raw.begin : null,
    end: typeof raw.end === "string" ? raw.end : null,
  };
}

async function emlDocument(ctx: ExportQueryContext, state: ZipArchiveState): Promise<string> {
  const [project] = await ctx.sql<
    {
      name: string;
      description: string;
      license: string | null;
      owner_name: string | null;
      owner_email: string | null;
    }[]
  >`
    select p.name, p.description, p.license, u.name as owner_name, u.email as owner_email
    from projects p left join users u on u.id = p.owner_id
    where p.id = ${ctx.projectId}`;
  return emlXml({
    projectId: ctx.projectId,
    title: project?.name ?? `Project ${ctx.projectId}`,
    description: project?.description ?? "",
    creatorName: project?.owner_name || null,
    creatorEmail: project?.owner_email || null,
    license: project?.license || defaultLicense(),
    pubDate: state.modified,
    coverage: loadCoverage(state.coverage),
    events: Number(state.events),
    occurrences: state.records,
  });
}

/** The Darwin Core Archive (`dwca`): data files first, the descriptors last. */
export const dwca: StreamExporter = zipArchive({
  key: "dwca",
  // 2: tables deflated in pieces of 500 keys (pieceKeys), dated by the request; 3: README.md
  // writes the member descriptions as Markdown (backticks were escaped) and lists the members
  revision: 3,
  label: "Darwin Core Archive",
  description: "A Darwin Core Archive (zip) for GBIF: Event core (event.txt, one row per " +
    "session), occurrence.txt and multimedia.txt extensions, meta.xml and EML 2.2.0 eml.xml; " +
    "occurrences without an event are left out",
  acceptedFilters: occurrenceFilterKeys,
  dataCard: true,
  contents: [
    {
      name: "event.txt",
      description: "core (Event): one row per session holding an exported occurrence: its " +
        "interval (UTC), length, station and place; tab-separated",
      columns: eventColumns.map((c) => c.name),
    },
    {
      name: "occurrence.txt",
      description: "extension linked by eventID: one row per exported occurrence: taxon and " +
        "lineage, basis of record, identification; tab-separated",
      columns: occurrenceColumns.map((c) => c.name),
    },
    {
      name: "multimedia.txt",
      description: "GBIF Simple Multimedia extension linked by eventID: the best detection's " +
        "crop and capture image per occurrence (URLs); tab-separated",
      columns: multimediaColumns.map((c) => c.name),
    },
    { name: "meta.xml", description: "the archive descriptor: every file with its term URIs" },
    {
      name: "eml.xml",
      description: "EML 2.2.0 metadata: title, creator and contact (the owner), license, " +
        "geographic and temporal coverage of the exported events",
    },
  ],
  count: countRecords,
  impossibleTimes,
  members: [
    {
      name: "event.txt",
      head: () => header(eventColumns),
      async batch(ctx, state, limit): Promise<MemberBatch> {
        const rows = await eventRows(ctx, state.afterId, limit);
        const coverage = storeCoverage(widen(loadCoverage(state.coverage), rows));
        const events = Number(state.events) + rows.length;
        return { ...tsvBatch(rows, eventColumns), extra: { coverage, events } };
      },
    },
    {
      name: "occurrence.txt",
      head: () => header(occurrenceColumns),
      async batch(ctx, state, limit, untilId): Promise<MemberBatch> {
        const rows = await occurrenceRows(ctx, state.afterId, limit, untilId);
        return { ...tsvBatch(rows, occurrenceColumns), records: rows.length };
      },
      shardBounds: occurrenceBounds,
      holdsRecords: true,
    },
    {
      name: "multimedia.txt",
      head: () => header(multimediaColumns),
      async batch(ctx, state, limit, untilId): Promise<MemberBatch> {
        const batch = await multimediaRows(ctx, state.afterId, limit, untilId);
        const data = tsv(batch.rows, multimediaColumns);
        return { data, lastId: batch.lastId, rows: batch.occurrences };
      },
      // keyed by the same occurrences, piece for piece
      shardBounds: occurrenceBounds,
    },
    { name: "meta.xml", head: metaXml },
    { name: "eml.xml", head: emlDocument },
  ],
  // the coverage of the events written so far (`storeCoverage`), and how many (EML abstract)
  extra: { coverage: null, events: 0 },
  // shards cut occurrence.txt and multimedia.txt by occurrence id; event.txt is one unit
  pieceKeys: DWCA_PIECE_KEYS,
});
