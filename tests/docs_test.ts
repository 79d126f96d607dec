/**
 * The documentation is a map that holds together: every relative link of README.md and
 * docs/*.md reaches an existing file (and, for `file.md#anchor`, a heading of that file, by
 * GitHub's slug rules), every task of deno.json is named in it, the README stays short, and no
 * tracker item number ("issue 13", "stop 17") stands in for what it meant. Needs no services.
 */
import { fileURLToPath } from "node:url";
import { assert, assertEquals } from "./assert.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const README_MAX_LINES = 250;

/** README.md and every Markdown file under docs/, as paths relative to the repository. */
async function documentationFiles(): Promise<string[]> {
  const files = ["README.md"];
  for await (const entry of Deno.readDir(`${ROOT}docs`)) {
    if (entry.isFile && entry.name.endsWith(".md")) files.push(`docs/${entry.name}`);
  }
  return files.sort();
}

/** The text outside fenced code blocks and inline code spans (where links are not links). */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "")
    .replace(/(`+)[\s\S]*?\1/g, "");
}

/**
 * The anchor GitHub gives a heading (github-slugger): the rendered text lower-cased, anything
 * but letters, marks, numbers, connector punctuation, spaces and hyphens removed, spaces made
 * hyphens; a repeated slug gets `-1`, `-2`, ….
 */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const withoutFences = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "");
  for (const match of withoutFences.matchAll(/^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$/gm)) {
    const text = match[1]
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // links and images: their text
      .replace(/<[^>]+>/g, "") // inline HTML
      .replace(/[`*]/g, ""); // code spans and emphasis markers
    const base = text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "").replace(/ /g, "-");
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

/** The inline link targets `[text](target)` of `markdown`, outside code. */
function linkTargets(markdown: string): string[] {
  return [...prose(markdown).matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)]
    .map((m) => m[1]);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

Deno.test("docs: GitHub heading anchors", () => {
  const anchors = headingAnchors(
    "# Title\n## Running Temporal's TS SDK under Deno\n### `dwca`\n## Who may do what\n" +
      "## Who may do what\n```\n# not a heading\n```\n## 1,000,000 rows: 1 vs 2 (2026-11-30)\n" +
      "## Sampling effort: `sessions_csv`, `captures_csv`\n## [Link](x.md) **bold** — dash\n",
  );
  assertEquals([...anchors], [
    "title",
    "running-temporals-ts-sdk-under-deno",
    "dwca",
    "who-may-do-what",
    "who-may-do-what-1",
    "1000000-rows-1-vs-2-2026-11-30",
    "sampling-effort-sessions_csv-captures_csv",
    "link-bold--dash",
  ]);
});

Deno.test("docs: every relative link reaches a file, and its anchor a heading", async () => {
  const broken: string[] = [];
  const anchorsOf = new Map<string, Set<string>>();
  async function anchors(path: string): Promise<Set<string>> {
    let found = anchorsOf.get(path);
    if (!found) {
      found = headingAnchors(await Deno.readTextFile(path));
      anchorsOf.set(path, found);
    }
    return found;
  }
  let checked = 0;
  for (const file of await documentationFiles()) {
    const text = await Deno.readTextFile(`${ROOT}${file}`);
    for (const target of linkTargets(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto: …
      checked++;
      const [pathPart, anchor] = target.split("#", 2) as [string, string | undefined];
      const resolved = pathPart === ""
        ? `${ROOT}${file}`
        : fileURLToPath(new URL(decodeURI(pathPart), new URL(file, `file://${ROOT}`)));
      if (!(await exists(resolved))) {
        broken.push(`${file}: ${target} (no such file)`);
        continue;
      }
      if (anchor !== undefined && resolved.endsWith(".md")) {
        if (!(await anchors(resolved)).has(decodeURIComponent(anchor))) {
          broken.push(`${file}: ${target} (no such heading)`);
        }
      }
    }
  }
  assertEquals(broken, []);
  assert(checked > 20, `only ${checked} relative links found: is the link pattern right?`);
});

Deno.test("docs: every deno.json task is documented", async () => {
  const { tasks } = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)) as {
    tasks: Record<string, string>;
  };
  let documentation = "";
  for (const file of await documentationFiles()) {
    documentation += await Deno.readTextFile(`${ROOT}${file}`);
  }
  const missing = Object.keys(tasks).filter((name) => {
    const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    return !new RegExp(`deno task ${escaped}(?![\\w:-])`).test(documentation);
  });
  assertEquals(missing, [], "tasks named nowhere as `deno task <name>` in README.md or docs/");
});

Deno.test("docs: README.md stays a map", async () => {
  const lines = (await Deno.readTextFile(`${ROOT}README.md`)).split("\n");
  if (lines.at(-1) === "") lines.pop();
  assert(lines.length <= README_MAX_LINES, `README.md has ${lines.length} lines`);
});

Deno.test("docs: no tracker item numbers in README.md or docs/", async () => {
  const found: string[] = [];
  for (const file of await documentationFiles()) {
    const lines = (await Deno.readTextFile(`${ROOT}${file}`)).split("\n");
    lines.forEach((line, index) => {
      for (const match of line.matchAll(/\b(?:issues?|stops?)[\s-]+#?\d+/gi)) {
        found.push(`${file}:${index + 1}: ${match[0]}`);
      }
    });
  }
  assertEquals(found, []);
});
