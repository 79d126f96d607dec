/**
 * The cursor and the count of a batch of rows keyed by their `id` column, as the zip table
 * members of `dwca` and `camtrap_dp` read them (keyset on that id, in id order).
 */
import { type RecordId, recordId } from "./types.ts";
import type { MemberBatch } from "./zip_archive.ts";

/**
 * One row per key: `rows` as one batch of a table member, `data` their encoded text (`""` for
 * no row). `lastId` is the last row's `id` (null for no row: the cursor stays), `rows` how many.
 */
export function keyedBatch(rows: readonly Record<string, unknown>[], data: string): MemberBatch {
  const last = rows.at(-1);
  return { data, lastId: last ? recordId(last.id) : null, rows: rows.length };
}

/**
 * Several rows per occurrence (`id` is the occurrence id, rows in id order): how many
 * occurrences `rows` hold, which a batch's `limit` counts, and the last one's id (null for no
 * row).
 */
export function occurrencesOf(
  rows: readonly Record<string, unknown>[],
): { occurrences: number; lastId: RecordId | null } {
  const ids = new Set(rows.map((row) => String(row.id)));
  return {
    occurrences: ids.size,
    lastId: rows.length === 0 ? null : recordId(rows[rows.length - 1].id),
  };
}
