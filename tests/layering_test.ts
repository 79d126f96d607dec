/**
 * Issue 14, layering: the worker's code (activities, workflows) and everything below it
 * (domain, db, registry, storage, config) never imports the HTTP layer (`api/`); the rules both
 * sides use live in `domain/`.
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

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* walk(path);
    else if (entry.name.endsWith(".ts")) yield path;
  }
}
