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

/**
 * True when the bbox `b` is a real box: exactly four finite numbers (antenna-compat §4.1,
 * deviation f). NULL, `{}`, NULL elements, another length, NaN and ±Infinity are no box. Never
 * null. (`NaN` sorts above every number in Postgres, so `abs(x) < 'Infinity'` is false for it.)
 */
export function realBox(sql: postgres.Sql, b: Fragment): Fragment {
  return sql`coalesce(array_ndims(${b}) = 1 and cardinality(${b}) = 4
    and abs(${b}[1]) < 'Infinity'::float8 and abs(${b}[2]) < 'Infinity'::float8
    and abs(${b}[3]) < 'Infinity'::float8 and abs(${b}[4]) < 'Infinity'::float8, false)`;
}
