/**
 * The demo-data generator: one realistic moth-monitoring project per call, written with a few
 * set-based statements so that a million occurrences load in minutes.
 *
 * Randomness comes from `hashint8extended(ordinal, seed·1024 + salt)`: every value is a pure
 * function of the seed and a row's ordinal (never of ids or row order), so the same seed gives
 * the same content in any database. Ids are reserved as contiguous ranges, so rows can refer to
 * each other by arithmetic (detection j of occurrence k is `detectionBase + start(k) + j`)
 * instead of by lookups.
 */
import type postgres from "postgres";
import type { Sql } from "./client.ts";

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

/** Family → genus → "epithet" or "epithet:Common name". */
type Families = Record<string, Record<string, string[]>>;

/** The demo taxon tree, per order. Names are real; GBIF keys of ranks below order are made up. */
const TREE: { order: string; gbif: number; common: string; moth: boolean; families: Families }[] = [
  {
    order: "Lepidoptera",
    gbif: 797,
    common: "Butterflies and moths",
    moth: true,
    families: {
      Noctuidae: {
        Agrotis: [
          "ipsilon:Dark Sword-grass",
          "segetum:Turnip Moth",
          "exclamationis:Heart and Dart",
          "puta",
        ],
        Noctua: [
          "pronuba:Large Yellow Underwing",
          "comes:Lesser Yellow Underwing",
          "fimbriata:Broad-bordered Yellow Underwing",
          "janthe",
        ],
        Xestia: [
          "c-nigrum:Setaceous Hebrew Character",
          "smithii:Smith's Dart",
          "dolosa:Greater Black-letter Dart",
          "normaniana",
          "badicollis",
        ],
        Lacinipolia: ["renigera:Bristly Cutworm", "olivacea:Olive Arches", "meditata", "lorea"],
        Orthosia: [
          "gothica:Hebrew Character",
          "cerasi:Common Quaker",
          "incerta:Clouded Drab",
          "hibisci:Speckled Green Fruitworm",
        ],
        Feltia: ["jaculifera:Dingy Cutworm", "herilis:Master's Dart", "subgothica"],
        Amphipyra: ["pyramidoides:Copper Underwing", "pyramidea", "tragopoginis:Mouse Moth"],
        Acronicta: [
          "americana:American Dagger Moth",
          "psi:Grey Dagger",
          "lobeliae",
          "innotata",
          "rumicis:Knot Grass",
        ],
        Spodoptera: [
          "frugiperda:Fall Armyworm",
          "exigua:Beet Armyworm",
          "ornithogalli:Yellow-striped Armyworm",
        ],
        Mythimna: ["unipuncta:White-speck", "pallens:Common Wainscot", "impura:Smoky Wainscot"],
        Helicoverpa: ["zea:Corn Earworm", "armigera:Cotton Bollworm"],
      },
      Erebidae: {
        Catocala: [
          "relicta:White Underwing",
          "ultronia",
          "cara:Darling Underwing",
          "ilia:Ilia Underwing",
          "concumbens:Sleepy Underwing",
          "nupta:Red Underwing",
          "briseis",
          "unijuga:Once-married Underwing",
        ],
        Halysidota: ["tessellaris:Banded Tussock Moth", "harrisii:Sycamore Tussock Moth"],
        Spilosoma: ["virginica:Virginian Tiger Moth", "lubricipeda:White Ermine", "congrua"],
        Hypena: [
          "proboscidalis:Snout",
          "baltimoralis:Baltimore Snout",
          "humuli",
          "scabra:Green Cloverworm",
        ],
        Zale: ["lunata:Lunate Zale", "horrida:Horrid Zale", "minerea"],
        Idia: ["aemula:Common Idia", "americalis:American Idia", "lubricalis"],
        Pyrrharctia: ["isabella:Isabella Tiger Moth"],
        Lymantria: ["dispar:Spongy Moth"],
        Orgyia: ["leucostigma:White-marked Tussock Moth", "antiqua:Vapourer"],
        Euchaetes: ["egle:Milkweed Tussock Moth"],
        Hypoprepia: ["fucosa:Painted Lichen Moth", "miniata"],
        Ascalapha: ["odorata:Black Witch"],
        Latebraria: ["amphipyroides"],
      },
      Geometridae: {
        Biston: ["betularia:Peppered Moth"],
        Campaea: ["perlata:Pale Beauty", "margaritaria:Light Emerald"],
        Ennomos: ["subsignaria:Elm Spanworm", "magnaria:Maple Spanworm"],
        Iridopsis: ["larvaria:Bent-line Gray", "ephyraria"],
        Ectropis: ["crepuscularia:Small Engrailed"],
        Eupithecia: ["miserulata:Common Eupithecia", "centaureata:Lime-speck Pug", "vulgata"],
        Xanthorhoe: [
          "lacustrata:Toothed Brown Carpet",
          "ferrugata",
          "montanata:Silver-ground Carpet",
        ],
        Nematocampa: ["resistaria:Horned Spanworm"],
        Probole: ["amicaria:Friendly Probole", "alienaria"],
        Hypagyrtis: ["unipunctata:One-spotted Variant"],
        Lambdina: ["fiscellaria:Hemlock Looper"],
        Operophtera: ["brumata:Winter Moth"],
        Opisthograptis: ["luteolata:Brimstone Moth"],
        Scopula: ["limboundata:Large Lace-border", "inductata"],
        Idaea: ["aversata:Riband Wave", "dimidiata:Single-dotted Wave"],
      },
      Notodontidae: {
        Clostera: ["albosigma:Sigmoid Prominent", "curtula:Chocolate-tip"],
        Datana: ["ministra:Yellow-necked Caterpillar Moth", "integerrima"],
        Heterocampa: [
          "guttivitta:Saddled Prominent",
          "biundata:Wavy-lined Heterocampa",
          "umbrata",
        ],
        Nadata: ["gibbosa:White-dotted Prominent"],
        Peridea: ["angulosa:Angulose Prominent", "ferruginea"],
        Schizura: ["unicornis:Unicorn Caterpillar Moth", "ipomaeae"],
        Notodonta: ["dromedarius:Iron Prominent", "ziczac:Pebble Prominent"],
        Pheosia: ["rimosa:Black-rimmed Prominent", "gnoma:Lesser Swallow Prominent"],
      },
      Sphingidae: {
        Sphinx: ["kalmiae:Laurel Sphinx", "gordius:Apple Sphinx", "ligustri:Privet Hawk-moth"],
        Paonias: ["excaecata:Blinded Sphinx", "myops:Small-eyed Sphinx"],
        Smerinthus: ["cerisyi:One-eyed Sphinx", "ocellata:Eyed Hawk-moth"],
        Hemaris: ["thysbe:Hummingbird Clearwing", "diffinis:Snowberry Clearwing"],
        Darapsa: ["myron:Virginia Creeper Sphinx", "choerilus"],
        Manduca: ["sexta:Carolina Sphinx", "rustica:Rustic Sphinx", "quinquemaculata"],
        Xylophanes: ["tersa:Tersa Sphinx", "chiron"],
        Eumorpha: ["pandorus:Pandorus Sphinx", "achemon:Achemon Sphinx"],
        Deilephila: ["elpenor:Elephant Hawk-moth"],
        Laothoe: ["populi:Poplar Hawk-moth"],
      },
      Saturniidae: {
        Antheraea: ["polyphemus:Polyphemus Moth"],
        Actias: ["luna:Luna Moth"],
        Automeris: ["io:Io Moth"],
        Hyalophora: ["cecropia:Cecropia Moth"],
        Dryocampa: ["rubicunda:Rosy Maple Moth"],
        Anisota: ["virginiensis:Pink-striped Oakworm Moth", "senatoria"],
        Callosamia: ["promethea:Promethea Moth"],
        Citheronia: ["regalis:Regal Moth"],
        Eacles: ["imperialis:Imperial Moth"],
        Saturnia: ["pavonia:Emperor Moth"],
      },
      Crambidae: {
        Crambus: ["agitatellus:Double-banded Grass-veneer", "perlella", "pascuella"],
        Pyrausta: ["aurata:Mint Moth", "acrionalis", "bicoloralis"],
        Udea: ["rubigalis:Celery Leaftier", "ferrugalis:Rusty-dot Pearl"],
        Herpetogramma: ["pertextalis:Bold-feathered Grass Moth", "thestealis"],
        Ostrinia: ["nubilalis:European Corn Borer"],
        Anania: ["hortulata:Small Magpie"],
        Diaphania: ["hyalinata:Melonworm Moth"],
        Palpita: ["magniferalis:Splendid Palpita"],
        Elophila: ["obliteralis:Waterlily Leafcutter", "nymphaeata:Brown China-mark"],
      },
      Tortricidae: {
        Choristoneura: ["fumiferana:Spruce Budworm", "rosaceana:Oblique-banded Leafroller"],
        Archips: ["argyrospila:Fruit-tree Leafroller", "cerasivorana"],
        Clepsis: ["persicana"],
        Cydia: ["pomonella:Codling Moth"],
        Epiblema: ["scudderiana:Goldenrod Gall Moth"],
        Tortrix: ["viridana:Green Oak Tortrix"],
        Argyrotaenia: ["velutinana:Red-banded Leafroller", "quercifoliana"],
        Acleris: ["variana", "emargana"],
      },
      Lasiocampidae: {
        Malacosoma: [
          "americana:Eastern Tent Caterpillar Moth",
          "disstria:Forest Tent Caterpillar Moth",
          "neustria:Lackey",
        ],
        Tolype: ["velleda:Large Tolype", "laricis"],
        Phyllodesma: ["americana:American Lappet Moth"],
        Lasiocampa: ["quercus:Oak Eggar"],
      },
      Drepanidae: {
        Drepana: ["arcuata:Arched Hooktip", "falcataria:Pebble Hook-tip"],
        Habrosyne: ["scripta:Lettered Habrosyne", "pyritoides:Buff Arches"],
        Pseudothyatira: ["cymatophoroides:Tufted Thyatirid"],
        Euthyatira: ["pudens"],
        Thyatira: ["batis:Peach Blossom"],
      },
    },
  },
  {
    order: "Trichoptera",
    gbif: 1003,
    common: "Caddisflies",
    moth: false,
    families: {
      Limnephilidae: { Limnephilus: ["lunatus", "rhombicus"] },
      Hydropsychidae: { Hydropsyche: ["angustipennis", "siltalai"] },
    },
  },
  {
    order: "Coleoptera",
    gbif: 1470,
    common: "Beetles",
    moth: false,
    families: {
      Carabidae: { Harpalus: ["rufipes:Strawberry Seed Beetle"] },
      Scarabaeidae: { Melolontha: ["melolontha:Cockchafer"], Phyllophaga: ["anxia"] },
    },
  },
  {
    order: "Diptera",
    gbif: 811,
    common: "Flies",
    moth: false,
    families: {
      Tipulidae: { Tipula: ["paludosa:Marsh Crane Fly", "oleracea"] },
      Culicidae: { Culex: ["pipiens:Common House Mosquito"] },
    },
  },
  {
    order: "Hymenoptera",
    gbif: 1457,
    common: "Sawflies, wasps, bees and ants",
    moth: false,
    families: {
      Ichneumonidae: { Ophion: ["luteus"] },
      Vespidae: { Vespula: ["vulgaris:Common Wasp"] },
    },
  },
];

/** Stations, in the order they are used; a project gets the first few. */
const STATIONS = [
  {
    name: "Vermont – Shelburne Farms",
    lat: 44.4078,
    lon: -73.249,
    cc: "US",

    tz: "America/New_York",
    w: 4096,
    h: 2160,
  },
  {
    name: "Panama – Barro Colorado Island",
    lat: 9.1521,
    lon: -79.8465,
    cc: "PA",

    tz: "America/Panama",
    w: 4096,
    h: 2160,
  },
  {
    name: "UK – Wytham Woods",
    lat: 51.7743,
    lon: -1.3384,
    cc: "GB",
    tz: "Europe/London",
    w: 3264,
    h: 2448,
  },
  {
    name: "Vermont – Mount Mansfield",
    lat: 44.5438,
    lon: -72.8143,
    cc: "US",

    tz: "America/New_York",
    w: 4096,
    h: 2160,
  },
  {
    name: "Panama – Gamboa",
    lat: 9.1194,
    lon: -79.6966,
    cc: "PA",
    tz: "America/Panama",
    w: 4096,
    h: 2160,
  },
  {
    name: "UK – Rothamsted",
    lat: 51.8089,
    lon: -0.3561,
    cc: "GB",
    tz: "Europe/London",
    w: 3264,
    h: 2448,
  },
  {
    name: "Vermont – Bread Loaf",
    lat: 43.959,
    lon: -73.001,
    cc: "US",
    tz: "America/New_York",
    w: 4096,
    h: 2160,
  },
  {
    name: "Vermont – Lake Champlain Islands",
    lat: 44.8312,
    lon: -73.2906,
    cc: "US",

    tz: "America/New_York",
    w: 4096,
    h: 2160,
  },
];

/** Algorithms shared by every demo project (`algorithms.key` is unique). */
const BINARY_ALGORITHM = {
  key: "demo-moth-nonmoth-2023",
  name: "Moth / Non-Moth Classifier",
  version: "2023-10",
  description: "Tells moths from other insects in a detection crop",
  taskType: "classification",
  uri: "https://example.org/models/moth-nonmoth-2023-10",
};
const SPECIES_ALGORITHM = {
  key: "demo-moth-species-2024",
  name: "Global Moth Species Classifier",
  version: "2024-08",
  description: "Species of a moth crop, trained on GBIF occurrence images",
  taskType: "classification",
  uri: "https://example.org/models/moth-species-2024-08",
};

const PUBLIC_BASE_URL = "https://example-bucket.s3.amazonaws.com/";
/** Nights start on this date; a station records every night from here on. */
const FIRST_NIGHT = "2023-05-01";
/** Captures are spread over the first 10 hours of a night. */
const NIGHT_SECONDS = 10 * 3600;
/** Serialises concurrent seeders (taxon tree creation and id range reservation). */
const SEED_LOCK = 727_002;

/** A species of the demo tree, with the ids of its genus and order. */
interface Species {
  id: number;
  genus: number;
  order: number;
  moth: boolean;
}

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

  // Shape: stations, nights and captures grow with the size; ~400 occurrences a night.
  const stations = n < 5_000 ? 3 : n < 50_000 ? 4 : n < 200_000 ? 6 : 8;
  const nights = Math.min(366, Math.max(3, Math.ceil(n / (stations * 400))));
  const events = stations * nights;
  const captures = Math.min(300, Math.max(24, Math.ceil((n / events) * 0.75)));
  const captureSeconds = Math.floor(NIGHT_SECONDS / captures);
  const images = events * captures;

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

  await tx`drop table demo_occ`;
  return { project_id: projectId, collection_id: collectionId, user_id: users.manager, token };
}

/** Inputs of {@link planOccurrences}. */
interface OccurrencePlan {
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
async function planOccurrences(tx: Tx, p: OccurrencePlan): Promise<void> {
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

/** The demo taxon tree's species, as SQL array literals indexed by species ordinal. */
interface TaxonArrays {
  ids: string;
  genera: string;
  orders: string;
  count: number;
  /** Moths come first: species ordinals below this are Lepidoptera. */
  moths: number;
  /** Coprime to `moths`: spreads abundance ranks over the families. */
  stride: number;
}

interface TaxonNode {
  name: string;
  rank: "ORDER" | "FAMILY" | "GENUS" | "SPECIES";
  parent: string | null;
  gbif: number;
  common: string;
  moth: boolean;
}

/** The tree as nodes, parents before children, species in a fixed order. */
function taxonNodes(): TaxonNode[] {
  const nodes: TaxonNode[] = [];
  for (const order of TREE) {
    const { moth } = order;
    nodes.push({
      name: order.order,
      rank: "ORDER",
      parent: null,
      gbif: order.gbif,
      common: order.common,
      moth,
    });
    for (const [family, genera] of Object.entries(order.families)) {
      nodes.push({ name: family, rank: "FAMILY", parent: order.order, gbif: 0, common: "", moth });
      for (const [genus, epithets] of Object.entries(genera)) {
        nodes.push({ name: genus, rank: "GENUS", parent: family, gbif: 0, common: "", moth });
        for (const entry of epithets) {
          const [epithet, common = ""] = entry.split(":");
          nodes.push({
            name: `${genus} ${epithet}`,
            rank: "SPECIES",
            parent: genus,
            gbif: 0,
            common,
            moth,
          });
        }
      }
    }
  }
  for (const node of nodes) if (node.gbif === 0) node.gbif = madeUpGbifKey(node.name);
  return nodes;
}

/** A stable, GBIF-looking key (7 digits) from a name: FNV-1a. */
function madeUpGbifKey(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return 1_000_000 + (h % 9_000_000);
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
  const species = nodes.filter((x) => x.rank === "SPECIES");
  species.sort((a, b) => Number(b.moth) - Number(a.moth));
  const list: Species[] = species.map((x) => ({
    id: byKey.get(`SPECIES:${x.name}`)!,
    genus: byKey.get(`GENUS:${x.parent}`)!,
    order: byKey.get(`ORDER:${orderOf(nodes, x)}`)!,
    moth: x.moth,
  }));
  const literal = (values: number[]): string => `{${values.join(",")}}`;
  const moths = list.filter((x) => x.moth).length;
  let stride = Math.floor(moths * 0.382);
  while (gcd(stride, moths) !== 1) stride++;
  return {
    ids: literal(list.map((x) => x.id)),
    genera: literal(list.map((x) => x.genus)),
    orders: literal(list.map((x) => x.order)),
    count: list.length,
    moths,
    stride,
  };
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

function parentKey(nodes: TaxonNode[], node: TaxonNode): string {
  const parent = nodes.find((x) => x.name === node.parent)!;
  return `${parent.rank}:${parent.name}`;
}

function orderOf(nodes: TaxonNode[], node: TaxonNode): string {
  let current = node;
  while (current.parent !== null) current = nodes.find((x) => x.name === current.parent)!;
  return current.name;
}

async function ensureAlgorithm(
  tx: Tx,
  algorithm: {
    key: string;
    name: string;
    version: string;
    description: string;
    taskType: string;
    uri: string;
  },
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
): Promise<{
  manager: number;
  researcher1: number;
  researcher2: number;
  member: number;
  mlManager: number;
  admin: number;
}> {
  const people = [
    ["manager", "Maria Castillo", false],
    ["researcher1", "Jonas Berg", false],
    ["researcher2", "Aiko Tanaka", false],
    ["member", "Sam Okafor", false],
    ["mlManager", "Priya Raman", false],
    ["admin", "Platform Admin", true],
  ] as const;
  const ids: Record<string, number> = {};
  for (const [role, name, superuser] of people) {
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
