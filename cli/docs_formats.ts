/**
 * `deno task docs:formats`: rewrites the generated column lists of docs/formats.md from the
 * formats' declared contents (`registry/format_docs.ts`).
 */
import { fileURLToPath } from "node:url";
import { withGeneratedContents } from "../registry/format_docs.ts";

const DOC = fileURLToPath(new URL("../docs/formats.md", import.meta.url));
const before = await Deno.readTextFile(DOC);
const after = withGeneratedContents(before);
if (after !== before) await Deno.writeTextFile(DOC, after);
console.log(after === before ? "docs/formats.md is up to date" : "docs/formats.md rewritten");
