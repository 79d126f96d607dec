/**
 * The honest limit (issue 15, point 1): per format, an independent single-pass
 * `COPY (…) TO STDOUT` of the same rows, written for speed, to compare an export with the
 * fastest way Postgres produces them (not with the exporter's own per-batch statement, which
 * `copy_limit.ts` measures).
 *
 * - `occurrences_simple_csv`: one `COPY (select <the 28 columns> …) TO STDOUT WITH CSV` over the
 *   project's valid occurrences in id order, set-based (`GROUP BY` and `DISTINCT ON` over the
 *   whole project, no per-row LATERAL), values in Postgres' native text forms (no Python float,
 *   bbox or duration text, no URL encoding, no formula guard): the same rows, columns and
 *   choices (best prediction, best detection, best identification) as the export.
 * - `occurrences_api_json`: one `COPY (<the exporter's document statement over all rows at
 *   once>) TO STDOUT`: the same documents in a single pass, with the batch as large as the
 *   project. Not independent of the document SQL (a second hand-written builder of the 60-odd
 *   keys of antenna-compat §6 would only duplicate it), but free of batching.
 * - every other format: its own statements in a single pass at database level — the stream
 *   drained in chunks of at most {@link REFERENCE_CHUNK_ROWS} rows and about
 *   {@link REFERENCE_CHUNK_BYTES} (after a first chunk of {@link REFERENCE_FIRST_ROWS} rows that
 *   weighs them; one chunk per phase below that: one statement per table or zip member), into
 *   a byte counter, no Temporal, no upload, no checkpoints. Not an independent query, but it
 *   isolates what batching, the worker and the upload cost.
 */
import { defaultFormatSettings } from "../config/mod.ts";
import { connectDatabase } from "../db/client.ts";
import { asStream } from "../registry/stream.ts";
import type { Exporter, ExportQueryContext } from "../registry/types.ts";
import { captureStatement, psqlCopy } from "./copy_limit.ts";

/** What one reference COPY found. */
export interface ReferenceRun {
  /** What the reference is (docs/benchmarks.md wording). */
  kind: string;
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  bytes: number;
}

const REAL_BOX = (b: string): string =>
  `coalesce(array_ndims(${b}) = 1 and cardinality(${b}) = 4
    and abs(${b}[1]) < 'Infinity'::float8 and abs(${b}[2]) < 'Infinity'::float8
    and abs(${b}[3]) < 'Infinity'::float8 and abs(${b}[4]) < 'Infinity'::float8, false)`;

/**
 * The single-pass native CSV statement of `occurrences_simple_csv` for project `projectId`
 * (an integer, formatted into the text: COPY takes no bind parameters).
 */
export function simpleCsvReference(projectId: number, timeZone: string): string {
  if (!Number.isSafeInteger(projectId)) throw new Error(`not a project id: ${projectId}`);
  const zone = `'${timeZone.replaceAll("'", "''")}'`;
  return `
    with v as (
      select o.* from occurrences o
      where o.project_id = ${projectId} and o.determination_id is not null
        and exists (select 1 from detections vd where vd.occurrence_id = o.id
          and ${REAL_BOX("vd.bbox")})
    ),
    vd as (select d.* from detections d join v on v.id = d.occurrence_id),
    vc as (
      select c.*, vd.occurrence_id from classifications c join vd on vd.id = c.detection_id
    ),
    ds as (
      select occurrence_id, count(*) as n, min(timestamp) as first, max(timestamp) as last
      from vd group by occurrence_id
    ),
    bp as (
      select distinct on (vc.occurrence_id) vc.occurrence_id, t.name, a.name as algorithm,
        vc.score, vc.taxon_id
      from vc join taxa t on t.id = vc.taxon_id join algorithms a on a.id = vc.algorithm_id
      order by vc.occurrence_id, vc.terminal desc, vc.score desc, vc.id desc
    ),
    bx as (
      select distinct on (vd.occurrence_id) vd.occurrence_id, vd.path, vd.bbox,
        s.public_base_url, s.path as capture_path
      from vd join source_images s on s.id = vd.source_image_id
      left join (select detection_id, max(score) as score from vc group by detection_id) m
        on m.detection_id = vd.id
      where ${REAL_BOX("vd.bbox")}
      order by vd.occurrence_id, m.score desc nulls last, vd.id
    ),
    li as (
      select distinct on (i.occurrence_id) i.occurrence_id, u.name, la.name as algorithm,
        au.email
      from identifications i join v on v.id = i.occurrence_id
      join users u on u.id = i.user_id
      left join classifications lc on lc.id = i.agreed_with_prediction_id
      left join algorithms la on la.id = lc.algorithm_id
      left join identifications ai on ai.id = i.agreed_with_identification_id
      left join users au on au.id = ai.user_id
      where not i.withdrawn
      order by i.occurrence_id, i.created_at desc, i.id desc
    ),
    pc as (
      select i.occurrence_id, count(distinct i.user_id) as n
      from identifications i join v on v.id = i.occurrence_id
      where not i.withdrawn group by i.occurrence_id
    )
    select v.id, v.event_id, e.start at time zone coalesce(ed.time_zone, ${zone}),
      v.deployment_id, d.name, v.project_id, p.name, v.determination_id, t.name,
      v.determination_score, coalesce(pc.n, 0) > 0, bp.name, bp.algorithm, bp.score, li.name,
      coalesce(pc.n, 0), li.algorithm, li.email, v.determination_id = bp.taxon_id, ds.n,
      ds.first at time zone coalesce(d.time_zone, ${zone}),
      ds.last at time zone coalesce(d.time_zone, ${zone}), ds.last - ds.first, bx.path,
      bx.bbox, abs(bx.bbox[3] - bx.bbox[1]), abs(bx.bbox[4] - bx.bbox[2]),
      rtrim(bx.public_base_url, '/') || '/' || ltrim(bx.capture_path, '/')
    from v
    join projects p on p.id = v.project_id
    left join events e on e.id = v.event_id
    left join deployments ed on ed.id = e.deployment_id
    left join deployments d on d.id = v.deployment_id
    left join taxa t on t.id = v.determination_id
    left join ds on ds.occurrence_id = v.id
    left join bp on bp.occurrence_id = v.id
    left join bx on bx.occurrence_id = v.id
    left join li on li.occurrence_id = v.id
    left join pc on pc.occurrence_id = v.id
    order by v.id`;
}

/**
 * Runs the reference COPY of `exporter` over project `projectId` (`rows`: the export's record
 * count, for rows/s) through `psql`; null for formats without a reference.
 */
export async function measureReference(
  url: string,
  exporter: Exporter,
  options: { projectId: number; rows: number; timeZone: string },
): Promise<ReferenceRun | null> {
  let kind: string;
  let copy: string;
  if (exporter.key === "occurrences_simple_csv") {
    kind = "single-pass native COPY WITH CSV of the 28 columns (set-based, no LATERAL)";
    copy = `copy (${simpleCsvReference(options.projectId, options.timeZone)}) to stdout with csv`;
  } else if (exporter.key === "occurrences_api_json") {
    kind = "single-pass COPY of the same json_build_object documents (one batch of all rows)";
    const statement = await captureStatement(url, exporter, {
      projectId: options.projectId,
      limit: 2_147_483_647,
    });
    copy = `copy (${statement}) to stdout`;
  } else {
    return await singlePass(url, exporter, options);
  }
  const started = performance.now();
  const bytes = await psqlCopy(url, copy);
  const seconds = (performance.now() - started) / 1000;
  return { kind, rows: options.rows, seconds, rowsPerSecond: options.rows / seconds, bytes };
}

const encoder = new TextEncoder();

/**
 * The most rows a chunk of the single-pass reference reads: a table of fewer rows is one chunk.
 * Not the whole table at any size: a chunk of text is one V8 string, and V8 strings stop at
 * 2^29 − 24 characters (~512 MB): the 3,085,602 annotations of the 1M project's COCO file are
 * ~770 MB (`RangeError: Invalid string length` in `join`). 500,000 rows of the widest format
 * are ~125 MB; 7 statements instead of 1 at 1M.
 */
export const REFERENCE_CHUNK_ROWS = 500_000;

/**
 * The most bytes a chunk of the single-pass reference aims at, after its first chunk of
 * {@link REFERENCE_FIRST_ROWS} rows weighed them: the API JSON and NDJSON formats are ~17 KB an
 * occurrence, so 500,000 rows would be ~8.5 GB in one chunk (the bench ran out of its 4 GB heap
 * at 1M).
 */
export const REFERENCE_CHUNK_BYTES = 128 * 1024 * 1024;

/** Rows of the reference's first chunk, which measures the bytes a row. */
export const REFERENCE_FIRST_ROWS = 1_000;

/**
 * Drains `exporter` at database level with one chunk per phase (see the module comment): the
 * reference of the formats without an independent COPY.
 */
async function singlePass(
  url: string,
  exporter: Exporter,
  options: { projectId: number; rows: number; timeZone: string },
): Promise<ReferenceRun> {
  const sql = connectDatabase(url, { max: 1 });
  try {
    const stream = asStream(exporter);
    const ctx: ExportQueryContext = {
      sql,
      projectId: options.projectId,
      filters: {},
      settings: { ...defaultFormatSettings, timeZone: options.timeZone },
    };
    let state = stream.initialState(ctx);
    let bytes = 0;
    let limit = REFERENCE_FIRST_ROWS;
    const started = performance.now();
    for (let done = false; !done;) {
      const chunk = await stream.next(ctx, state, { limit });
      const weight = typeof chunk.data === "string"
        ? encoder.encode(chunk.data).byteLength
        : chunk.data.byteLength;
      bytes += weight;
      // the next chunks: as many rows as fit REFERENCE_CHUNK_BYTES at this chunk's weight
      const rows = chunk.rows ?? chunk.records;
      if (rows > 0 && weight > 0) {
        limit = Math.max(
          REFERENCE_FIRST_ROWS,
          Math.min(REFERENCE_CHUNK_ROWS, Math.floor(REFERENCE_CHUNK_BYTES / (weight / rows))),
        );
      }
      state = chunk.state;
      done = chunk.done;
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      kind: "its own statements at database level (chunks of at most " +
        `${REFERENCE_CHUNK_ROWS} rows and about ${REFERENCE_CHUNK_BYTES / 1024 / 1024} MB, ` +
        "after a first one of " + `${REFERENCE_FIRST_ROWS} rows; no batches, no worker, no upload)`,
      rows: options.rows,
      seconds,
      rowsPerSecond: options.rows / seconds,
      bytes,
    };
  } finally {
    await sql.end({ timeout: 5 });
  }
}
