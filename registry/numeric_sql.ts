/**
 * Non-finite numbers in SQL. PostgreSQL's `double precision` holds `NaN`, `Infinity` and
 * `-Infinity`, and orders NaN above every number (PostgreSQL docs, "Floating-Point Types"), so a
 * NaN score would win every "highest score" and pass every `>=` filter. They are not scores:
 * they never win a "best", never pass a numeric filter, are written as null (JSON) or empty
 * (CSV, TSV), and are left out of aggregates (issue 12, kind 4).
 */
import type postgres from "postgres";

type Fragment = postgres.PendingQuery<postgres.Row[]>;

/**
 * `x` when it is a finite number, else NULL. (`NaN = NaN` is true in PostgreSQL, and
 * `abs('NaN') < 'Infinity'` is false, so one comparison rejects NaN and both infinities.)
 */
export function finiteOrNull(sql: postgres.Sql, x: Fragment): Fragment {
  return sql`(case when abs(${x}) < 'Infinity'::float8 then ${x} end)`;
}
