/**
 * How the demo occurrences are written: the temporary plan table `demo_occ`, then occurrences,
 * detections, classifications and identifications in one set-based statement each. The values
 * are drawn in SQL by `rnd` (a pure function of the seed, a salt and a row ordinal, see
 * `seed_demo.ts`), so that a million rows never cross the wire.
 */
import type postgres from "postgres";
import type { DemoUsers } from "./seed_demo_data.ts";
import type { TaxonArrays } from "./seed_demo_taxa.ts";

type Tx = postgres.TransactionSql;
type Fragment = postgres.PendingQuery<postgres.Row[]>;

/** Inputs of {@link planOccurrences}. */
export interface OccurrencePlan {
  n: number;
  events: number;
  nights: number;
  captures: number;
  eventBase: number;
  occurrenceBase: number;
  widths: string;
  heights: string;
  species: TaxonArrays;
  rnd: (ordinal: Fragment, salt: number) => Fragment;
}

/**
 * Fills the temporary table `demo_occ`: one row per occurrence with everything the bulk inserts
 * derive their rows from (event, detection count and offset, prediction, identification case,
 * final determination).
 *
 * Identification cases (`id_kind`, ~3.5% of valid occurrences): 1 agrees with the top
 * prediction, 2 corrects it to another species, 3 identifies the genus only, 4 is withdrawn and
 * followed by an agreement with the prediction, 5 is withdrawn alone (stays unverified).
 * `second_kind`: 1 a second person agrees with identification A, 2 someone later names
 * another species (the latest identification wins).
 */
export async function planOccurrences(tx: Tx, p: OccurrencePlan): Promise<void> {
  const { rnd, species } = p;
  const k = tx`k`;
  // Busy and quiet nights: k → event is a monotone warp (slope 0.2–1.8) made of a seasonal
  // wave (1.5 per station) and a short one (every ~2.7 nights).
  const season = 2 * Math.PI * 1.5 * (p.events / p.nights);
  const weather = 2 * Math.PI * (p.events / 2.7);
  const warp =
    tx`x - 0.5 * sin(${season} * x) / ${season} - 0.3 * sin(${weather} * x) / ${weather}`;
  await tx`
    create temp table demo_occ on commit drop as
    with g as (
      select k, least(${p.events - 1}, floor(${p.events} * (${warp})))::int8 as e,
        ${rnd(k, 20)} as u_nd, ${rnd(k, 21)} as u_best, ${rnd(k, 22)} as u_sp,
        ${rnd(k, 23)} as u_pos, ${rnd(k, 24)} as u_inv, ${rnd(k, 25)} as u_id,
        ${rnd(k, 26)} as u_case, ${rnd(k, 27)} as u_second, ${rnd(k, 28)} as u_score,
        ${rnd(k, 29)} as u_alt, ${rnd(k, 30)} as u_moth, ${rnd(k, 31)} as u_user
      from generate_series(0::int8, ${p.n - 1}::int8) k
      cross join lateral (select (k + 0.5)::float8 / ${p.n} as x) xx
    ), s as (
      select g.*,
        case when u_nd < 0.15 then 1 when u_nd < 0.35 then 2 when u_nd < 0.6 then 3
          when u_nd < 0.8 then 4 else 5 end as nd,
        case when u_inv < 0.0025 then 1 when u_inv < 0.005 then 2 else 0 end as invalid,
        case when u_moth < 0.04 then ${species.moths} + floor(u_sp * ${
    species.count - species.moths
  })::int
          else (floor(${species.moths} * power(u_sp, 2.5))::int * ${species.stride})
            % ${species.moths} end as sp
      from g
    ), c as (
      select s.*,
        (s.sp + 1 + floor(u_alt * ${species.count - 1})::int) % ${species.count} as alt_sp,
        case when invalid > 0 or u_id >= 0.035 then 0 when u_case < 0.55 then 1
          when u_case < 0.75 then 2 when u_case < 0.85 then 3 when u_case < 0.93 then 4
          else 5 end as id_kind
      from s
    ), d as (
      select c.*,
        case when id_kind in (1, 2, 3) and u_second < 0.35 then 1
          when id_kind = 1 and u_second < 0.6 then 2 else 0 end as second_kind,
        (${species.ids}::int8[])[sp + 1] as pred_id,
        (${species.ids}::int8[])[alt_sp + 1] as alt_id,
        (${species.genera}::int8[])[sp + 1] as genus_id,
        (${species.orders}::int8[])[sp + 1] as order_id,
        round((0.3 + 0.69 * sqrt(u_score))::numeric, 4)::float8 as top_score
      from c
    )
    select d.k, ${p.occurrenceBase}::int8 + d.k as occ_id, d.e,
      ${p.eventBase}::int8 + d.e as event_id, ev.deployment_id, ev.start as ev_start,
      (${p.widths}::int[])[d.e / ${p.nights} + 1] as width,
      (${p.heights}::int[])[d.e / ${p.nights} + 1] as height,
      d.nd, sum(d.nd) over w - d.nd as dstart, floor(d.u_best * d.nd)::int as best,
      floor(d.u_pos * (${p.captures} - d.nd + 1))::int as c0,
      d.invalid, d.sp, d.pred_id, d.order_id, d.top_score, d.id_kind, d.second_kind, d.u_user,
      (count(*) filter (where d.id_kind > 0) over w) - 1 as m,
      case d.id_kind when 1 then d.pred_id when 3 then d.genus_id else d.alt_id end as a_taxon,
      case when d.id_kind = 4 then d.pred_id when d.second_kind = 2 then d.alt_id
        else (case d.id_kind when 1 then d.pred_id when 3 then d.genus_id else d.alt_id end)
      end as b_taxon,
      case
        when d.invalid = 1 then null
        when d.id_kind in (0, 4, 5) then d.pred_id
        when d.second_kind = 2 then d.alt_id
        when d.id_kind = 1 then d.pred_id
        when d.id_kind = 3 then d.genus_id
        else d.alt_id
      end as determination_id,
      case
        when d.invalid = 1 then null
        when d.id_kind in (0, 5) then d.top_score
        else 1.0
      end as determination_score
    from d
    join events ev on ev.id = ${p.eventBase}::int8 + d.e
    window w as (order by d.k)`;
}

/** Inputs of {@link insertOccurrenceRows}: the reserved id ranges and what rows refer to. */
export interface OccurrenceRows {
  projectId: number;
  imageBase: number;
  captures: number;
  captureSeconds: number;
  detectionBase: number;
  classificationBase: number;
  identificationBase: number;
  species: TaxonArrays;
  binaryAlgorithm: number;
  speciesAlgorithm: number;
  users: DemoUsers;
  rnd: (ordinal: Fragment, salt: number) => Fragment;
}

/**
 * Writes the occurrences planned in `demo_occ` and their detections, classifications and
 * identifications, into the id ranges reserved for them.
 */
export async function insertOccurrenceRows(tx: Tx, rows: OccurrenceRows): Promise<void> {
  const {
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
  } = rows;
  await tx`
    insert into occurrences (id, project_id, deployment_id, event_id, determination_id,
      determination_score, created_at)
    select occ_id, ${projectId}, deployment_id, event_id, determination_id, determination_score,
      ev_start + interval '16 hours'
    from demo_occ`;

  // A track: consecutive captures from c0, a box of about the same size drifting a little;
  // bboxes are whole pixels inside the image.
  await tx`
    insert into detections (id, occurrence_id, source_image_id, bbox, timestamp, path)
    select ${detectionBase}::int8 + o.dstart + j, o.occ_id,
      ${imageBase}::int8 + o.e * ${captures} + o.c0 + j,
      case when o.invalid <> 2 then array[b.x1, b.y1, b.x1 + b.w, b.y1 + b.h]::float8[] end,
      o.ev_start + make_interval(secs => (o.c0 + j) * ${captureSeconds}),
      'crops/' || (${detectionBase}::int8 + o.dstart + j) || '.jpg'
    from demo_occ o
    cross join generate_series(0, o.nd - 1) j
    cross join lateral (
      select s.w, s.h,
        least(o.width - s.w, greatest(0, round(
          ${rnd(tx`o.k`, 5)} * (o.width - s.w) + (${rnd(tx`o.k * 8 + j`, 6)} - 0.5) * 120))) as x1,
        least(o.height - s.h, greatest(0, round(
          ${rnd(tx`o.k`, 7)} * (o.height - s.h) + (${rnd(tx`o.k * 8 + j`, 8)} - 0.5) * 120))) as y1
      from (
        select z.w, least(o.height - 1, round(z.w * (0.6 + 0.8 * ${rnd(tx`o.k`, 13)}))) as h
        from (
          select round((60 + 540 * power(${rnd(tx`o.k`, 14)}, 2))
            * (0.9 + 0.2 * ${rnd(tx`o.k * 8 + j`, 15)})) as w
        ) z
      ) s
    ) b`;

  // Per detection: the order-level (non-terminal) prediction, then the species (terminal) one.
  // The best detection holds the occurrence's top species score; the others score lower and
  // now and then disagree.
  await tx`
    insert into classifications (id, detection_id, taxon_id, algorithm_id, score, terminal,
      created_at)
    select ${classificationBase}::int8 + 2 * (o.dstart + j) + t,
      ${detectionBase}::int8 + o.dstart + j,
      case
        when t = 0 then o.order_id
        when j = o.best or ${rnd(tx`o.k * 8 + j`, 9)} < 0.75 then o.pred_id
        else (${species.ids}::int8[])[
          1 + (o.sp + 1 + floor(${rnd(tx`o.k * 8 + j`, 10)} * ${species.count - 1})::int)
            % ${species.count}]
      end,
      case when t = 0 then ${binaryAlgorithm}::int8 else ${speciesAlgorithm}::int8 end,
      case
        when t = 0 then 0.8 + 0.199 * ${rnd(tx`o.k * 8 + j`, 11)}
        when j = o.best then o.top_score
        else o.top_score * (0.55 + 0.4 * ${rnd(tx`o.k * 8 + j`, 12)})
      end,
      t = 1,
      o.ev_start + interval '14 hours'
    from demo_occ o
    cross join generate_series(0, o.nd - 1) j
    cross join (values (0), (1)) tt(t)
    where o.invalid <> 1`;

  // Identification A is 2m, B is 2m + 1 (m: rank among identified occurrences).
  await tx`
    insert into identifications (id, occurrence_id, user_id, taxon_id, withdrawn,
      agreed_with_identification_id, agreed_with_prediction_id, comment, created_at)
    select ${identificationBase}::int8 + 2 * o.m + slot, o.occ_id,
      case
        when slot = 0 then case o.id_kind
          when 1 then case when o.u_user < 0.5 then ${users.researcher1}::int8
            else ${users.researcher2}::int8 end
          when 2 then ${users.manager}::int8
          when 3 then ${users.member}::int8
          when 4 then ${users.researcher1}::int8
          else ${users.researcher2}::int8 end
        when o.id_kind = 4 then ${users.researcher1}::int8
        when o.second_kind = 1 then case when o.u_user < 0.8 then ${users.mlManager}::int8
          else ${users.admin}::int8 end
        else ${users.manager}::int8
      end,
      case when slot = 0 then o.a_taxon else o.b_taxon end,
      slot = 0 and o.id_kind in (4, 5),
      case when slot = 1 and o.second_kind = 1 then ${identificationBase}::int8 + 2 * o.m end,
      case when (slot = 0 and o.id_kind = 1) or (slot = 1 and o.id_kind = 4)
        then ${classificationBase}::int8 + 2 * (o.dstart + o.best) + 1 end,
      case
        when slot = 0 and o.id_kind = 2 then 'The machine prediction is close; this is its neighbour'
        when slot = 0 and o.id_kind = 3 then 'Worn specimen, genus only'
        when slot = 1 and o.second_kind = 2 then 'Corrected after checking the hindwing'
        else ''
      end,
      o.ev_start + make_interval(days => 1 + floor(o.u_user * 30)::int, hours => 12 * slot)
    from demo_occ o
    cross join (values (0), (1)) s(slot)
    where o.id_kind > 0 and (slot = 0 or o.id_kind = 4 or o.second_kind > 0)`;
}
