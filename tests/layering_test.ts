/**
 * Issue 14, layering: the worker's code (activities, workflows) and everything below it
 * (domain, db, registry, storage, config) never imports the HTTP layer (`api/`); the rules both
 * sides use live in `domain/`. And no module imports itself through others: a shared piece lives
 * in the module both sides import, never in one of them.
 */
import { fileURLToPath } from "node:url";
import { assertEquals } from "./assert.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BELOW_API = ["activities", "workflows", "domain", "db", "registry", "storage", "config"];

Deno.test("nothing below the HTTP layer imports api/", async () => {
  const offenders: string[] = [];
  for (const folder of BELOW_API) {
    for await (const path of walk(`${ROOT}${folder}`)) {
      const text = await Deno.readTextFile(path);
      for (const match of text.matchAll(/from "((?:\.\.\/)+api\/[^"]+)"/g)) {
        offenders.push(`${path.slice(ROOT.length)} imports ${match[1]}`);
      }
    }
  }
  assertEquals(offenders, []);
});

async function* walk(dir: string, skip = new Set<string>()): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory && skip.has(entry.name)) continue;
    if (entry.isDirectory) yield* walk(path, skip);
    else if (entry.name.endsWith(".ts")) yield path;
  }
}

/** Folders the import graph leaves out: tools, dependencies and data, none of them our code. */
const NOT_OURS = new Set([".tools", "node_modules", ".data", ".git"]);

Deno.test("no import cycles among the repository's .ts files", async () => {
  const graph = await importGraph(ROOT);
  assertEquals(importCycles(graph), []);
});

Deno.test("the cycle check names each cycle, through type imports and re-exports", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files: Record<string, string> = {
      "a.ts": 'import type { B } from "./sub/b.ts";\nexport type A = B;\n',
      "sub/b.ts": 'export { c as B } from "../c.ts";\n',
      "c.ts": 'import {\n  a,\n} from "./a.ts";\nexport const c = a;\n',
      "d.ts": 'export * from "./d.ts";\n',
      "e.ts": 'import "./a.ts";\nconst x = await import("./x.ts");\n',
      "x.ts": "export {};\n",
    };
    await Deno.mkdir(`${dir}/sub`);
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(`${dir}/${name}`, text);
    }
    assertEquals(importCycles(await importGraph(`${dir}/`)), [
      "a.ts → sub/b.ts → c.ts → a.ts",
      "d.ts → d.ts",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Every .ts file of the repository (relative path) → the repository files it imports or
 * re-exports by a relative specifier, type-only imports included: a cycle of types is a cycle of
 * modules all the same.
 */
async function importGraph(root: string): Promise<Map<string, string[]>> {
  const graph = new Map<string, string[]>();
  for await (const path of walk(root.replace(/\/$/, ""), NOT_OURS)) {
    const file = path.slice(root.length).replace(/^\//, "");
    const text = await Deno.readTextFile(path);
    const targets = new Set<string>();
    const specifiers = /(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.{1,2}\/[^"']+\.ts)["']/g;
    for (const match of text.matchAll(specifiers)) {
      targets.add(new URL(match[1], `file:///${file}`).pathname.slice(1));
    }
    graph.set(file, [...targets].sort());
  }
  return graph;
}

/**
 * The import cycles of `graph`, one per strongly connected component (Tarjan), each named by
 * a path through it back to its start: "a.ts → b.ts → a.ts".
 */
function importCycles(graph: Map<string, string[]>): string[] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      const selfImport = (graph.get(node) ?? []).includes(node);
      if (component.length > 1 || selfImport) components.push(component);
    }
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) visit(node);
  return components.map((component) => cyclePath(graph, new Set(component))).sort();
}

/** A shortest path from the component's first file (by name) back to itself, inside it. */
function cyclePath(graph: Map<string, string[]>, component: Set<string>): string {
  const start = [...component].sort()[0];
  const cameFrom = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const next of graph.get(node) ?? []) {
      if (!component.has(next)) continue;
      if (next === start) {
        const path = [start];
        for (let at = node; at !== start; at = cameFrom.get(at)!) path.splice(1, 0, at);
        return [...path, start].join(" → ");
      }
      if (!cameFrom.has(next)) {
        cameFrom.set(next, node);
        queue.push(next);
      }
    }
  }
  return [...component].sort().join(", ");
}
