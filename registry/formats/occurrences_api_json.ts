// Long because it rebuilds the original API's nested occurrence object value for value (§6).
/**
 * `occurrences_api_json`: one JSON array of nested occurrence objects, the original platform's
 * occurrence API value for value (shared/antenna-compat/README.md §6; deviations §8). Postgres builds each object (`json_build_object`, `json_agg` in
 * LATERAL subqueries over the batch's occurrences only): one statement per batch, one text
 * column per occurrence, and the TypeScript side joins strings.
 */
import { occurrencePlaces } from "../batch_sql.ts";
import { occurrenceRecords } from "../occurrence_records.ts";
import type postgres from "postgres";
import type { ContentEntry } from "../types.ts";
import type { FormatSettings } from "../../config/mod.ts";
import {
  batchDetectionSets,
  batchOccurrences,
  captureJsonUrl,
  cropUrl,
  detailsLink,
  durationLabel,
  eventDateLabel,
  eventName,
  type Fragment,
  isoDuration,
  jsonTimestamp,
  localTime,
  occurrenceBatch,
  realBox,
  settingsOf,
  stationZone,
  timeOfDay,
  userImageUrl,
} from "../occurrence_sql.ts";
import {
  type BatchCursor,
  type EncodedBatch,
  type ExportQueryContext,
  type RecordId,
  recordId,
} from "../types.ts";
import { finiteOrNull } from "../numeric_sql.ts";

/** Between two array items; one occurrence per line keeps big files greppable. */
const separator = ",\n";

/**
 * Builders of the nested objects of antenna-compat §6.2, as SQL fragments over a row alias.
 * Every nested lookup is a scalar subquery with an alias of its own (a counter keeps aliases
 * unique within one statement).
 */
function jsonBuilders(sql: postgres.Sql, settings: FormatSettings) {
  let counter = 0;
  const fresh = (base: string): Fragment => sql`${sql(`${base}_${++counter}`)}`;
  const none = sql`'[]'::json`;
  const serviceZone = sql`${settings.timeZone}::text`;
  const link = (resource: string, id: Fragment) => detailsLink(sql, settings, resource, id);
  /** JSON timestamp in `TIME_ZONE` (§2: every non-station timestamp). */
  const serviceTime = (value: Fragment) => jsonTimestamp(sql, localTime(sql, value, serviceZone));

  /** Parent-less taxon (§6.2) of the taxa row aliased `a`. */
  function parentlessTaxon(a: Fragment): Fragment {
    return sql`json_build_object(
      'id', ${a}.id, 'name', ${a}.name, 'rank', ${a}.rank, 'details', ${link("taxa", sql`${a}.id`)},
      'gbif_taxon_key', ${a}.gbif_taxon_key, 'fieldguide_id', ${a}.fieldguide_id,
      'inat_taxon_id', ${a}.inat_taxon_id, 'cover_image_url', ${a}.cover_image_url,
      'cover_image_credit', ${a}.cover_image_credit, 'user_permissions', ${none})`;
  }

  /** `parent`: the parent-less taxon of `parent_id` of the row `a`, or null. */
  function parentOf(a: Fragment): Fragment {
    const p = fresh("tp");
    return sql`(select ${parentlessTaxon(p)} from taxa ${p} where ${p}.id = ${a}.parent_id)`;
  }

  /** Full taxon (§6.2) of the taxa row aliased `a`. */
  function fullTaxon(a: Fragment): Fragment {
    const pe = fresh("pe");
    return sql`json_build_object(
      'id', ${a}.id, 'name', ${a}.name, 'rank', ${a}.rank, 'details', ${link("taxa", sql`${a}.id`)},
      'gbif_taxon_key', ${a}.gbif_taxon_key, 'fieldguide_id', ${a}.fieldguide_id,
      'inat_taxon_id', ${a}.inat_taxon_id, 'cover_image_url', ${a}.cover_image_url,
      'cover_image_credit', ${a}.cover_image_credit,
      'parent', ${parentOf(a)},
      'parents', (
        select coalesce(json_agg(json_build_object('id', (${pe}.v ->> 'id')::bigint,
          'name', ${pe}.v ->> 'name', 'rank', ${pe}.v ->> 'rank') order by ${pe}.i), '[]'::json)
        from jsonb_array_elements(${a}.parents) with ordinality ${pe}(v, i)
      ),
      'user_permissions', ${none})`;
  }

  /** Determination taxon (§6.2): no `parents`, no `gbif_taxon_key`. */
  function determinationTaxon(a: Fragment): Fragment {
    return sql`json_build_object('id', ${a}.id, 'name', ${a}.name, 'parent', ${parentOf(a)},
      'rank', ${a}.rank, 'details', ${link("taxa", sql`${a}.id`)}, 'user_permissions', ${none})`;
  }

  /** Full (`short` false) or short algorithm (§6.2) of the algorithms row aliased `a`. */
  function algorithm(a: Fragment, short = false): Fragment {
    const common = sql`'id', ${a}.id, 'details', ${link("ml/algorithms", sql`${a}.id`)},
      'name', ${a}.name, 'key', ${a}.key`;
    const stamps = sql`'created_at', ${serviceTime(sql`${a}.created_at`)},
      'updated_at', ${serviceTime(sql`${a}.updated_at`)}, 'user_permissions', ${none}`;
    return short
      ? sql`json_build_object(${common}, 'version', ${a}.version_number,
        'version_name', ${a}.version, ${stamps})`
      : sql`json_build_object(${common}, 'description', ${a}.description, 'uri', ${a}.uri,
        'version', ${a}.version_number, 'version_name', ${a}.version, 'task_type', ${a}.task_type,
        'category_map', case when ${a}.category_map_id is null then null else json_build_object(
          'id', ${a}.category_map_id, 'details', ${link("ml/labels", sql`${a}.category_map_id`)},
          'user_permissions', ${none}) end,
        'category_count', null, ${stamps})`;
  }

  /**
   * Classification object (§6.2) of the classifications row aliased `c`, given its taxon's full
   * JSON `taxon`, its algorithm's full JSON `algorithm`, and `applied_to` (the classification
   * it was applied to, aliased, with `algorithm` its algorithm's full JSON; `id` null when
   * none). Nested objects come from per-batch lookups joined by the caller.
   */
  function classification(
    c: Fragment,
    nested: {
      taxon: Fragment;
      algorithm: Fragment;
      appliedTo: Fragment;
      appliedAlgorithm: Fragment;
    },
  ): Fragment {
    const ap = nested.appliedTo;
    return sql`json_build_object(
      'id', ${c}.id, 'details', ${link("classifications", sql`${c}.id`)},
      'taxon', ${nested.taxon}, 'score', ${c}.score, 'terminal', ${c}.terminal,
      'algorithm', ${nested.algorithm},
      'applied_to', case when ${c}.applied_to_id is null or ${ap}.id is null then null
        else json_build_object('id', ${ap}.id, 'created_at', ${serviceTime(sql`${ap}.created_at`)},
          'algorithm', ${nested.appliedAlgorithm}) end,
      'created_at', ${serviceTime(sql`${c}.created_at`)}, 'user_permissions', ${none})`;
  }

  /**
   * Identification object (§6.2) of the identifications row aliased `i`, given its taxon's
   * full JSON `taxon` and its user row aliased `u` (`u.id` null when missing).
   */
  function identification(i: Fragment, nested: { taxon: Fragment; user: Fragment }): Fragment {
    const u = nested.user;
    return sql`json_build_object(
      'id', ${i}.id, 'details', ${link("identifications", sql`${i}.id`)},
      'taxon', ${nested.taxon},
      'user', case when ${u}.id is null then null else json_build_object('id', ${u}.id,
          'name', ${u}.name, 'image', ${userImageUrl(sql, settings, sql`${u}.image`)},
          'details', ${link("users", sql`${u}.id`)}, 'user_permissions', ${none}) end,
      'withdrawn', ${i}.withdrawn, 'comment', ${i}.comment,
      'created_at', ${serviceTime(sql`${i}.created_at`)}, 'user_permissions', ${none})`;
  }

  return {
    link,
    serviceTime,
    fullTaxon,
    determinationTaxon,
    algorithm,
    classification,
    identification,
  };
}

/**
 * The next `limit` occurrences after `afterId` as API-shaped JSON documents (one text column per
 * occurrence), in id order: one statement (antenna-compat §6). Shared with `occurrences_ndjson`.
 *
 * Every nested object is built once per batch, not once per reference: the taxa, algorithms,
 * classifications, identifications and detections the batch's occurrences refer to are CTEs
 * over the batch (its detections by index range, the rest by joins), aggregated per detection
 * and per occurrence with `json_agg … group by` and picked with `DISTINCT ON` (issue 15: the
 * per-row scalar subqueries built the same taxon up to ten times per occurrence). The keys,
 * orders and ties are those of §6.2 / §4.2–4.4.
 */
export async function occurrenceDocuments(
  ctx: ExportQueryContext,
  cursor: { afterId: RecordId | null; limit: number; untilId?: RecordId | null },
): Promise<{ id: RecordId; doc: string }[]> {
  const { sql } = ctx;
  const settings = settingsOf(ctx);
  const j = jsonBuilders(sql, settings);
  const occurrenceZone = stationZone(sql, settings, "d");
  const first = localTime(sql, sql`ds.first_timestamp`, occurrenceZone);
  return await sql<{ id: RecordId; doc: string }[]>`
    ${occurrenceBatch(ctx, cursor)}${batchDetectionSets(sql)},
    bid as (
      select i.* from batch join identifications i on i.occurrence_id = batch.id
    ),
    bocc as (
      select o.id, o.determination_id from ${batchOccurrences(ctx, cursor)}
    ),
    -- the classifications the batch's ones were applied to
    apc as (
      select ap.id, ap.created_at, ap.algorithm_id from classifications ap
      where ap.id in (select bcl.applied_to_id from bcl)
    ),
    -- each taxon the batch refers to, as a full taxon and as a determination (§6.2)
    tx as (
      select t.id, ${j.fullTaxon(sql`t`)} as doc, ${j.determinationTaxon(sql`t`)} as det
      from taxa t
      where t.id in (
        select bcl.taxon_id from bcl union select bid.taxon_id from bid
        union select bocc.determination_id from bocc)
    ),
    -- each algorithm the batch refers to, full and short (§6.2)
    al as (
      select a.id, ${j.algorithm(sql`a`)} as doc, ${j.algorithm(sql`a`, true)} as short
      from algorithms a
      where a.id in (select bcl.algorithm_id from bcl union select apc.algorithm_id from apc)
    ),
    cj as (
      select c.id, c.detection_id, c.occurrence_id, c.created_at, c.score, c.terminal,
        c.taxon_id, c.algorithm_id,
        ${
    j.classification(sql`c`, {
      taxon: sql`ctx.doc`,
      algorithm: sql`cal.doc`,
      appliedTo: sql`apc`,
      appliedAlgorithm: sql`apal.doc`,
    })
  } as doc
      from bcl c
      left join tx ctx on ctx.id = c.taxon_id
      left join al cal on cal.id = c.algorithm_id
      left join apc on apc.id = c.applied_to_id
      left join al apal on apal.id = apc.algorithm_id
    ),
    ij as (
      select i.id, i.occurrence_id, i.created_at, i.withdrawn,
        ${j.identification(sql`i`, { taxon: sql`itx.doc`, user: sql`u` })} as doc
      from bid i
      left join tx itx on itx.id = i.taxon_id
      left join users u on u.id = i.user_id
    ),
    -- each algorithm's highest score per occurrence (§4.4)
    mx as (
      select bcl.occurrence_id, bcl.algorithm_id, max(bcl.score) as score
      from bcl group by bcl.occurrence_id, bcl.algorithm_id
    ),
    dagg as (
      select dj.occurrence_id, json_agg(dj.doc order by dj.timestamp desc, dj.id) as docs
      from (
        select dd.occurrence_id, dd.id, dd.timestamp, json_build_object(
          'id', dd.id,
          'details', ${j.link("detections", sql`dd.id`)},
          'timestamp', ${
    jsonTimestamp(
      sql,
      localTime(sql, sql`dd.timestamp`, sql`coalesce(dz.time_zone, ${settings.timeZone}::text)`),
    )
  },
          'url', ${cropUrl(sql, settings.mediaUrl, sql`dd.path`)},
          'capture', json_build_object(
            'id', di.id,
            'details', ${j.link("captures", sql`di.id`)},
            'url', ${captureJsonUrl(sql, sql`di.public_base_url`, sql`di.path`)},
            'width', di.width,
            'height', di.height,
            'user_permissions', '[]'::json
          ),
          'width', null,
          'height', null,
          'bbox', ${jsonBbox(sql, sql`dd.bbox`)},
          'occurrence', ${j.link("occurrences", sql`dd.occurrence_id`)},
          'classifications', coalesce(cagg.docs, '[]'::json),
          'user_permissions', '[]'::json
        ) as doc
        from bd dd
        cross join lateral (
          select * from source_images di where di.id = dd.source_image_id offset 0) di
        left join deployments dz on dz.id = di.deployment_id
        left join (
          select cj.detection_id,
            json_agg(cj.doc order by cj.created_at desc, cj.score desc, cj.id) as docs
          from cj group by cj.detection_id
        ) cagg on cagg.detection_id = dd.id
      ) dj
      group by dj.occurrence_id
    ),
    imgs as (
      select im.occurrence_id, json_agg(case when im.path = '' then ${settings.mediaUrl}::text
          else ${cropUrl(sql, settings.mediaUrl, sql`im.path`)} end
          order by im.timestamp, im.id) as urls
      from bd im where im.path is not null
      group by im.occurrence_id
    ),
    iagg as (
      select ij.occurrence_id, json_agg(ij.doc order by ij.created_at desc, ij.id) as docs
      from ij group by ij.occurrence_id
    ),
    -- §4.2: the best identification, the latest non-withdrawn one (tie: highest id)
    bi as (
      select distinct on (ij.occurrence_id) ij.occurrence_id, ij.doc
      from ij where not ij.withdrawn
      order by ij.occurrence_id, ij.created_at desc, ij.id desc
    ),
    -- §4.4: every classification whose score is one algorithm's highest on this occurrence
    pagg as (
      select cj.occurrence_id,
        json_agg(cj.doc order by cj.created_at desc, cj.detection_id, cj.id) as docs
      from cj
      where exists (
        select 1 from mx where mx.occurrence_id = cj.occurrence_id and mx.score = cj.score)
      group by cj.occurrence_id
    ),
    -- §4.3 JSON rule: among each algorithm's top-scored classifications, terminal first, then
    -- the highest score, then the highest id
    bpj as (
      select distinct on (cj.occurrence_id) cj.occurrence_id, cj.id, cj.taxon_id,
        cj.algorithm_id, cj.score, cj.doc
      from cj
      join mx on mx.occurrence_id = cj.occurrence_id and mx.algorithm_id = cj.algorithm_id
        and mx.score = cj.score
      order by cj.occurrence_id, cj.terminal desc, cj.score desc nulls last, cj.id desc
    )
    select o.id, json_build_object(
      'id', o.id,
      'details', ${j.link("occurrences", sql`o.id`)},
      'event', case when e.id is null then null else json_build_object(
        'id', e.id,
        'name', ${eventName(sql, settings)},
        'details', ${j.link("events", sql`e.id`)},
        'date_label', ${eventDateLabel(sql, stationZone(sql, settings))},
        'user_permissions', '[]'::json
      ) end,
      'deployment', case when d.id is null then null else json_build_object(
        'id', d.id,
        'name', d.name,
        'details', ${j.link("deployments", sql`d.id`)},
        'user_permissions', '[]'::json
      ) end,
      'first_appearance_timestamp', ${jsonTimestamp(sql, first)},
      -- deviation c: the earliest detection's local time of day
      'first_appearance_time', ${timeOfDay(sql, first)},
      'duration', ${isoDuration(sql, sql`ds.duration_us`)},
      'duration_label', ${durationLabel(sql, sql`ds.duration_us`)},
      'determination', tdet.det,
      'detections_count', coalesce(ds.detections_count, 0),
      'detection_images', coalesce(imgs.urls, '[]'::json),
      'determination_score', ${finiteOrNull(sql, sql`o.determination_score`)},
      'determination_details', json_build_object(
        'taxon', tdet.doc,
        'identification', bi.doc,
        'prediction', case when bi.doc is null then bpj.doc end,
        'score', ${finiteOrNull(sql, sql`o.determination_score`)}
      ),
      'best_machine_prediction', case when bpj.id is null then null else json_build_object(
        'taxon', bptx.doc,
        'algorithm', bpal.short,
        'score', bpj.score
      ) end,
      'identifications', coalesce(iagg.docs, '[]'::json),
      'created_at', ${j.serviceTime(sql`o.created_at`)},
      'updated_at', ${j.serviceTime(sql`o.updated_at`)},
      'determination_id', o.determination_id,
      'detections', coalesce(dagg.docs, '[]'::json),
      'predictions', coalesce(pagg.docs, '[]'::json)
    )::text as doc
    from ${batchOccurrences(ctx, cursor)}
    ${occurrencePlaces(ctx)}
    left join tx tdet on tdet.id = o.determination_id
    left join ds on ds.occurrence_id = o.id
    left join imgs on imgs.occurrence_id = o.id
    left join iagg on iagg.occurrence_id = o.id
    left join dagg on dagg.occurrence_id = o.id
    left join pagg on pagg.occurrence_id = o.id
    left join bi on bi.occurrence_id = o.id
    left join bpj on bpj.occurrence_id = o.id
    left join tx bptx on bptx.id = bpj.taxon_id
    left join al bpal on bpal.id = bpj.algorithm_id
    order by batch.id`;
}

/**
 * The batch of occurrence documents after the cursor, their JSON texts encoded by `encode`:
 * elements of `occurrences_api_json`'s array, lines of `occurrences_ndjson`.
 */
export async function documentBatch(
  ctx: ExportQueryContext,
  cursor: BatchCursor,
  encode: (docs: string[]) => string,
): Promise<EncodedBatch> {
  const rows = await occurrenceDocuments(ctx, cursor);
  if (rows.length === 0) return { records: 0, lastId: null, text: "" };
  const text = encode(rows.map((row) => row.doc));
  return { records: rows.length, lastId: recordId(rows[rows.length - 1].id), text };
}

/** The top-level members of each occurrence object (the data card and docs/formats.md list them). */
export const occurrenceObjectContents: readonly ContentEntry[] = [
  { name: "id", description: "the occurrence id" },
  {
    name: "details",
    description: "the occurrence's page on the platform: PLATFORM_URL/api/v2/occurrences/<id>/",
  },
  {
    name: "event",
    description: "the session: id, name, start date and details link (null without one)",
  },
  { name: "deployment", description: "the station: id, name, details link" },
  {
    name: "first_appearance_timestamp",
    description: "the earliest detection's station-local wall-clock time",
  },
  { name: "first_appearance_time", description: "its time of day" },
  { name: "duration", description: "last − first appearance, ISO 8601 duration (`P0DT00H10M00S`)" },
  { name: "duration_label", description: "the duration in words (`10 minutes`)" },
  { name: "determination", description: "the determination's taxon: id, name, rank, details" },
  { name: "detections_count", description: "the occurrence's detections" },
  { name: "detection_images", description: "crop URLs of its detections (MEDIA_URL + path)" },
  { name: "determination_score", description: "the determination's score", unit: "0–1" },
  {
    name: "determination_details",
    description: "how the determination was made: identification or prediction",
  },
  {
    name: "best_machine_prediction",
    description: "the best machine prediction: taxon, algorithm, score",
  },
  { name: "identifications", description: "the human identifications" },
  {
    name: "created_at",
    description: "when the occurrence was created, wall-clock time in TIME_ZONE",
  },
  { name: "updated_at", description: "when it was last updated, wall-clock time in TIME_ZONE" },
  { name: "determination_id", description: "the determination (taxon id)" },
  { name: "detections", description: "the detections: id, capture, timestamp, box, crop URL" },
  {
    name: "predictions",
    description: "every classification whose score is one algorithm's highest",
  },
];

/** The API-shaped JSON array of occurrences (`occurrences_api_json`). */
export const occurrencesApiJson = occurrenceRecords({
  key: "occurrences_api_json",
  label: "Occurrences (API JSON)",
  contents: occurrenceObjectContents,
  description: "A JSON array of valid occurrences as the platform's API returns them, with " +
    "their determination, identifications, detections and classifications",
  extension: "json",
  contentType: "application/json",
  prologue: "[",
  fetchBatch: (ctx, cursor) =>
    documentBatch(
      ctx,
      cursor,
      (docs) => (cursor.recordsBefore === 0 ? "" : separator) + docs.join(separator),
    ),
  epilogue: "]",
});

/**
 * A stored bbox as JSON (antenna-compat §6: the stored array; `null` when NULL, `[]` when
 * empty), strict RFC 8259: NaN and ±Infinity elements become `null`, never the strings
 * PostgreSQL's `to_json` writes for them (issue 12, kind 4). Only a box that is not four finite
 * numbers (rare) takes the slower element-by-element path.
 */
function jsonBbox(sql: postgres.Sql, bbox: Fragment): Fragment {
  return sql`(case when ${realBox(sql, bbox)} or ${bbox} is null then to_json(${bbox})
    else to_json(array(select ${finiteOrNull(sql, sql`x.v`)}
      from unnest(${bbox}) with ordinality x(v, i) order by x.i)) end)`;
}
