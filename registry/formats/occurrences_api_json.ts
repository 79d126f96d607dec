/**
 * `occurrences_api_json`: one JSON array of nested occurrence objects, the original platform's
 * occurrence API value for value (shared/antenna-compat/README.md §6; deviations §8). Postgres builds each object (`json_build_object`, `json_agg` in
 * LATERAL subqueries over the batch's occurrences only): one statement per batch, one text
 * column per occurrence, and the TypeScript side joins strings.
 */
import { countOccurrences, occurrenceFilterKeys } from "../filters.ts";
import type postgres from "postgres";
import type { FormatSettings } from "../../config/mod.ts";
import {
  captureJsonUrl,
  cropUrl,
  detailsLink,
  detectionStats,
  durationLabel,
  eventDateLabel,
  eventName,
  type Fragment,
  isoDuration,
  jsonTimestamp,
  localTime,
  occurrenceBatch,
  settingsOf,
  stationZone,
  timeOfDay,
  userImageUrl,
} from "../occurrence_sql.ts";
import {
  type EncodedBatch,
  type ExportQueryContext,
  type RecordExporter,
  type RecordId,
  recordId,
} from "../types.ts";

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

  /** Full taxon of the taxon id `id`, or null. */
  function taxonById(id: Fragment): Fragment {
    const t = fresh("t");
    return sql`(select ${fullTaxon(t)} from taxa ${t} where ${t}.id = ${id})`;
  }

  /** Determination taxon (§6.2): no `parents`, no `gbif_taxon_key`. */
  function determinationTaxon(a: Fragment): Fragment {
    return sql`json_build_object('id', ${a}.id, 'name', ${a}.name, 'parent', ${parentOf(a)},
      'rank', ${a}.rank, 'details', ${link("taxa", sql`${a}.id`)}, 'user_permissions', ${none})`;
  }

  /** Full (`short` false) or short algorithm (§6.2) of the algorithm id `id`. */
  function algorithmById(id: Fragment, short = false): Fragment {
    const a = fresh("a");
    const common = sql`'id', ${a}.id, 'details', ${link("ml/algorithms", sql`${a}.id`)},
      'name', ${a}.name, 'key', ${a}.key`;
    const stamps = sql`'created_at', ${serviceTime(sql`${a}.created_at`)},
      'updated_at', ${serviceTime(sql`${a}.updated_at`)}, 'user_permissions', ${none}`;
    const body = short
      ? sql`json_build_object(${common}, 'version', ${a}.version_number,
        'version_name', ${a}.version, ${stamps})`
      : sql`json_build_object(${common}, 'description', ${a}.description, 'uri', ${a}.uri,
        'version', ${a}.version_number, 'version_name', ${a}.version, 'task_type', ${a}.task_type,
        'category_map', case when ${a}.category_map_id is null then null else json_build_object(
          'id', ${a}.category_map_id, 'details', ${link("ml/labels", sql`${a}.category_map_id`)},
          'user_permissions', ${none}) end,
        'category_count', null, ${stamps})`;
    return sql`(select ${body} from algorithms ${a} where ${a}.id = ${id})`;
  }

  /** Classification object (§6.2) of the classifications row aliased `c`. */
  function classification(c: Fragment): Fragment {
    const ap = fresh("ap");
    return sql`json_build_object(
      'id', ${c}.id, 'details', ${link("classifications", sql`${c}.id`)},
      'taxon', ${taxonById(sql`${c}.taxon_id`)}, 'score', ${c}.score, 'terminal', ${c}.terminal,
      'algorithm', ${algorithmById(sql`${c}.algorithm_id`)},
      'applied_to', case when ${c}.applied_to_id is null then null else (
        select json_build_object('id', ${ap}.id, 'created_at', ${
      serviceTime(sql`${ap}.created_at`)
    },
          'algorithm', ${algorithmById(sql`${ap}.algorithm_id`)})
        from classifications ${ap} where ${ap}.id = ${c}.applied_to_id) end,
      'created_at', ${serviceTime(sql`${c}.created_at`)}, 'user_permissions', ${none})`;
  }

  /** Identification object (§6.2) of the identifications row aliased `i`. */
  function identification(i: Fragment): Fragment {
    const u = fresh("u");
    return sql`json_build_object(
      'id', ${i}.id, 'details', ${link("identifications", sql`${i}.id`)},
      'taxon', ${taxonById(sql`${i}.taxon_id`)},
      'user', (select json_build_object('id', ${u}.id, 'name', ${u}.name,
          'image', ${userImageUrl(sql, settings, sql`${u}.image`)},
          'details', ${link("users", sql`${u}.id`)}, 'user_permissions', ${none})
        from users ${u} where ${u}.id = ${i}.user_id),
      'withdrawn', ${i}.withdrawn, 'comment', ${i}.comment,
      'created_at', ${serviceTime(sql`${i}.created_at`)}, 'user_permissions', ${none})`;
  }

  return {
    link,
    serviceTime,
    fullTaxon,
    taxonById,
    determinationTaxon,
    algorithmById,
    classification,
    identification,
  };
}

/**
 * The next `limit` occurrences after `afterId` as API-shaped JSON documents (one text column per
 * occurrence), in id order: one statement (antenna-compat §6). Shared with `occurrences_ndjson`.
 */
export async function occurrenceDocuments(
  ctx: ExportQueryContext,
  cursor: { afterId: RecordId | null; limit: number },
): Promise<{ id: RecordId; doc: string }[]> {
  const { sql } = ctx;
  const settings = settingsOf(ctx);
  const j = jsonBuilders(sql, settings);
  const occurrenceZone = stationZone(sql, settings, "d");
  const first = localTime(sql, sql`ds.first_timestamp`, occurrenceZone);
  return await sql<{ id: RecordId; doc: string }[]>`
    ${occurrenceBatch(ctx, cursor)}
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
      'determination', case when t.id is null then null else ${j.determinationTaxon(sql`t`)} end,
      'detections_count', ds.detections_count,
      'detection_images', (
        select coalesce(json_agg(case when im.path = '' then ${settings.mediaUrl}::text
          else ${cropUrl(sql, settings.mediaUrl, sql`im.path`)} end
          order by im.timestamp, im.id), '[]'::json)
        from detections im where im.occurrence_id = o.id and im.path is not null
      ),
      'determination_score', o.determination_score,
      'determination_details', json_build_object(
        'taxon', case when t.id is null then null else ${j.fullTaxon(sql`t`)} end,
        'identification', bi.doc,
        'prediction', case when bi.doc is null then bpj.doc end,
        'score', o.determination_score
      ),
      'best_machine_prediction', case when bpj.id is null then null else json_build_object(
        'taxon', ${j.taxonById(sql`bpj.taxon_id`)},
        'algorithm', ${j.algorithmById(sql`bpj.algorithm_id`, true)},
        'score', bpj.score
      ) end,
      'identifications', (
        select coalesce(json_agg(${j.identification(sql`ii`)}
          order by ii.created_at desc, ii.id), '[]'::json)
        from identifications ii where ii.occurrence_id = o.id
      ),
      'created_at', ${j.serviceTime(sql`o.created_at`)},
      'updated_at', ${j.serviceTime(sql`o.updated_at`)},
      'determination_id', o.determination_id,
      'detections', (
        select coalesce(json_agg(json_build_object(
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
          'bbox', to_json(dd.bbox),
          'occurrence', ${j.link("occurrences", sql`dd.occurrence_id`)},
          'classifications', (
            select coalesce(json_agg(${j.classification(sql`cc`)}
              order by cc.created_at desc, cc.score desc, cc.id), '[]'::json)
            from classifications cc where cc.detection_id = dd.id
          ),
          'user_permissions', '[]'::json
        ) order by dd.timestamp desc, dd.id), '[]'::json)
        from detections dd
        join source_images di on di.id = dd.source_image_id
        left join deployments dz on dz.id = di.deployment_id
        where dd.occurrence_id = o.id
      ),
      -- §4.4: every classification whose score is one algorithm's highest on this occurrence
      'predictions', (
        select coalesce(json_agg(${j.classification(sql`pc`)}
          order by pc.created_at desc, pd.id, pc.id), '[]'::json)
        from detections pd
        join classifications pc on pc.detection_id = pd.id
        where pd.occurrence_id = o.id and pc.score in (
          select max(mc.score) from detections md
          join classifications mc on mc.detection_id = md.id
          where md.occurrence_id = o.id
          group by mc.algorithm_id)
      )
    )::text as doc
    from batch
    join occurrences o on o.id = batch.id
    left join events e on e.id = o.event_id
    left join deployments ed on ed.id = e.deployment_id
    left join deployments d on d.id = o.deployment_id
    left join taxa t on t.id = o.determination_id
    ${detectionStats(sql)}
    -- §4.2: the best identification, the latest non-withdrawn one (tie: highest id)
    left join lateral (
      select ${j.identification(sql`bii`)} as doc
      from identifications bii
      where bii.occurrence_id = o.id and not bii.withdrawn
      order by bii.created_at desc, bii.id desc
      limit 1
    ) bi on true
    -- §4.3 JSON rule: among each algorithm's top-scored classifications, terminal first, then
    -- the highest score, then the highest id
    left join lateral (
      select pj.id, pj.taxon_id, pj.algorithm_id, pj.score, ${j.classification(sql`pj`)} as doc
      from (
        select jc.*, max(jc.score) over (partition by jc.algorithm_id) as algorithm_max
        from detections jd
        join classifications jc on jc.detection_id = jd.id
        where jd.occurrence_id = o.id
      ) pj
      where pj.score = pj.algorithm_max
      order by pj.terminal desc, pj.score desc, pj.id desc
      limit 1
    ) bpj on true
    order by batch.id`;
}

async function fetchBatch(
  ctx: ExportQueryContext,
  cursor: { afterId: RecordId | null; limit: number; recordsBefore: number },
): Promise<EncodedBatch> {
  const rows = await occurrenceDocuments(ctx, cursor);
  if (rows.length === 0) return { records: 0, lastId: null, text: "" };
  const lead = cursor.recordsBefore === 0 ? "" : separator;
  return {
    records: rows.length,
    lastId: recordId(rows[rows.length - 1].id),
    text: lead + rows.map((row) => row.doc).join(separator),
  };
}

/** The API-shaped JSON array of occurrences (`occurrences_api_json`). */
export const occurrencesApiJson: RecordExporter = {
  key: "occurrences_api_json",
  label: "Occurrences (API JSON)",
  description: "A JSON array of valid occurrences as the platform's API returns them, with " +
    "their determination, identifications, detections and classifications",
  extension: "json",
  contentType: "application/json",
  acceptedFilters: occurrenceFilterKeys,
  count: countOccurrences,
  prologue(): string {
    return "[";
  },
  fetchBatch,
  epilogue(): string {
    return "]";
  },
};
