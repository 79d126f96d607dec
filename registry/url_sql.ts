/**
 * URLs as the files write them (antenna-compat §4.6), in SQL: percent-encoded storage paths
 * joined to `MEDIA_URL`, crop, user image, capture and media URLs, `details` links.
 */
import type postgres from "postgres";
import type { FormatSettings } from "../config/mod.ts";

type Fragment = postgres.PendingQuery<postgres.Row[]>;

/**
 * Percent-encoding of a storage path (antenna-compat §4.6): UTF-8 bytes other than
 * `A–Z a–z 0–9 _ . - ~ ! * ( ) '` and `/` become `%XX` (JavaScript's `encodeURIComponent` with
 * `%2F` turned back into `/`). Plain paths skip the byte loop.
 */
export function encodePath(sql: postgres.Sql, path: Fragment): Fragment {
  return sql`(case when ${path} ~ '^[A-Za-z0-9_.~!*()''/-]*$' then ${path} else (
    select string_agg(case
      when x.b between 65 and 90 or x.b between 97 and 122 or x.b between 48 and 57
        or x.b in (95, 46, 45, 126, 33, 42, 40, 41, 39, 47) then chr(x.b)
      else '%' || upper(lpad(to_hex(x.b), 2, '0')) end, '' order by x.i)
    from (
      select i, get_byte(u.bytes, i) as b
      from (select convert_to(${path}, 'UTF8') as bytes) u,
        generate_series(0, length(u.bytes) - 1) i
    ) x
  ) end)`;
}

/**
 * A storage path joined to `MEDIA_URL` (antenna-compat §4.6): `\` → `/`, leading `/` dropped,
 * percent-encoded, exactly one `/` between base and path.
 */
function mediaPath(sql: postgres.Sql, media: string, path: Fragment): Fragment {
  return sql`(rtrim(${media}::text, '/') || '/'
    || ${encodePath(sql, sql`ltrim(replace(${path}, '\\', '/'), '/')`)})`;
}

/**
 * Crop URL of the crop path `path` (antenna-compat §4.6): null for NULL and `''` (the callers
 * that list `''` as `MEDIA_URL` itself say so), unchanged when it starts with `http`, else
 * joined to `MEDIA_URL`.
 */
export function cropUrl(sql: postgres.Sql, media: string, path: Fragment): Fragment {
  return sql`(case when ${path} is null or ${path} = '' then null
    when ${path} like 'http%' then ${path}
    else ${mediaPath(sql, media, path)} end)`;
}

/**
 * User image URL (antenna-compat §4.6): null for NULL and `''`; else joined to `MEDIA_URL`
 * like a crop path (no `http` exception), prefixed with `PLATFORM_URL` when it has no scheme.
 */
export function userImageUrl(
  sql: postgres.Sql,
  settings: FormatSettings,
  path: Fragment,
): Fragment {
  const joined = mediaPath(sql, settings.mediaUrl, path);
  return sql`(case when ${path} is null or ${path} = '' then null
    when ${settings.mediaUrl}::text ~ '^[A-Za-z][A-Za-z0-9+.-]*:' then ${joined}
    else rtrim(${settings.platformUrl}::text, '/') || ${joined} end)`;
}

/**
 * Capture URL (antenna-compat §4.6, deviation b): the base without trailing `/`, one `/`, the
 * path without leading `/`; no encoding. Null when the base or the path is empty (CSV rule).
 */
export function captureUrl(sql: postgres.Sql, base: Fragment, path: Fragment): Fragment {
  return sql`(case when coalesce(${base}, '') = '' or coalesce(${path}, '') = '' then null
    else rtrim(${base}, '/') || '/' || ltrim(${path}, '/') end)`;
}

/**
 * JSON `capture.url` (antenna-compat §4.6): the joined text, or null when the base is empty or
 * the text has no host (`<scheme>://<host>…` or `//<host>…`).
 */
export function captureJsonUrl(sql: postgres.Sql, base: Fragment, path: Fragment): Fragment {
  return sql`(select case when coalesce(${base}, '') = '' then null
      when j.url ~ '^([A-Za-z][A-Za-z0-9+.-]*:)?//[^/?#]' then j.url end
    from (select rtrim(${base}, '/') || '/' || ltrim(coalesce(${path}, ''), '/') as url) j)`;
}

/** A public URL: the base URL and the path joined by exactly one slash. */
export function mediaUrl(sql: postgres.Sql, base: Fragment, path: Fragment): Fragment {
  return sql`(rtrim(${base}, '/') || '/' || ltrim(${path}, '/'))`;
}

/**
 * A `details` link (antenna-compat §4.6): `PLATFORM_URL` + `/api/v2/<resource>/<id>/`.
 */
export function detailsLink(
  sql: postgres.Sql,
  settings: FormatSettings,
  resource: string,
  id: Fragment,
): Fragment {
  return sql`(${settings.platformUrl + "/api/v2/" + resource + "/"}::text || ${id} || '/')`;
}

/**
 * The GBIF species page of a taxon (`dwca`'s `taxonID`, `camtrap_dp`'s `taxonomic.taxonID`):
 * `https://www.gbif.org/species/<key>`, null when the taxon has no `gbif_taxon_key`.
 */
export function gbifTaxonUrl(sql: postgres.Sql, key: Fragment): Fragment {
  return sql`(case when ${key} is not null then 'https://www.gbif.org/species/' || ${key} end)`;
}
