import { assert, assertEquals } from "../tests/assert.ts";
import { centralDirectory, entryLength, type ZipEntry } from "./zip.ts";
import { MAX_IMAGE_ENTRIES } from "./image_dataset.ts";
import { packEntries, unpackEntries } from "./zip_entries_packed.ts";

/** The documented bound: bytes of the packed form per entry (measured 18.5; `MAX_IMAGE_ENTRIES`). */
const MAX_BYTES_PER_ENTRY = 20;

/** `n` entries named like crops_by_taxon's crops, back to back from offset 0. */
function cropEntries(n: number): ZipEntry[] {
  const taxa = [
    "Nymphalidae/Vanessa atalanta-4021",
    "Noctuidae/Noctua pronuba-117",
    "Noctuidae/Agrotis exclamationis-9",
    "Geometridae/Idaea aversata-20331",
  ];
  const splits = ["train", "train", "train", "val", "test"];
  const entries: ZipEntry[] = [];
  let offset = 0;
  let seed = 7;
  const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  for (let i = 0; i < n; i++) {
    const taxon = taxa[Math.floor(i / (n / taxa.length))];
    const size = 8_000 + (random() % 40_000);
    const split = splits[random() % splits.length];
    const occurrence = 1_000_000 + i * 7 + (random() % 7);
    const entry: ZipEntry = {
      name: `crops/${split}/${taxon}/${occurrence}_${2_000_000 + i * 3 + (random() % 3)}.jpg`,
      offset,
      crc: random() * 2 >>> 0,
      compressedSize: size + Math.floor(size / 1000) + 7 + (random() % 20),
      size,
    };
    entries.push(entry);
    offset += entryLength(entry);
  }
  return entries;
}

Deno.test("zip_entries_packed: 100,000 crop entries pack small and round-trip exactly", () => {
  const entries = cropEntries(100_000);
  const packed = packEntries(entries);
  const perEntry = packed.length / entries.length;
  console.log(`packed: ${packed.length} bytes, ${perEntry.toFixed(2)} bytes an entry`);
  assert(perEntry < MAX_BYTES_PER_ENTRY, `${perEntry} bytes an entry`);
  assert(MAX_IMAGE_ENTRIES * MAX_BYTES_PER_ENTRY <= 1_000_000, "the entry cap outgrows 1 MB");
  const unpacked = unpackEntries(packed);
  assertEquals(unpacked, entries);
  const at = {
    offset: entries.at(-1)!.offset + entryLength(entries.at(-1)!),
    modified: "2026-01-02T03:04:05Z",
  };
  assertEquals(centralDirectory(unpacked, at), centralDirectory(entries, at));
});

Deno.test("zip_entries_packed: odd names, gaps in offsets, ZIP64 sizes, none", () => {
  const entries: ZipEntry[] = [
    { name: "ä/b c\n\t.jpg", offset: 5, crc: 0xffffffff, compressedSize: 0, size: 0 },
    { name: "ä/b", offset: 3, crc: 0, compressedSize: 2 ** 33 + 1, size: 2 ** 40 },
    { name: "", offset: 2 ** 45, crc: 1, compressedSize: 1, size: 1 },
  ];
  assertEquals(unpackEntries(packEntries(entries)), entries);
  assertEquals(packEntries([]), "");
  assertEquals(unpackEntries(""), []);
});

// The time of one append at 100,000 entries (~0.4 s idle, measured) is a figure for the bench,
// not an assertion here: timing goals live in `deno task bench`.
Deno.test("zip_entries_packed: appending one batch at 100,000 entries keeps every entry", () => {
  const entries = cropEntries(100_100);
  let packed = packEntries(entries.slice(0, 100_000));
  packed = packEntries([...unpackEntries(packed), ...entries.slice(100_000)]);
  assertEquals(unpackEntries(packed), entries);
});
