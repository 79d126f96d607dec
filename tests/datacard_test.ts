/**
 * Column choice, citation and data card, end to end through the API and a worker: every CSV
 * format that declares its columns exports a chosen subset that is exactly the full file's
 * projection (Python's csv module, `tests/columns_check.py`), refuses unknown, repeated,
 * out-of-order and empty lists with nothing created, and counts other columns as another
 * request (docs/formats.md, "Choosing columns").
 */
import { fileURLToPath } from "node:url";
import { createApp } from "../api/mod.ts";
import { seedDemo } from "../db/seed_demo.ts";
import { describeFormats, getExporter } from "../registry/mod.ts";
import { assert, assertEquals } from "./assert.ts";
import { type Harness, startHarness } from "./harness.ts";
import { serviceTest } from "./support.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Creates an export through the API; its status and JSON. */
async function create(
  h: Harness,
  token: string,
  body: Record<string, unknown>,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await h.api("POST", "/api/v2/exports/", { token, body });
  return { status: res.status, json: await res.json() };
}

/**
 * Waits for SUCCESS, checks the export's citation (project, owner, format, count, date, the
 * download route) and downloads the file.
 */
async function fileOf(h: Harness, token: string, id: number): Promise<Uint8Array> {
  const done = await h.waitForExport(id, token);
  assertEquals(done.status, "SUCCESS", JSON.stringify(done));
  const [p] = await h.sql`
    select p.name, coalesce(nullif(u.name, ''), u.email) as owner from data_exports e
    join projects p on p.id = e.project_id left join users u on u.id = p.owner_id
    where e.id = ${id}`;
  const count = (done.record_count as number).toLocaleString("en-US");
  const date = String(done.finished_at).slice(0, 10);
  assertEquals(
    done.citation,
    `Project "${p.name}"${p.owner ? ` (owner ${p.owner})` : ""}. ${
      describeFormats().find((f) => f.key === done.format)!.label
    } export (${done.format}), ${count} record${done.record_count === 1 ? "" : "s"}, exported ` +
      `${date} via ami-exports: ${done.download_url}`,
  );
  assert(String(done.download_url).endsWith(`/api/v2/exports/${id}/download/`));
  return await h.download(done.file_url as string);
}

/** Runs `tests/columns_check.py` on a full file and its subset; the subset's row count. */
async function checkProjection(
  full: Uint8Array,
  subset: Uint8Array,
  columns: string[],
): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "columns-" });
  try {
    await Deno.writeFile(`${dir}/full.csv`, full);
    await Deno.writeFile(`${dir}/subset.csv`, subset);
    const out = await new Deno.Command(`${ROOT}.tools/venv/bin/python`, {
      args: [
        `${ROOT}tests/columns_check.py`,
        `${dir}/full.csv`,
        `${dir}/subset.csv`,
        columns.join(","),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    assert(out.success, `columns_check.py: ${decoder.decode(out.stderr)}`);
    return JSON.parse(decoder.decode(out.stdout)).rows;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "columns: every column-declaring CSV format exports its chosen columns as the projection",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "s3" });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 40, seed: 31 });
      const token = seed.token;
      const formats = describeFormats().filter((f) => f.columns);
      assert(formats.length >= 7, `column formats: ${formats.map((f) => f.key)}`);
      assert(!describeFormats().find((f) => f.key === "occurrences_simple_csv")?.columns);
      const exportsBefore = async (): Promise<number> =>
        Number((await h.sql`select count(*)::int as n from data_exports`)[0].n);

      // refusals: nothing is created, the message names the column
      const f = formats[0];
      const all = f.columns!;
      const before = await exportsBefore();
      for (
        const [columns, says] of [
          [[all[0], "no_such_column"], "no_such_column"],
          [[all[0], all[0]], `column named twice: ${all[0]}`],
          [[all[1], all[0]], `column out of the format's order: ${all[0]}`],
          [[], "the list is empty"],
        ] as const
      ) {
        const refused = await create(h, token, {
          project: seed.project_id,
          format: f.key,
          columns,
        });
        assertEquals(refused.status, 400, JSON.stringify(refused.json));
        assert(String(refused.json.error).includes(says), String(refused.json.error));
      }
      const notAccepted = await create(h, token, {
        project: seed.project_id,
        format: "occurrences_simple_csv",
        columns: ["id"],
      });
      assertEquals(notAccepted.status, 400, JSON.stringify(notAccepted.json));
      assertEquals(await exportsBefore(), before, "a refused request creates nothing");

      // every format: full and subset (first, every other one, last), one of them with a BOM
      const started = await Promise.all(formats.map(async (format, n) => {
        const cols = format.columns!;
        const columns = cols.filter((_, i) => i === 0 || i % 2 === 1 || i === cols.length - 1);
        const excel = n === 0 ? { excel_compatible: true } : {};
        const full = await create(h, token, {
          project: seed.project_id,
          format: format.key,
          ...excel,
        });
        const subset = await create(h, token, {
          project: seed.project_id,
          format: format.key,
          columns,
          ...excel,
        });
        assertEquals(full.status, 201, JSON.stringify(full.json));
        assertEquals(subset.status, 201, JSON.stringify(subset.json));
        assertEquals(subset.json.columns, columns);
        assertEquals(full.json.columns, null);
        assertEquals(
          [full.json.citation, subset.json.citation],
          [null, null],
          "null until SUCCESS",
        );
        return { format, columns, full: full.json.id as number, subset: subset.json.id as number };
      }));
      for (const s of started) {
        const full = await fileOf(h, token, s.full);
        const subset = await fileOf(h, token, s.subset);
        const rows = await checkProjection(full, subset, s.columns);
        const card = await h.api("GET", `/api/v2/exports/${s.subset}/datacard/`, { token });
        assertEquals(cardContents(await card.text()).names, s.columns, "the card lists the subset");
        const [{ n }] = await h
          .sql`select record_count as n from data_exports where id = ${s.full}`;
        assertEquals(rows, Number(n), `${s.format.key}: every row`);
      }

      // reuse: the same columns reuse, other columns are another request, all columns = none
      const s = started[1];
      const same = await create(h, token, {
        project: seed.project_id,
        format: s.format.key,
        columns: s.columns,
      });
      assertEquals([same.status, same.json.id], [200, s.subset]);
      const everyColumn = await create(h, token, {
        project: seed.project_id,
        format: s.format.key,
        columns: s.format.columns,
      });
      assertEquals([everyColumn.status, everyColumn.json.id], [200, s.full]);
      const other = await create(h, token, {
        project: seed.project_id,
        format: s.format.key,
        columns: s.columns.slice(0, 1),
      });
      assertEquals(other.status, 201, JSON.stringify(other.json));
      await fileOf(h, token, other.json.id as number);
    } finally {
      await h.close();
    }
  },
});

/** What `tests/datacard_check.py` read from a file. */
interface FileContents {
  names: string[];
  headers: Record<string, string[]>;
  readme: string | null;
}

/** Reads `bytes` (a file of `extension`) with `tests/datacard_check.py`. */
async function fileContents(bytes: Uint8Array, extension: string): Promise<FileContents> {
  const path = await Deno.makeTempFile({ prefix: "datacard-", suffix: `.${extension}` });
  try {
    await Deno.writeFile(path, bytes);
    const out = await new Deno.Command(`${ROOT}.tools/venv/bin/python`, {
      args: [`${ROOT}tests/datacard_check.py`, path, extension],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    assert(out.success, `datacard_check.py: ${decoder.decode(out.stderr)}`);
    return JSON.parse(decoder.decode(out.stdout));
  } finally {
    await Deno.remove(path);
  }
}

/**
 * The names a card lists under its last heading (`` - `name` …``) and, per name, the columns
 * of its `Columns: `a`, `b`.` sentence.
 */
function cardContents(card: string): { names: string[]; headers: Record<string, string[]> } {
  const section = card.slice(card.lastIndexOf("\n## "));
  const names: string[] = [];
  const headers: Record<string, string[]> = {};
  for (const match of section.matchAll(/^- `([^`]+)`[^\n]*$/gm)) {
    names.push(match[1]);
    const columns = match[0].match(/ Columns: (.*)\.$/);
    if (columns) headers[match[1]] = [...columns[1].matchAll(/`([^`]+)`/g)].map((m) => m[1]);
  }
  return { names, headers };
}

Deno.test({
  name: "data card: every format's card lists exactly its file's columns or members, 409 before",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "s3" });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 40, seed: 32 });
      const token = seed.token;
      // the formats that fetch capture images are left out: this project's captures are not
      // served, so every crop would be skipped and the export refused (tests/crops_by_taxon_test.ts)
      const formats = describeFormats().filter((f) => !getExporter(f.key)?.fetchesImages);
      const ids = new Map<string, number>();
      for (const format of formats) {
        const created = await create(h, token, { project: seed.project_id, format: format.key });
        assertEquals(created.status, 201, JSON.stringify(created.json));
        ids.set(format.key, created.json.id as number);
      }
      // a filtered archive: the card and its README state the filter in words
      const [station] = await h.sql`select id, name from deployments
        where project_id = ${seed.project_id} order by id limit 1`;
      const filtered = await create(h, token, {
        project: seed.project_id,
        format: "dwca",
        filters: { deployment_ids: [Number(station.id)] },
      });
      assertEquals(filtered.status, 201, JSON.stringify(filtered.json));
      // before SUCCESS (or a refused read): no card
      const early = await h.api("GET", `/api/v2/exports/${ids.get("dwca")}/datacard/`, { token });
      const earlyJson = await early.json();
      if (early.status === 409) assert(String(earlyJson.error).includes("data card"));
      else assertEquals(early.status, 200);
      const missing = await h.api("GET", "/api/v2/exports/987654/datacard/", { token });
      assertEquals(missing.status, 404);
      await missing.body?.cancel();

      const filteredId = filtered.json.id as number;
      const filteredZip = await fileOf(h, token, filteredId);
      const filteredCard = await (await h.api("GET", `/api/v2/exports/${filteredId}/datacard/`, {
        token,
      })).text();
      const inWords = `- Deployments: ${station.name} (\`deployment_ids\`)`;
      assert(filteredCard.includes(inWords), filteredCard);
      assert((await fileContents(filteredZip, "zip")).readme!.includes(inWords));
      for (const format of formats) {
        const id = ids.get(format.key)!;
        const bytes = await fileOf(h, token, id);
        const res = await h.api("GET", `/api/v2/exports/${id}/datacard/`, { token });
        assertEquals(res.status, 200, format.key);
        assert(res.headers.get("content-type")!.startsWith("text/markdown"));
        const card = await res.text();
        const done = await h.waitForExport(id, token);
        const size = `${(done.file_size as number).toLocaleString("en-US")} bytes`;
        for (const fact of [done.citation, done.checksum, size]) {
          assert(card.includes(String(fact)), `${format.key}: card lacks ${fact}`);
        }
        for (const setting of ["TIME_ZONE", "MEDIA_URL", "PLATFORM_URL", "Format revision"]) {
          assert(card.includes(setting), `${format.key}: card lacks ${setting}`);
        }
        const listed = cardContents(card);
        const found = await fileContents(bytes, format.extension);
        assertEquals(
          listed.names,
          found.names,
          `${format.key}: the card lists the file's contents`,
        );
        assertEquals(listed.headers, found.headers, `${format.key}: each member's header`);
        if (format.extension === "zip") {
          // the archive's README.md is the card but for what it cannot know while written
          // (docs/formats.md, "The data card inside archives")
          const readme = found.readme!;
          assert(readme, `${format.key}: README.md`);
          assertEquals(cardContents(readme), listed, `${format.key}: README lists the same`);
          const same = (text: string): string[] =>
            text.split("\n").filter((l) =>
              !/^- (Requested by|Records|File name|Size|Checksum|Size and checksum|Retention|Settings key|Project data version|Stated by)/
                .test(l) && !l.startsWith('Project "')
            );
          assertEquals(same(readme), same(card), `${format.key}: README equals the card`);
          assert(
            readme.includes(`- Records: ${(done.record_count as number).toLocaleString("en-US")}.`),
          );
        }
        // declared descriptions are Markdown (they showed \` ), and a format that chooses no
        // columns says what it holds
        assertEquals(card.includes("\\`"), false, `${format.key}: escaped backtick`);
        if (format.extension !== "csv" && format.extension !== "parquet") {
          assertEquals(card.includes("Columns: every column"), false, format.key);
          assert(card.includes("- Holds the "), `${format.key}: ${card}`);
        }
      }

      // served under other settings: the card names each one that differs, with both values
      const otherZone = h.config.formats.timeZone === "Pacific/Auckland"
        ? "Europe/Paris"
        : "Pacific/Auckland";
      const elsewhere = createApp({
        sql: h.sql,
        storage: h.storage,
        temporal: h.temporal.client,
        config: {
          ...h.config,
          formats: { ...h.config.formats, timeZone: otherZone, platformUrl: "https://other.test" },
        },
      });
      const moved = await (await elsewhere.request(`/api/v2/exports/${ids.get("dwca")}/datacard/`, {
        headers: { Authorization: `Token ${token}` },
      })).text();
      assert(moved.includes("## Settings: this deployment's, not the file's"), moved);
      assert(
        moved.includes(
          `- \`TIME_ZONE\`: \`${h.config.formats.timeZone}\` when written, \`${otherZone}\` now.`,
        ),
        moved,
      );
      assert(
        moved.includes(
          `- \`PLATFORM_URL\`: \`${h.config.formats.platformUrl}\` when written, ` +
            "`https://other.test` now.",
        ),
        moved,
      );
      assertEquals(moved.includes("MEDIA_URL`: "), false, moved);
    } finally {
      await h.close();
    }
  },
});
