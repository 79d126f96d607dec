/**
 * The column lists of docs/formats.md, generated from the formats' declared `contents` (the
 * one definition the data card reads too): each format's list sits between
 * `<!-- contents:<key> -->` and `<!-- /contents:<key> -->`; `deno task docs:formats` rewrites
 * them and `registry/format_docs_test.ts` fails when the doc is not what the declarations make.
 */
import { exporters, supportedFormats } from "./mod.ts";
import type { ContentEntry, Exporter } from "./types.ts";

/** One Markdown line of a content entry: `` - `name` (unit): description. `` (+ columns). */
function entryLine(entry: ContentEntry): string {
  const unit = entry.unit ? ` (${entry.unit})` : "";
  const columns = entry.columns
    ? ` Columns: ${entry.columns.map((c) => `\`${c}\``).join(", ")}.`
    : "";
  return `- \`${entry.name}\`${unit}: ${entry.description}.${columns}`;
}

/** The generated list of one format: its contents, one line each, in file order. */
export function contentsMarkdown(exporter: Exporter): string {
  return (exporter.contents ?? []).map(entryLine).join("\n");
}

/**
 * `doc` with every `<!-- contents:<key> -->` … `<!-- /contents:<key> -->` block replaced by the
 * format's generated list. Throws when a registered format has no block, or a block names no
 * registered format.
 */
export function withGeneratedContents(doc: string): string {
  const seen = new Set<string>();
  const out = doc.replace(
    /<!-- contents:([a-z0-9_]+) -->\n[\s\S]*?<!-- \/contents:\1 -->/g,
    (_, key: string) => {
      if (!Object.hasOwn(exporters, key)) throw new Error(`docs name an unknown format: ${key}`);
      seen.add(key);
      // blank lines around the list, as `deno fmt` writes Markdown
      return `<!-- contents:${key} -->\n\n${
        contentsMarkdown(exporters[key])
      }\n\n<!-- /contents:${key} -->`;
    },
  );
  const missing = supportedFormats().filter((key) => !seen.has(key));
  if (missing.length > 0) {
    throw new Error(`formats without a contents block: ${missing.join(", ")}`);
  }
  return out;
}
