/**
 * What the format tests share: a test against the real database with the small project
 * (`tests/fixtures/small_project.ts`) already written, and the CSV readers that check a file's
 * header and give its rows (read by Python's csv module, `tests/readers.ts`).
 */
import type { Sql } from "../../db/client.ts";
import { assertEquals } from "../../tests/assert.ts";
import { createSmallProject, type SmallProject } from "../../tests/fixtures/small_project.ts";
import { readWith } from "../../tests/readers.ts";
import { serviceTest, testDatabase } from "../../tests/support.ts";
import type { ExportQueryContext } from "../types.ts";

/** What a {@link smallProjectTest} body gets: the database, the project, its unfiltered context. */
export interface SmallProjectCase {
  sql: Sql;
  p: SmallProject;
  /** `{ sql, projectId: p.projectId, filters: {} }`. */
  ctx: ExportQueryContext & { filters: Record<string, never> };
}

/**
 * A `Deno.test` against the real services (`serviceTest`): a connection, the small project
 * written, `body` run, the connection closed whatever happens.
 */
export function smallProjectTest(
  name: string,
  body: (t: SmallProjectCase) => Promise<void>,
): void {
  Deno.test({
    name,
    ...serviceTest,
    async fn(): Promise<void> {
      const sql = testDatabase();
      try {
        const p = await createSmallProject(sql);
        await body({ sql, p, ctx: { sql, projectId: p.projectId, filters: {} } });
      } finally {
        await sql.end();
      }
    },
  });
}

/** The records of a CSV file as Python's csv module reads them (header included). */
export async function csvRows(bytes: Uint8Array): Promise<string[][]> {
  const { rows } = await readWith("csv", bytes) as { rows: string[][] };
  return rows;
}

/** The rows of a CSV file whose header must be `columns`, one object per row. */
export async function csvTable(
  bytes: Uint8Array,
  columns: readonly string[],
): Promise<Record<string, string>[]> {
  const rows = await csvRows(bytes);
  assertEquals(rows[0], [...columns]);
  return rows.slice(1).map((r) => Object.fromEntries(r.map((v, i) => [columns[i], v])));
}
