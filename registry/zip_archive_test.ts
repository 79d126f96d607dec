import { assert, assertEquals } from "../tests/assert.ts";
import { assertResumable, drainStream, memorySideStore } from "../tests/stream_drain.ts";
import { assertArchiveShardsCompose } from "./formats/test_support.ts";
import { skippedCount } from "./image_dataset.ts";
import type {
  ExportCardFacts,
  ExportQueryContext,
  RecordId,
  SideStore,
  StreamState,
} from "./types.ts";
import { zipArchive } from "./zip_archive.ts";
import { unpackEntries } from "./zip_entries_packed.ts";

/** An image-dataset-like archive over in-memory rows: whole files, a table, a document. */
const captures = [1, 2, 3, 4, 5].map((id) => ({ id, path: `images/${id}.jpg`, label: `m${id}` }));
const archive = zipArchive({
  key: "test_images_zip",
  label: "Test",
  description: "Test",
  acceptedFilters: [],
  count: () => Promise.resolve(captures.length),
  members: [
    {
      name: null,
      batch: (_ctx, state, limit) => {
        const page = captures.filter((c) => c.id > Number(state.afterId)).slice(0, limit);
        const files = page.map((c) => ({ name: c.path, data: new Uint8Array([c.id, 0, 255]) }));
        return Promise.resolve({
          data: "",
          files,
          lastId: page.at(-1)?.id ?? null,
          rows: page.length,
        });
      },
    },
    {
      name: "labels.csv",
      head: () => "id,label\n",
      batch: (_ctx, state, limit) => {
        const page = captures.filter((c) => c.id > Number(state.afterId)).slice(0, limit);
        const data = page.map((c) => `${c.id},${c.label}\n`).join("");
        return Promise.resolve({
          data,
          lastId: page.at(-1)?.id ?? null,
          rows: page.length,
          records: page.length,
          extra: { labels: Number(state.labels) + page.length },
        });
      },
    },
    { name: "README.txt", head: (_ctx, state) => `${state.labels} labels\n` },
  ],
  extra: { labels: 0 },
});

/** Names and contents (latin1) of the archive's members, as Python's zipfile reads them. */
async function readZip(bytes: Uint8Array): Promise<Record<string, string>> {
  const child = new Deno.Command("python3", {
    args: [
      "-c",
      `import io, json, sys, zipfile
z = zipfile.ZipFile(io.BytesIO(sys.stdin.buffer.read()))
assert z.testzip() is None
print(json.dumps({n: z.read(n).decode("latin1") for n in z.namelist()}))`,
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(bytes);
  await writer.close();
  const { stdout } = await child.output();
  return JSON.parse(new TextDecoder().decode(stdout));
}

Deno.test("zip_archive: whole files, a table and a document, resumable from every chunk", async () => {
  const ctx = {} as ExportQueryContext;
  const { bytes, records } = await assertResumable(archive, ctx, 2);
  assertEquals(records, 5);
  const members = await readZip(bytes);
  assertEquals(Object.keys(members), [...captures.map((c) => c.path), "labels.csv", "README.txt"]);
  assertEquals(members["images/3.jpg"], "\x03\x00\xff");
  assertEquals(members["labels.csv"], "id,label\n1,m1\n2,m2\n3,m3\n4,m4\n5,m5\n");
  assertEquals(members["README.txt"], "5 labels\n");
});

Deno.test("zip_archive: a phase capping its own batches goes on with `more`", async () => {
  // at most 2 files a batch whatever the limit (as yolo_dataset caps its frames)
  const capped = zipArchive({
    key: "test_capped_zip",
    label: "Test",
    description: "Test",
    acceptedFilters: [],
    count: () => Promise.resolve(captures.length),
    members: [{
      name: null,
      batch: (_ctx, state, limit) => {
        const take = Math.min(limit, 2);
        const page = captures.filter((c) => c.id > Number(state.afterId)).slice(0, take);
        return Promise.resolve({
          data: "",
          files: page.map((c) => ({ name: c.path, data: c.label })),
          lastId: page.at(-1)?.id ?? null,
          rows: page.length,
          records: page.length,
          more: page.length === take,
        });
      },
    }],
  });
  const ctx = {} as ExportQueryContext;
  const drained = await drainStream(capped, ctx, { limit: 10 });
  // batches of 2, 2 and 1 files, then the central directory
  assertEquals(drained.chunks.length, 4);
  assertEquals(drained.records, 5);
  const members = await readZip(drained.bytes);
  assertEquals(Object.keys(members), captures.map((c) => c.path));
  assertEquals(members["images/5.jpg"], "m5");
  await assertResumable(capped, ctx, 10);
});

Deno.test("zip_archive: a checkpoint listing its entries (before the packed form) resumes", async () => {
  const ctx = {} as ExportQueryContext;
  const full = await drainStream(archive, ctx, { limit: 2 });
  for (let i = 1; i < full.states.length - 1; i++) {
    const { packedEntries, ...rest } = full.states[i] as Record<string, StreamState>;
    const listed = { ...rest, entries: unpackEntries(String(packedEntries)) } as StreamState;
    const resumed = await drainStream(archive, ctx, { limit: 2, from: listed });
    const prefix = full.chunks.slice(0, i).reduce((n, c) => n + c.length, 0);
    assertEquals(resumed.bytes, full.bytes.slice(prefix), `resuming a listed checkpoint ${i}`);
  }
});

/**
 * A sharded archive over in-memory keys 1–9: a phase of whole files cut by key that leaves out
 * the even keys (`skipped`, `[id, reason]` as the image formats list them), `listing.txt`
 * (the records: the keys not left out) as one unit that reads the phase's units
 * (`readsEarlierUnits`, as COCO's `annotations.json`), and `README.txt` from the merged state.
 */
const keys = [1, 2, 3, 4, 5, 6, 7, 8, 9];
type Skipped = [RecordId, string][];
const readingArchive = zipArchive({
  key: "test_reading_zip",
  label: "Test",
  description: "Test",
  acceptedFilters: [],
  count: () => Promise.resolve(keys.filter((id) => id % 2 === 1).length),
  pieceKeys: 2,
  members: [
    {
      name: null,
      batch: (_ctx, state, limit, untilId) => {
        const page = keys
          .filter((id) => id > Number(state.afterId) && (untilId == null || id <= Number(untilId)))
          .slice(0, limit);
        const left: Skipped = page.filter((id) => id % 2 === 0).map((id) => [id, "even"]);
        return Promise.resolve({
          data: "",
          files: page.filter((id) => id % 2 === 1)
            .map((id) => ({ name: `images/${id}.bin`, data: new Uint8Array([id]) })),
          lastId: page.at(-1) ?? null,
          rows: page.length,
          extra: { skipped: [...(state.skipped as Skipped), ...left] },
        });
      },
      shardBounds: (_ctx, every) =>
        Promise.resolve(
          keys.flatMap((id, i) => (i + 1) % every === 0 ? [{ id, records: i + 1 }] : []),
        ),
    },
    {
      name: "listing.txt",
      head: () => "id\n",
      batch: (_ctx, state, limit) => {
        const left = new Set((state.skipped as Skipped).map(([id]) => Number(id)));
        const page = keys.filter((id) => id > Number(state.afterId)).slice(0, limit);
        const listed = page.filter((id) => !left.has(id));
        return Promise.resolve({
          data: listed.map((id) => `${id}\n`).join(""),
          lastId: page.at(-1) ?? null,
          rows: page.length,
          records: listed.length,
          extra: { lines: Number(state.lines) + listed.length },
        });
      },
      readsEarlierUnits: true,
      holdsRecords: true,
    },
    {
      name: "README.txt",
      head: (_ctx, state) =>
        `${state.lines} listed, ${(state.skipped as Skipped).length} left out\n`,
    },
  ],
  extra: { skipped: [], lines: 0 },
});

Deno.test("zip_archive: a unit that reads earlier units keeps their values apart from its own", async () => {
  const card: ExportCardFacts = {
    exportId: 1,
    filtersDisplay: {},
    requestedBy: null,
    createdAt: "2026-01-02T03:04:05.000Z",
    downloadUrl: "",
  };
  const ctx = { card } as ExportQueryContext;
  // the phase in 3 units, listing.txt one unit after them: the unsharded bytes (README.txt
  // counts each left-out key once: the reading unit reports no list of its own)
  const { units, sides, file } = await assertArchiveShardsCompose(readingArchive, ctx, {
    batchRecords: 2,
    every: 3,
    wanted: 3,
  });
  assertEquals(units.map((u) => [u.member, u.reads]), [
    [0, undefined],
    [0, undefined],
    [0, undefined],
    [1, [0, 1, 2]],
  ]);
  const members = await readZip(file);
  assertEquals(members["listing.txt"], "id\n1\n3\n5\n7\n9\n");
  assertEquals(members["README.txt"], "5 listed, 4 left out\n");
  const unitRecord = async (side: SideStore) =>
    JSON.parse(new TextDecoder().decode((await side.get("unit.json"))!));
  const recorded = await unitRecord(sides[3]);
  // its own values: what it wrote, not the lists it read
  assertEquals(recorded.extra, { lines: 5 });

  // its states: the lists read kept apart, merged in key order; none among its own values
  // (so its progress reports no images left out: skippedCount null)
  const reading = units[3];
  const range = { ...reading, recordsBefore: 0, first: false, last: false, batchRecords: 2 };
  const earlier = reading.reads!.map((k) => sides[k]);
  const drained = await drainStream(readingArchive.shard!(range, earlier), ctx, {
    limit: 2,
    side: memorySideStore(),
  });
  assert(drained.states.length >= 4, `${drained.states.length} states`);
  const merged = [[2, "even"], [4, "even"], [6, "even"], [8, "even"]];
  for (const state of drained.states.slice(1)) {
    const { readValues, ...own } = state as Record<string, StreamState>;
    assertEquals(readValues, { skipped: merged });
    assert(!("skipped" in own), `a read list among the unit's own values: ${JSON.stringify(own)}`);
    assertEquals(skippedCount(state), null);
  }

  // resumed from any checkpoint, without the earlier stores: the same bytes and unit.json; so
  // too from a checkpoint written while read values were merged into the unit's own (readKeys)
  for (let i = 1; i < drained.states.length - 1; i++) {
    const { readValues, ...own } = drained.states[i] as Record<string, StreamState>;
    const read = readValues as Record<string, StreamState>;
    const legacy = { ...own, ...read, readKeys: Object.keys(read) } as StreamState;
    for (const [form, from] of [["kept apart", drained.states[i]], ["merged", legacy]] as const) {
      const side = memorySideStore();
      const rest = await drainStream(readingArchive.shard!(range, []), ctx, {
        limit: 2,
        from,
        side,
      });
      assertEquals(
        [...drained.chunks.slice(0, i).flatMap((c) => [...c]), ...rest.bytes],
        [...drained.bytes],
        `resuming after chunk ${i} (${form})`,
      );
      assertEquals(await unitRecord(side), recorded, `unit.json after chunk ${i} (${form})`);
    }
  }
});
