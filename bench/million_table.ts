/**
 * The 1,000,000-occurrence table (issue 22, point 6): every record and archive format × S3 and
 * the filesystem × one and two streaming workers, each cell the latest successful export of
 * that combination among the kept runs (`bench/runs/*.json`, listed with the command and commit
 * that made them in `bench/runs/index.json`), or "not measured". Generated, never hand-edited:
 *
 *     deno task bench:table          # rewrites the block in docs/benchmarks.md
 *     deno task bench:table --check  # exits 1 when the block is out of date
 *
 * A run is added by running `deno task bench --occurrences 1000000 … --output
 * bench/runs/<name>.json` and listing `{"file": "<name>.json"}` in `bench/runs/index.json` (the
 * run records its command and commit; runs made before it did name them in the index).
 */
import { fileURLToPath } from "node:url";
import { supportedFormats } from "../registry/mod.ts";
import type { BenchResults, ExportRun } from "./run.ts";

/** One kept run as `bench/runs/index.json` lists it (command and commit read from the run when absent). */
export interface RunIndexEntry {
  /** The run's JSON, relative to `bench/runs/`. */
  file: string;
  /** The `deno task bench …` command that wrote it. */
  command: string;
  /** The commit of the code it measured. */
  commit: string;
  /**
   * Exports of this run that no longer describe the code (a defect fixed since), with why: they
   * are left out of the table, which lists the cell as not measured with this reason.
   */
  superseded?: { format: string; backend: string; workers: string; why: string }[];
}

/** A kept run: its index entry and what it found. */
export interface KeptRun extends RunIndexEntry {
  results: Pick<BenchResults, "date" | "occurrences" | "exports">;
}

/** The columns of the table: a backend and a worker layout of `deno task bench --workers`. */
export const MILLION_COLUMNS: readonly { backend: "s3" | "fs"; workers: string; title: string }[] =
  [
    { backend: "s3", workers: "split", title: "S3, 1 streaming worker" },
    { backend: "s3", workers: "split:2", title: "S3, 2 streaming workers" },
    { backend: "fs", workers: "split", title: "fs, 1 streaming worker" },
    { backend: "fs", workers: "split:2", title: "fs, 2 streaming workers" },
  ];

/**
 * The image formats: not in the table. A 1M project has ~3M boxed detections, above the entries
 * one image export may hold (`MAX_IMAGE_ENTRIES`); they are measured at 10,000 detections.
 */
export const IMAGE_FORMATS: ReadonlySet<string> = new Set(["crops_by_taxon", "yolo_dataset"]);

/** The occurrences a run must have been made at to count. */
export const MILLION = 1_000_000;

/** The run a cell shows, with the run's letter in the table. */
interface Cell {
  run: KeptRun;
  letter: string;
  export_: ExportRun;
}

/**
 * The markdown of the table, its run list and what is missing, for `runs` (any order) over
 * `formats`. A cell is `seconds s, ×ref, peak MB` (`×ref`: rows/s over the format's single-pass
 * reference of the same run, "no ref" when the run skipped it; peak: the largest streaming
 * process's VmHWM), then the letter of its run; the latest run by date wins a cell.
 */
export function millionTableMarkdown(runs: readonly KeptRun[], formats: readonly string[]): string {
  const kept = runs.filter((run) => run.results.occurrences === MILLION)
    .toSorted((a, b) => a.results.date.localeCompare(b.results.date));
  const letters = new Map(kept.map((run, i) => [run.file, String.fromCharCode(97 + i)]));
  const cells = new Map<string, Cell>();
  const supersededWhy = new Map<string, string>();
  for (const run of kept) {
    const superseded = new Map(
      (run.superseded ?? []).map((s) => [`${s.format} ${s.backend} ${s.workers}`, s.why]),
    );
    for (const export_ of run.results.exports) {
      const key = `${export_.format} ${export_.backend} ${export_.workers}`;
      if (superseded.has(key)) supersededWhy.set(key, superseded.get(key)!);
      if (export_.status !== "SUCCESS" || superseded.has(key)) continue;
      cells.set(key, { run, letter: letters.get(run.file)!, export_ });
      supersededWhy.delete(key);
    }
  }
  const rows = formats.map((format) => [
    `\`${format}\``,
    ...MILLION_COLUMNS.map(({ backend, workers }) => {
      const cell = cells.get(`${format} ${backend} ${workers}`);
      return cell ? cellText(cell) : "not measured";
    }),
  ]);
  const missing = formats.flatMap((format) =>
    MILLION_COLUMNS.filter(({ backend, workers }) => !cells.has(`${format} ${backend} ${workers}`))
      .map(({ backend, workers, title }) => {
        const why = supersededWhy.get(`${format} ${backend} ${workers}`);
        return `\`${format}\` (${title}${why ? `; its figure was superseded: ${why}` : ""})`;
      })
  );
  const used = kept.filter((run) => [...cells.values()].some((cell) => cell.run === run));
  return [
    markdownTable(["format", ...MILLION_COLUMNS.map((column) => column.title)], rows),
    "",
    "Runs (the letter in a cell; load: the 1-minute load average when its exports ended):",
    "",
    ...used.map((run) => {
      const loads = run.results.exports.map((e) => Number(e.loadAverage.split(" ")[0]));
      const load = `${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`;
      return `- ${letters.get(run.file)}: ${run.results.date.slice(0, 10)}, code as of ` +
        `\`${run.commit}\`, load ${load}, \`bench/runs/${run.file}\`: \`${run.command}\``;
    }),
    "",
    missing.length === 0
      ? "Every cell is measured."
      : `Not measured (${missing.length} of ${formats.length * MILLION_COLUMNS.length} cells): ` +
        `${missing.join(", ")}.`,
  ].join("\n");
}

function cellText({ export_, letter }: Cell): string {
  const ratio = export_.ratioToReference > 0 ? `${export_.ratioToReference.toFixed(2)}×` : "no ref";
  return `${export_.seconds.toFixed(1)} s, ${ratio}, ${
    export_.workerPeakRssMb.toFixed(0)
  } MB (${letter})`;
}

/** A markdown table laid out as `deno fmt` writes one (cells padded to their column's width). */
export function markdownTable(header: readonly string[], rows: readonly string[][]): string {
  const widths = header.map((title, i) =>
    Math.max(3, title.length, ...rows.map((row) => row[i].length))
  );
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i])).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

const BLOCK = /<!-- million-table -->\n[\s\S]*?<!-- \/million-table -->/;

/** `doc` with its `<!-- million-table -->` block replaced by `table`; throws without one. */
export function withMillionTable(doc: string, table: string): string {
  if (!BLOCK.test(doc)) throw new Error("no <!-- million-table --> block in the document");
  return doc.replace(BLOCK, () => `<!-- million-table -->\n\n${table}\n\n<!-- /million-table -->`);
}

/** Every run `bench/runs/index.json` lists, read. */
export async function readKeptRuns(dir: string): Promise<KeptRun[]> {
  const index: (Partial<RunIndexEntry> & { file: string })[] = JSON.parse(
    await Deno.readTextFile(`${dir}/index.json`),
  );
  return await Promise.all(index.map(async (entry) => {
    const results: BenchResults = JSON.parse(await Deno.readTextFile(`${dir}/${entry.file}`));
    const command = entry.command ?? results.command;
    const commit = entry.commit ?? results.commit;
    if (command === undefined || commit === undefined) {
      throw new Error(`bench/runs/index.json: ${entry.file} needs a command and a commit`);
    }
    return { ...entry, command, commit, results };
  }));
}

/** The formats of the table: every registered one but the image datasets. */
export function millionFormats(): string[] {
  return supportedFormats().filter((format) => !IMAGE_FORMATS.has(format));
}

if (import.meta.main) {
  const runs = await readKeptRuns(fileURLToPath(new URL("./runs", import.meta.url)));
  const doc = fileURLToPath(new URL("../docs/benchmarks.md", import.meta.url));
  const before = await Deno.readTextFile(doc);
  const after = withMillionTable(before, millionTableMarkdown(runs, millionFormats()));
  if (Deno.args.includes("--check")) {
    if (after !== before) {
      console.error("docs/benchmarks.md: the 1M table is out of date: run deno task bench:table");
      Deno.exit(1);
    }
    console.log("docs/benchmarks.md: the 1M table is up to date");
  } else {
    if (after !== before) await Deno.writeTextFile(doc, after);
    console.log(after === before ? "the 1M table is up to date" : "docs/benchmarks.md rewritten");
  }
}
