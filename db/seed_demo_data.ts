/**
 * What a demo project holds, as pure data: its stations, the shared algorithms, its people and
 * the shape (stations, nights, captures) that grows with its size. `seed_demo.ts` writes it.
 */

/** Stations, in the order they are used; a project gets the first few. */
export const STATIONS = [
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
export const BINARY_ALGORITHM = {
  key: "demo-moth-nonmoth-2023",
  name: "Moth / Non-Moth Classifier",
  version: "2023-10",
  description: "Tells moths from other insects in a detection crop",
  taskType: "classification",
  uri: "https://example.org/models/moth-nonmoth-2023-10",
};
export const SPECIES_ALGORITHM = {
  key: "demo-moth-species-2024",
  name: "Global Moth Species Classifier",
  version: "2024-08",
  description: "Species of a moth crop, trained on GBIF occurrence images",
  taskType: "classification",
  uri: "https://example.org/models/moth-species-2024-08",
};

export const PUBLIC_BASE_URL = "https://example-bucket.s3.amazonaws.com/";
/** Nights start on this date; a station records every night from here on. */
export const FIRST_NIGHT = "2023-05-01";
/** Captures are spread over the first 10 hours of a night. */
export const NIGHT_SECONDS = 10 * 3600;

/** An algorithm of the demo predictions (`algorithms` row). */
export interface DemoAlgorithm {
  key: string;
  name: string;
  version: string;
  description: string;
  taskType: string;
  uri: string;
}

/** The project's people: role, name, superuser. The manager owns the project and the token. */
export const DEMO_PEOPLE = [
  ["manager", "Maria Castillo", false],
  ["researcher1", "Jonas Berg", false],
  ["researcher2", "Aiko Tanaka", false],
  ["member", "Sam Okafor", false],
  ["mlManager", "Priya Raman", false],
  ["admin", "Platform Admin", true],
] as const;

/** The user ids of a project's people, by role. */
export interface DemoUsers {
  manager: number;
  researcher1: number;
  researcher2: number;
  member: number;
  mlManager: number;
  admin: number;
}

/** How big a project of `n` occurrences is in stations, nights (events) and captures. */
export interface ProjectShape {
  stations: number;
  nights: number;
  events: number;
  captures: number;
  captureSeconds: number;
  images: number;
}

/** Stations, nights and captures grow with the size; ~400 occurrences a night. */
export function projectShape(n: number): ProjectShape {
  const stations = n < 5_000 ? 3 : n < 50_000 ? 4 : n < 200_000 ? 6 : 8;
  const nights = Math.min(366, Math.max(3, Math.ceil(n / (stations * 400))));
  const events = stations * nights;
  const captures = Math.min(300, Math.max(24, Math.ceil((n / events) * 0.75)));
  const captureSeconds = Math.floor(NIGHT_SECONDS / captures);
  const images = events * captures;
  return { stations, nights, events, captures, captureSeconds, images };
}
