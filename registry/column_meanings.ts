/**
 * What each column of the CSV formats means, read from `formats/column_meanings.json`: one
 * definition that the data card (`GET /api/v2/exports/<id>/datacard/`), the `README.md` inside
 * archives and the generated column lists of docs/formats.md (`deno task docs:formats`) all
 * use. The file maps a format key to its columns, in file order, each with `description` and
 * an optional `unit` ({@link ColumnMeaning}). Prose lives in data, not code: a format
 * declaration names its columns and statements, the JSON says what they mean.
 */
import meanings from "./formats/column_meanings.json" with { type: "json" };
import type { ColumnMeaning } from "./types.ts";

/** A format's column meanings, in file order. Throws when the JSON has no entry for `format`. */
export function columnMeanings(format: string): Readonly<Record<string, ColumnMeaning>> {
  const entry = (meanings as Record<string, Record<string, ColumnMeaning>>)[format];
  if (!entry) throw new Error(`registry/formats/column_meanings.json has no "${format}"`);
  return entry;
}
