import { fileURLToPath } from "node:url";
import { assertEquals } from "../tests/assert.ts";
import { withGeneratedContents } from "./format_docs.ts";

const DOC = fileURLToPath(new URL("../docs/formats.md", import.meta.url));

Deno.test("docs/formats.md lists each format's contents as the declarations state them", async () => {
  const doc = await Deno.readTextFile(DOC);
  // a difference means: run `deno task docs:formats` (the declarations are the one definition)
  assertEquals(doc, withGeneratedContents(doc));
});
