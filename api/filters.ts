/**
 * Validates an export's filters against what its format accepts and against the project, and
 * builds `filters_display`. Every failure is a 400 naming the filter.
 */
import { z } from "zod";
import type { Sql } from "../db/client.ts";
import type { Exporter, ExportFilters } from "../registry/types.ts";

const filterSchemas = {
  collection_id: z.coerce.number().int().positive(),
} as const;

/** The outcome of filter validation. */
export type FilterValidation =
  | { ok: true; filters: ExportFilters; display: Record<string, unknown> }
  | { ok: false; message: string; details?: Record<string, unknown> };

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
    return {
      ok: false,
      message: `unknown filter for format ${exporter.key}: ${unknown.join(", ")}`,
      details: { accepted_filters: accepted },
    };
  }
  const filters: ExportFilters = {};
  const display: Record<string, unknown> = {};
  for (const key of accepted) {
    if (raw[key] === undefined || raw[key] === null || raw[key] === "") continue;
    const parsed = filterSchemas[key as keyof typeof filterSchemas].safeParse(raw[key]);
    if (!parsed.success) {
      return {
        ok: false,
        message: `invalid filter ${key}: must be a positive integer id, got ${
          JSON.stringify(raw[key])
        }`,
      };
    }
    (filters as Record<string, unknown>)[key] = parsed.data;
  }
  if (filters.collection_id !== undefined) {
    const [collection] = await sql<{ id: number; name: string; project_id: number }[]>`
      select id, name, project_id from source_image_collections where id = ${filters.collection_id}`;
    if (!collection) {
      return { ok: false, message: `capture set does not exist: ${filters.collection_id}` };
    }
    if (collection.project_id !== projectId) {
      return {
        ok: false,
        message: `capture set does not belong to project ${projectId}: ${filters.collection_id}`,
      };
    }
    display.collection_id = {
      id: collection.id,
      name: collection.name,
      label: `Capture set: ${collection.name}`,
    };
  }
  return { ok: true, filters, display };
}
