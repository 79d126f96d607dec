import { assertEquals } from "../tests/assert.ts";
import { assertResumable, drainStream } from "../tests/stream_drain.ts";
import type { ExportQueryContext, StreamState } from "./types.ts";
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
