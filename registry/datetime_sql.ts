/**
 * Timestamps and durations as the files write them (antenna-compat §3.1, §4.8), in SQL: local
 * wall-clock times, ISO 8601 instants with their zone's offset, Python `timedelta` and ISO 8601
 * durations, duration labels.
 */
import type postgres from "postgres";

type Fragment = postgres.PendingQuery<postgres.Row[]>;

/** The wall-clock `timestamp` of the instant `value` in the IANA zone `zone` (a fragment). */
export function localTime(sql: postgres.Sql, value: Fragment, zone: Fragment): Fragment {
  return sql`(${value} at time zone ${zone})`;
}

/**
 * `to_char(local, format)` followed by `.` + 6 digits when the local timestamp `local` has
 * microseconds, else nothing (antenna-compat §3.1). One `to_char` with `.US`, whose `.000000`
 * suffix is then cut: a quarter of the cost of testing `date_trunc` and formatting twice, for
 * the same text (`#` marks the end; no format here writes one). Null stays null.
 */
function withFraction(sql: postgres.Sql, local: Fragment, format: string): Fragment {
  return sql`rtrim(replace(to_char(${local}, ${format + ".US"}) || '#', '.000000#', ''), '#')`;
}

/**
 * CSV timestamp of a local `timestamp` (antenna-compat §3.1): `2023-05-01 22:00:00`, with
 * `.123456` only when the microseconds are not 0. Null stays null.
 */
export function csvTimestamp(sql: postgres.Sql, local: Fragment): Fragment {
  return withFraction(sql, local, "YYYY-MM-DD HH24:MI:SS");
}

/** JSON timestamp of a local `timestamp` (§3.1): `2023-05-01T22:00:00[.123456]`, no offset. */
export function jsonTimestamp(sql: postgres.Sql, local: Fragment): Fragment {
  return withFraction(sql, local, 'YYYY-MM-DD"T"HH24:MI:SS');
}

/** JSON time of day of a local `timestamp` (§3.1): `22:00:00[.123456]`. */
export function timeOfDay(sql: postgres.Sql, local: Fragment): Fragment {
  return withFraction(sql, local, "HH24:MI:SS");
}

/**
 * ISO 8601 text of the instant `value` in the IANA zone `zone`, with that zone's offset at that
 * instant and every microsecond: `2023-05-01T20:03:00-04:00`, `2024-06-01T22:15:03.000125Z`
 * (UTC offset written `Z`). What GBIF asks for in Darwin Core dates (issue 11: no precision
 * lost, local offset). Null stays null.
 */
export function isoTimestamp(sql: postgres.Sql, value: Fragment, zone: Fragment): Fragment {
  const local = localTime(sql, value, zone);
  return sql`(${withFraction(sql, local, 'YYYY-MM-DD"T"HH24:MI:SS')} || (
    select case when z.off = 0 then 'Z'
      else case when z.off < 0 then '-' else '+' end
        || lpad((abs(z.off) / 3600)::text, 2, '0') || ':'
        || lpad((abs(z.off) / 60 % 60)::text, 2, '0') end
    from (select extract(epoch from ${local} - (${value} at time zone 'UTC'))::int as off) z
  ))`;
}

/** Microseconds in a day, an hour, a minute, a second. */
const US_DAY = 86_400_000_000;
const US_HOUR = 3_600_000_000;
const US_MINUTE = 60_000_000;
const US_SECOND = 1_000_000;

/**
 * CSV duration of `us` microseconds (antenna-compat §3.1, Python's `timedelta` text):
 * `0:10:00`, `5:03:07.000005`, `1 day, 2:00:00`, `2 days, 0:00:00`. Null stays null.
 */
export function csvDuration(sql: postgres.Sql, us: Fragment): Fragment {
  return sql`(case when ${us} is null then null else
    case when ${us} >= ${US_DAY}::bigint then (${us} / ${US_DAY}::bigint)::text
      || case when ${us} / ${US_DAY}::bigint = 1 then ' day, ' else ' days, ' end else '' end
    || (${us} % ${US_DAY}::bigint / ${US_HOUR}::bigint)::text
    || ':' || lpad((${us} % ${US_HOUR}::bigint / ${US_MINUTE}::bigint)::text, 2, '0')
    || ':' || lpad((${us} % ${US_MINUTE}::bigint / ${US_SECOND}::bigint)::text, 2, '0')
    || case when ${us} % ${US_SECOND}::bigint = 0 then ''
      else '.' || lpad((${us} % ${US_SECOND}::bigint)::text, 6, '0') end
  end)`;
}

/**
 * JSON duration of `us` microseconds (antenna-compat §3.1): `P0DT00H10M00S`,
 * `P1DT01H59M59.876544S`. Null stays null.
 */
export function isoDuration(sql: postgres.Sql, us: Fragment): Fragment {
  return sql`('P' || (${us} / ${US_DAY}::bigint)::text || 'DT'
    || lpad((${us} % ${US_DAY}::bigint / ${US_HOUR}::bigint)::text, 2, '0') || 'H'
    || lpad((${us} % ${US_HOUR}::bigint / ${US_MINUTE}::bigint)::text, 2, '0') || 'M'
    || lpad((${us} % ${US_MINUTE}::bigint / ${US_SECOND}::bigint)::text, 2, '0')
    || case when ${us} % ${US_SECOND}::bigint = 0 then ''
      else '.' || lpad((${us} % ${US_SECOND}::bigint)::text, 6, '0') end
    || 'S')`;
}

/**
 * JSON `duration_label` of `us` microseconds (antenna-compat §4.8): `""` for 0, `10 minutes`,
 * `2 hours 30 min`, `1 days 1 hours`; smaller units dropped, never rounded, always plural.
 */
export function durationLabel(sql: postgres.Sql, us: Fragment): Fragment {
  return sql`(case
    when ${us} is null then null
    when ${us} = 0 then ''
    when ${us} < ${US_HOUR}::bigint then (${us} / ${US_MINUTE}::bigint)::text || ' minutes'
    when ${us} < ${US_DAY}::bigint then (${us} / ${US_HOUR}::bigint)::text || ' hours '
      || (${us} % ${US_HOUR}::bigint / ${US_MINUTE}::bigint)::text || ' min'
    else (${us} / ${US_DAY}::bigint)::text || ' days '
      || (${us} % ${US_DAY}::bigint / ${US_HOUR}::bigint)::text || ' hours'
  end)`;
}
