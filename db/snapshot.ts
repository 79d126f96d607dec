/**
 * Consistent reads for exports: one repeatable-read snapshot per streaming attempt, and the
 * source change markers (`export_source_versions`, migration 00007) that tell whether two
 * snapshots hold the same data.
 */
import type { Sql } from "./client.ts";

/**
 * The change markers of a project's tables and of the global tables (taxa, algorithms, users)
 * as one snapshot sees them, as decimal text (bigint, exact). Equal markers mean equal data:
 * every committed write to an exported table moves its marker in the same transaction.
 */
export interface SourceVersions {
  project: string;
  global: string;
}

/**
 * Runs `read` in a read-only REPEATABLE READ transaction (PostgreSQL docs, "Transaction
 * Isolation", 13.2.2): every statement of `read` sees the data as of its first statement, so
 * a file written by one call describes one moment however long it streams. `read` gets the
 * transaction as its `Sql` (tagged templates, `json`, `unsafe`); it must not begin another.
 */
export async function withSnapshot<T>(sql: Sql, read: (tx: Sql) => Promise<T>): Promise<T> {
  return await sql.begin(
    "isolation level repeatable read read only",
    (tx) => read(tx as unknown as Sql),
  ) as T;
}

/** The markers of `projectId` and of the global tables, as the snapshot of `tx` sees them. */
export async function readSnapshot(tx: Sql, projectId: number): Promise<SourceVersions> {
  const [row] = await tx<SourceVersions[]>`
    select
      coalesce((select version::text from export_source_versions
                where project_id = ${projectId}), '') as project,
      coalesce((select version::text from export_source_versions where project_id = 0), '')
        as global`;
  return row;
}

/** True when both are known and equal (the same data); false when either is missing. */
export function sameSourceVersions(
  a: SourceVersions | null | undefined,
  b: SourceVersions | null | undefined,
): boolean {
  return !!a && !!b && a.project !== "" && a.project === b.project && a.global === b.global;
}
