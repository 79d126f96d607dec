/**
 * Validates an export's filters against what its format accepts and against the project, and
 * builds `filters_display`. Every failure is a 400 naming the filter (and the id, for ids that
 * do not exist or belong to another project); nothing is written to the database here.
 */
import { z } from "zod";
import type { Sql } from "../db/client.ts";
import type { Exporter, ExportFilters, FilterKey } from "../registry/types.ts";
import {
  echoValue,
  joinTruncated,
  MAX_DISPLAY_CHARS,
  MAX_ECHO_CHARS,
  truncateDisplay,
  truncateList,
  truncateText,
} from "./echo.ts";

/**
 * A JSON number, or a string of canonical decimal digits (no leading zero, as the ids of paths
 * and of `project`; no booleans, no `1e3`, no coercion surprises).
 */
const id = z.union([z.number(), z.string().regex(/^[1-9]\d{0,15}$/).transform(Number)])
  .pipe(z.number().int().positive().max(Number.MAX_SAFE_INTEGER));
const idList = z.array(id).min(1).max(1000);
const flag = z.union([
  z.boolean(),
  z.enum(["true", "false"]).transform((value) => value === "true"),
]);
/** `YYYY-MM-DD`, a real calendar day from year 1000 on (Postgres refuses year 0). */
const date = z.string().regex(/^[1-9]\d{3}-\d{2}-\d{2}$/).refine((value) => {
  const parsed = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(parsed.getTime()) && parsed.toISOString().slice(0, 10) === value;
});

/** Each filter's schema and what it accepts, in words (sent back on a 400). */
const filterSpecs: Record<FilterKey, { schema: z.ZodType; accepts: string }> = {
  collection_id: { schema: id, accepts: "a capture set id of the project" },
  deployment_ids: { schema: idList, accepts: "a list of 1 to 1000 deployment ids of the project" },
  event_ids: { schema: idList, accepts: "a list of 1 to 1000 event ids of the project" },
  taxon_id: { schema: id, accepts: "a taxon id (the taxon and all its descendants)" },
  exclude_taxon_ids: {
    schema: idList,
    accepts: "a list of 1 to 1000 taxon ids (excluded with their descendants)",
  },
  date_start: {
    schema: date,
    accepts: "a date YYYY-MM-DD (first appearance on or after it, UTC)",
  },
  date_end: {
    schema: date,
    accepts: "a date YYYY-MM-DD (first appearance on or before it, UTC)",
  },
  min_score: {
    schema: z.union([z.number(), z.string().regex(/^\d*\.?\d+$/).transform(Number)])
      .pipe(z.number().min(0).max(1)),
    accepts: "a number from 0 to 1 (minimum determination score)",
  },
  verified: {
    schema: flag,
    accepts: "true (with a standing human identification) or false (without)",
  },
  apply_project_defaults: {
    schema: flag,
    accepts: "true or false (apply the project's default score threshold and taxa)",
  },
};

/** The outcome of filter validation. */
export type FilterValidation =
  | { ok: true; filters: ExportFilters; display: Record<string, unknown> }
  | {
    ok: false;
    message: string;
    /** Each bad filter, as `filters.<key>`, with what is wrong with it (the API's `fields`). */
    fields: Record<string, string[]>;
    details?: Record<string, unknown>;
  };

type Failure = Extract<FilterValidation, { ok: false }>;

/** A failure of filter `key`: `message`, also listed under `fields["filters.<key>"]`. */
function failure(key: string, message: string, details?: Record<string, unknown>): Failure {
  return { ok: false, message, fields: { [`filters.${key}`]: [message] }, details };
}

/** What `exporter` accepts, filter by filter, for error details. */
function acceptedFilters(exporter: Exporter): Record<string, string> {
  return Object.fromEntries(exporter.acceptedFilters.map((key) => [key, filterSpecs[key].accepts]));
}

/**
 * Checks that every id in `ids` exists in `table` and belongs to `projectId`; returns a failure
 * naming the filter and the first offending id, or the rows (in the order of `ids`).
 */
function ownedRows<T extends { id: number; project_id: number }>(
  rows: T[],
  ids: number[],
  what: { filter: FilterKey; noun: string; projectId: number },
): T[] | Failure {
  const byId = new Map(rows.map((row) => [Number(row.id), row]));
  const found: T[] = [];
  for (const wanted of ids) {
    const row = byId.get(wanted);
    if (!row) {
      return failure(
        what.filter,
        `invalid filter ${what.filter}: ${what.noun} does not exist: ${wanted}`,
      );
    }
    if (Number(row.project_id) !== what.projectId) {
      return failure(
        what.filter,
        `invalid filter ${what.filter}: ${what.noun} does not belong to project ${what.projectId}: ${wanted}`,
      );
    }
    if (!found.includes(row)) found.push(row);
  }
  return found;
}

/** The display of a filter of several ids: the rows' ids, their names and a label naming them. */
interface NamedIds {
  ids: number[];
  names: string[];
  /** `prefix` and the names, cut as {@link joinTruncated} cuts them ("Events: a, b"). */
  label: string;
}

/** The {@link NamedIds} of the checked `rows` (ids as numbers, in the rows' order). */
function namedIds(rows: readonly { id: number; name: string }[], prefix: string): NamedIds {
  const names = rows.map((row) => row.name);
  return {
    ids: rows.map((row) => Number(row.id)),
    names,
    label: joinTruncated(names, { prefix }),
  };
}

function isFailure<T>(value: T[] | Failure): value is Failure {
  return !Array.isArray(value);
}

interface TaxonRow {
  id: number;
  name: string;
  rank: string;
}

async function loadTaxa(
  sql: Sql,
  filter: FilterKey,
  ids: number[],
): Promise<TaxonRow[] | Failure> {
  const rows = await sql<TaxonRow[]>`
    select id, name, rank from taxa where id = any(${ids.map(String)}::bigint[])`;
  const byId = new Map(rows.map((row) => [Number(row.id), row]));
  const found: TaxonRow[] = [];
  for (const wanted of ids) {
    const row = byId.get(wanted);
    if (!row) {
      return failure(filter, `invalid filter ${filter}: taxon does not exist: ${wanted}`);
    }
    if (!found.includes(row)) found.push(row);
  }
  return found;
}

function taxonLabel(taxon: TaxonRow): string {
  return `${taxon.name} (${taxon.rank.toLowerCase()})`;
}

/** Checks `raw` for `exporter` in `projectId`. */
export async function validateFilters(
  sql: Sql,
  exporter: Exporter,
  projectId: number,
  raw: Record<string, unknown>,
): Promise<FilterValidation> {
  const accepted = exporter.acceptedFilters as readonly string[];
  const unknown = Object.keys(raw).filter((k) => !accepted.includes(k));
  if (unknown.length > 0) {
    const shown = truncateList(unknown);
    return {
      ok: false,
      message: `unknown filter for format ${exporter.key}: ${
        joinTruncated(unknown, { maxChars: MAX_ECHO_CHARS })
      } (accepted: ${accepted.join(", ") || "none"})`,
      fields: Object.fromEntries(shown.items.map((key) => [
        `filters.${truncateText(key, MAX_ECHO_CHARS)}`,
        [`not a filter of format ${exporter.key} (accepted: ${accepted.join(", ") || "none"})`],
      ])),
      details: { accepted_filters: acceptedFilters(exporter) },
    };
  }
  const filters: ExportFilters = {};
  for (const key of exporter.acceptedFilters) {
    if (raw[key] === undefined || raw[key] === null || raw[key] === "") continue;
    const spec = filterSpecs[key];
    const parsed = spec.schema.safeParse(raw[key]);
    if (!parsed.success) {
      return failure(
        key,
        `invalid filter ${key}: must be ${spec.accepts}, got ${echoValue(raw[key])}`,
        { accepted_filters: acceptedFilters(exporter) },
      );
    }
    (filters as Record<string, unknown>)[key] = parsed.data;
  }
  if (
    filters.date_start !== undefined && filters.date_end !== undefined &&
    filters.date_start > filters.date_end
  ) {
    return failure(
      "date_end",
      `invalid filter date_end: must not be before date_start (${filters.date_start}), got ${
        echoValue(filters.date_end)
      }`,
      { accepted_filters: acceptedFilters(exporter) },
    );
  }

  const display: Record<string, unknown> = {};
  if (filters.collection_id !== undefined) {
    const rows = await sql<{ id: number; name: string; project_id: number }[]>`
      select id, name, project_id from source_image_collections where id = ${filters.collection_id}`;
    const checked = ownedRows(rows, [filters.collection_id], {
      filter: "collection_id",
      noun: "capture set",
      projectId,
    });
    if (isFailure(checked)) return checked;
    const [collection] = checked;
    display.collection_id = {
      id: Number(collection.id),
      name: collection.name,
      label: joinTruncated([collection.name], { prefix: "Capture set: " }),
    };
  }
  if (filters.deployment_ids !== undefined) {
    const rows = await sql<{ id: number; name: string; project_id: number }[]>`
      select id, name, project_id from deployments
      where id = any(${filters.deployment_ids.map(String)}::bigint[])`;
    const checked = ownedRows(rows, filters.deployment_ids, {
      filter: "deployment_ids",
      noun: "deployment",
      projectId,
    });
    if (isFailure(checked)) return checked;
    const shown = namedIds(checked, "Deployments: ");
    filters.deployment_ids = shown.ids;
    display.deployment_ids = shown;
  }
  if (filters.event_ids !== undefined) {
    const rows = await sql<{ id: number; name: string; project_id: number }[]>`
      select e.id, e.project_id,
        to_char(e.start at time zone 'UTC', 'YYYY-MM-DD') || ' ' || d.name as name
      from events e join deployments d on d.id = e.deployment_id
      where e.id = any(${filters.event_ids.map(String)}::bigint[])`;
    const checked = ownedRows(rows, filters.event_ids, {
      filter: "event_ids",
      noun: "event",
      projectId,
    });
    if (isFailure(checked)) return checked;
    const shown = namedIds(checked, "Events: ");
    filters.event_ids = shown.ids;
    display.event_ids = shown;
  }
  if (filters.taxon_id !== undefined) {
    const checked = await loadTaxa(sql, "taxon_id", [filters.taxon_id]);
    if (isFailure(checked)) return checked;
    display.taxon_id = {
      id: filters.taxon_id,
      name: checked[0].name,
      label: joinTruncated([taxonLabel(checked[0])], {
        prefix: "Taxon: ",
        suffix: " and its descendants",
      }),
    };
  }
  if (filters.exclude_taxon_ids !== undefined) {
    const checked = await loadTaxa(sql, "exclude_taxon_ids", filters.exclude_taxon_ids);
    if (isFailure(checked)) return checked;
    filters.exclude_taxon_ids = checked.map((row) => Number(row.id));
    display.exclude_taxon_ids = {
      ids: filters.exclude_taxon_ids,
      names: checked.map((row) => row.name),
      label: joinTruncated(checked.map(taxonLabel), {
        prefix: "Excluding: ",
        suffix: " and their descendants",
      }),
    };
  }
  if (filters.date_start !== undefined || filters.date_end !== undefined) {
    const range = filters.date_start !== undefined && filters.date_end !== undefined
      ? `${filters.date_start} to ${filters.date_end}`
      : filters.date_start !== undefined
      ? `from ${filters.date_start}`
      : `until ${filters.date_end}`;
    const label = `First seen ${range} (UTC dates, inclusive)`;
    if (filters.date_start !== undefined) {
      display.date_start = { value: filters.date_start, label };
    }
    if (filters.date_end !== undefined) display.date_end = { value: filters.date_end, label };
  }
  if (filters.min_score !== undefined) {
    display.min_score = {
      value: filters.min_score,
      label: `Determination score at least ${filters.min_score}`,
    };
  }
  if (filters.verified !== undefined) {
    display.verified = {
      value: filters.verified,
      label: filters.verified
        ? "Verified only (with a human identification)"
        : "Unverified only (no human identification)",
    };
  }
  if (filters.apply_project_defaults !== undefined) {
    display.apply_project_defaults = {
      value: filters.apply_project_defaults,
      label: filters.apply_project_defaults
        ? await projectDefaultsLabel(sql, projectId)
        : "Project defaults not applied",
    };
  }
  // names and labels are data of any length: the display is cut to the echo limits
  return { ok: true, filters, display: truncateDisplay(display) };
}

/** "Project defaults: score at least 0.6; only Lepidoptera; excluding Noctuidae". */
async function projectDefaultsLabel(sql: Sql, projectId: number): Promise<string> {
  const [row] = await sql<
    { threshold: number | null; include: string[] | null; exclude: string[] | null }[]
  >`
    select p.default_score_threshold as threshold,
      (select array_agg(t.name order by t.name) from project_default_include_taxa i
        join taxa t on t.id = i.taxon_id where i.project_id = p.id) as include,
      (select array_agg(t.name order by t.name) from project_default_exclude_taxa x
        join taxa t on t.id = x.taxon_id where x.project_id = p.id) as exclude
    from projects p where p.id = ${projectId}`;
  const parts: string[] = [];
  if (row?.threshold !== null && row?.threshold !== undefined) {
    parts.push(`score at least ${row.threshold}`);
  }
  // each list gets a share of the label's MAX_DISPLAY_CHARS, so both stay visible
  const share = { maxChars: Math.floor(MAX_DISPLAY_CHARS * 0.4) };
  if (row?.include?.length) parts.push(joinTruncated(row.include, { ...share, prefix: "only " }));
  if (row?.exclude?.length) {
    parts.push(joinTruncated(row.exclude, { ...share, prefix: "excluding " }));
  }
  return `Project defaults: ${parts.length === 0 ? "none set" : parts.join("; ")}`;
}
