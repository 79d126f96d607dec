/**
 * Values as text the way the files write them, in SQL: floats as Python's `repr` and as
 * JavaScript's `String(number)`, bboxes, and CSV fields guarded against formula injection.
 */
import type postgres from "postgres";
import { realBox } from "./numeric_sql.ts";

type Fragment = postgres.PendingQuery<postgres.Row[]>;

/**
 * A float8 as Python's `repr` writes it (antenna-compat §3.2): shortest round-trip digits,
 * plain notation from 1e-4 up to (not including) 1e16 with at least one decimal (`1.0`), else
 * `d.ddde±XX` (`1e-05`, `1e+16`). Postgres writes the same digits and exponent form except that
 * it switches to the exponent at 1e15 and omits `.0`. Null stays null.
 */
export function pyFloatText(sql: postgres.Sql, value: Fragment): Fragment {
  // Numeric tests first, so the common cases (scores, widths) cast to text once; the regex runs
  // only for magnitudes in [1e15, 1e16). `NaN = NaN` is true in Postgres and NaN sorts above
  // every number, so NaN and ±Infinity fail the first two tests and reach their own.
  return sql`(case
    when ${value} is null then null
    when abs(${value}) < 1e15::float8 and ${value} = trunc(${value}) then (${value})::text || '.0'
    when abs(${value}) >= 1e15::float8 and abs(${value}) < 1e16::float8 then (
      select m[1] || rpad(m[2] || coalesce(m[3], ''), 16, '0') || '.0'
      from regexp_match((${value})::text, '^(-?)([0-9])(?:[.]([0-9]+))?e') m)
    when ${value} = 'NaN'::float8 then 'nan'
    when ${value} = 'Infinity'::float8 then 'inf'
    when ${value} = '-Infinity'::float8 then '-inf'
    else (${value})::text
  end)`;
}

/**
 * Bbox text (antenna-compat §3.3): `[` + elements joined by `, ` + `]`; integral elements as
 * plain integers, others as float text (§3.2), NULL elements as `None`. Null stays null.
 */
export function bboxText(sql: postgres.Sql, bbox: Fragment): Fragment {
  // a real box (four finite numbers, the best detection's always) skips the unnest
  const element = (v: Fragment): Fragment => {
    return sql`case when ${v} = trunc(${v}) then
        case when abs(${v}) < 9e18 then ${v}::bigint::text else ${v}::numeric::text end
      else ${pyFloatText(sql, v)} end`;
  };
  return sql`(case when ${bbox} is null then null
    when ${realBox(sql, sql`(${bbox})`)} then '[' || ${element(sql`(${bbox})[1]`)} || ', '
      || ${element(sql`(${bbox})[2]`)} || ', ' || ${element(sql`(${bbox})[3]`)} || ', '
      || ${element(sql`(${bbox})[4]`)} || ']'
    else '[' || coalesce((
    select string_agg(case
      when x.v is null then 'None'
      when abs(x.v) < 'Infinity'::float8 and x.v = trunc(x.v) then
        case when abs(x.v) < 9e18 then x.v::bigint::text else x.v::numeric::text end
      else ${pyFloatText(sql, sql`x.v`)} end, ', ' order by x.i)
    from unnest(${bbox}) with ordinality x(v, i)
  ), '') || ']' end)`;
}

/**
 * A float8 as text exactly as JavaScript's `String(number)` writes it, so that text Postgres
 * serializes matches what a JS encoder would write: the two agree (shortest round-trip digits)
 * except on the exponent form, which Postgres uses below 1e-4 and from 1e15, JavaScript below
 * 1e-6 and from 1e21, and writes without a zero-padded exponent. Null stays null.
 */
export function jsNumberText(sql: postgres.Sql, value: Fragment): Fragment {
  return sql`(case
    when ${value} is null then null
    when ${value} = 0 then '0'
    when abs(${value}) >= 1e-4 and abs(${value}) < 1e15 then (${value})::text
    else coalesce((
      select case
        when p.e between -6 and -1 then p.s || '0.' || repeat('0', -p.e - 1) || p.d || p.f
        when p.e between 15 and 20 then p.s || rpad(p.d || p.f, p.e + 1, '0')
        else p.s || p.d || case when p.f = '' then '' else '.' || p.f end
          || 'e' || case when p.e > 0 then '+' else '-' end || abs(p.e)
      end
      from (
        select m[1] as s, m[2] as d, coalesce(m[3], '') as f, m[4]::int as e
        from regexp_match((${value})::text, '^(-?)([0-9])(?:[.]([0-9]+))?e([-+][0-9]+)$') m
      ) p
    ), (${value})::text)
  end)`;
}

/**
 * A text value as one RFC 4180 CSV field, quoted (with `"` doubled) when it holds a comma, a
 * quote, CR or LF: the rule `csv-stringify` applies with `quoted_match: /[\r\n]/`. Null stays
 * null (`concat` then writes an empty field). Guarded first against formula injection
 * ({@link csvFormulaGuardSql}).
 */
export function csvField(sql: postgres.Sql, value: Fragment): Fragment {
  // One regex test on the common path: a cell without a CSV special and without a trigger
  // character in front is its own field. `value` is written up to four times: pass a column.
  const text = csvFormulaGuardSql(sql, value);
  return sql`(case when ${value} !~ '[",\r\n]|^[-=+@\t]' then ${value}
    when ${text} ~ '[",\r\n]' then '"' || replace(${text}, '"', '""') || '"'
    else ${text} end)`;
}

/**
 * `csvFormulaGuard` of `encoding.ts` in SQL (OWASP CSV injection): a cell that is not a number
 * and starts with `=`, `+`, `-`, `@`, TAB or CR gets a leading `'`. Null stays null.
 */
export function csvFormulaGuardSql(sql: postgres.Sql, value: Fragment): Fragment {
  // one pass over the value: a lookahead for the trigger, a negative one for a number
  return sql`regexp_replace(${value}, ${FORMULA_GUARD_PATTERN}, ${"'"})`;
}

/** Matches the empty start of a cell to guard (Postgres ARE lookahead constraints). */
const FORMULA_GUARD_PATTERN = "^(?=[-=+@\\t\\r])" +
  "(?![-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$|-?Infinity$)";
