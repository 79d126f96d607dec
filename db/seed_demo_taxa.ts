/**
 * The demo taxon tree (pure data): real names per order, made-up but stable GBIF keys below the
 * order, and the species arrays the occurrence generator draws from. `seed_demo.ts` writes it.
 */

/** Family → genus → "epithet" or "epithet:Common name". */
export type Families = Record<string, Record<string, string[]>>;

/** The demo taxon tree, per order. Names are real; GBIF keys of ranks below order are made up. */
export const TREE: {
  order: string;
  gbif: number;
  common: string;
  moth: boolean;
  families: Families;
}[] = [
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

/** A species of the demo tree, with the ids of its genus and order. */
export interface Species {
  id: number;
  genus: number;
  order: number;
  moth: boolean;
}

/** The demo taxon tree's species, as SQL array literals indexed by species ordinal. */
export interface TaxonArrays {
  ids: string;
  genera: string;
  orders: string;
  count: number;
  /** Moths come first: species ordinals below this are Lepidoptera. */
  moths: number;
  /** Coprime to `moths`: spreads abundance ranks over the families. */
  stride: number;
}

export interface TaxonNode {
  name: string;
  rank: "ORDER" | "FAMILY" | "GENUS" | "SPECIES";
  parent: string | null;
  gbif: number;
  common: string;
  moth: boolean;
}

/** The tree as nodes, parents before children, species in a fixed order. */
export function taxonNodes(): TaxonNode[] {
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
 * The species arrays of the tree, given the id of every node (`RANK:name` → id): moths first,
 * then the others, each in the tree's order.
 */
export function taxonArrays(nodes: TaxonNode[], byKey: Map<string, number>): TaxonArrays {
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

/** `RANK:name` of the node's parent. */
export function parentKey(nodes: TaxonNode[], node: TaxonNode): string {
  const parent = nodes.find((x) => x.name === node.parent)!;
  return `${parent.rank}:${parent.name}`;
}

/** The name of the order above the node (itself, for an order). */
export function orderOf(nodes: TaxonNode[], node: TaxonNode): string {
  let current = node;
  while (current.parent !== null) current = nodes.find((x) => x.name === current.parent)!;
  return current.name;
}
