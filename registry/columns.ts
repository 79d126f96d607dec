/**
 * The `columns` option: which of a format's columns a request may name, and what the stored
 * request keeps. A request names a non-empty subset of the format's columns in the format's own
 * order (docs/formats.md, "Choosing columns"); an unknown, repeated or out-of-order name is
 * refused, never silently fixed, so that the file's header is exactly what was asked for.
 */
import type { Exporter } from "./types.ts";

/** The outcome of {@link checkColumns}: the columns to store (undefined: every column). */
export type CheckedColumns =
  | { ok: true; columns: string[] | undefined }
  | { ok: false; message: string };

/**
 * Checks a request's `columns` against `exporter`'s declared columns. `requested` undefined
 * (or null) is "every column". A list equal to the full column list is stored as absent: it asks
 * for the same file. Messages name the offending column, e.g.
 * `invalid option columns: unknown column of format tracks_csv: frame` (sentence case, no period).
 */
export function checkColumns(
  exporter: Exporter,
  requested: readonly unknown[] | null | undefined,
): CheckedColumns {
  if (requested === undefined || requested === null) return { ok: true, columns: undefined };
  const all = exporter.columns;
  if (!all || !exporter.withColumns) {
    return { ok: false, message: `option columns is not accepted by format ${exporter.key}` };
  }
  const fail = (detail: string): CheckedColumns => ({
    ok: false,
    message: `invalid option columns: ${detail}`,
  });
  if (requested.length === 0) return fail("the list is empty: name at least one column");
  let previous = -1;
  const seen = new Set<string>();
  for (const name of requested) {
    if (typeof name !== "string") return fail(`not a column name: ${JSON.stringify(name)}`);
    const shown = name.length > 80 ? `${name.slice(0, 79)}…` : name;
    const at = all.indexOf(name);
    if (at < 0) return fail(`unknown column of format ${exporter.key}: ${shown}`);
    if (seen.has(name)) return fail(`column named twice: ${shown}`);
    if (at < previous) {
      return fail(
        `column out of the format's order: ${shown} (order: ${all.join(", ")})`,
      );
    }
    seen.add(name);
    previous = at;
  }
  const columns = requested as string[];
  return { ok: true, columns: columns.length === all.length ? undefined : [...columns] };
}

/** `exporter` writing only `columns` when they are set and the format projects its rows. */
export function projectColumns(
  exporter: Exporter,
  columns: readonly string[] | undefined,
): Exporter {
  return columns && exporter.withColumns ? exporter.withColumns(columns) : exporter;
}
