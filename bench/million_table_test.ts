import { fileURLToPath } from "node:url";
import { assert, assertEquals } from "../tests/assert.ts";
import {
  type KeptRun,
  markdownTable,
  MILLION,
  millionFormats,
  millionTableMarkdown,
  readKeptRuns,
  withMillionTable,
} from "./million_table.ts";
import type { ExportRun } from "./run.ts";

function exportRun(format: string, backend: "s3" | "fs", workers: string, seconds: number) {
  return {
    format,
    backend,
    workers,
    status: "SUCCESS",
    seconds,
    ratioToReference: 0.8,
    workerPeakRssMb: 190.4,
    loadAverage: "2.50 2.00 1.00",
  } as unknown as ExportRun;
}

function run(file: string, date: string, exports: ExportRun[], extra = {}): KeptRun {
  return {
    file,
    command: `deno task bench ${file}`,
    commit: "abc1234",
    results: { date, occurrences: MILLION, exports },
    ...extra,
  };
}

Deno.test("a cell shows the latest successful run of its format, backend and workers", () => {
  const older = run("old.json", "2026-12-01T00:00:00Z", [exportRun("dwca", "s3", "split", 300)]);
  const newer = run("new.json", "2026-12-02T00:00:00Z", [
    exportRun("dwca", "s3", "split", 200),
    { ...exportRun("dwca", "fs", "split", 100), status: "FAILURE: boom" },
  ]);
  const table = millionTableMarkdown([newer, older], ["dwca"]);
  assert(table.includes("| `dwca` | 200.0 s, 0.80×, 190 MB (b) |"), table);
  assert(!table.includes("300.0 s"), table);
  // the failed fs run fills no cell; the old run fills none either, so it is not listed
  assert(table.includes("`dwca` (fs, 1 streaming worker)"), table);
  assert(!table.includes("- a:"), table);
  assert(table.includes("- b: 2026-12-02, code as of `abc1234`, load 2.5–2.5"), table);
  assert(table.includes("Not measured (3 of 4 cells)"), table);
});

Deno.test("a superseded export leaves its cell not measured, with why; runs at other sizes count for nothing", () => {
  const superseded = run("a.json", "2026-12-01T00:00:00Z", [
    exportRun("taxon_counts_csv", "s3", "split", 272),
  ], {
    superseded: [{ format: "taxon_counts_csv", backend: "s3", workers: "split", why: "a defect" }],
  });
  const small = run("b.json", "2026-12-02T00:00:00Z", [
    exportRun("taxon_counts_csv", "fs", "split", 5),
  ]);
  small.results.occurrences = 100_000;
  const table = millionTableMarkdown([superseded, small], ["taxon_counts_csv"]);
  assert(table.includes("(S3, 1 streaming worker; its figure was superseded: a defect)"), table);
  assert(!table.includes("272"), table);
  assert(!table.includes(" s, "), table);
});

Deno.test("markdownTable lays a table out as deno fmt does", async () => {
  const table = markdownTable(["format", "S3"], [["`dwca`", "200.0 s, 0.80×, 190 MB (a)"], [
    "x",
    "not measured",
  ]]);
  const fmt = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext", "md", "-"],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const writer = fmt.stdin.getWriter();
  await writer.write(new TextEncoder().encode(`${table}\n`));
  await writer.close();
  const out = await fmt.output();
  assertEquals(new TextDecoder().decode(out.stdout), `${table}\n`);
});

Deno.test("docs/benchmarks.md holds the table bench/runs makes (deno task bench:table)", async () => {
  const runs = await readKeptRuns(fileURLToPath(new URL("./runs", import.meta.url)));
  const doc = await Deno.readTextFile(new URL("../docs/benchmarks.md", import.meta.url));
  assertEquals(withMillionTable(doc, millionTableMarkdown(runs, millionFormats())), doc);
  for (const format of millionFormats()) assert(doc.includes(`| \`${format}\``), format);
});
