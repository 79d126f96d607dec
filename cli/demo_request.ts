/**
 * Which running export a restarted `deno task demo` may follow as its own: one it would request
 * itself. The demo requests each format with fixed filters and no options; an export of the
 * same format with other filters or options (a `deno task cli export` with `min_score`, say) is
 * someone else's, and following it would wait on a request the demo never made.
 */
import { sameValue } from "../registry/option_defaults.ts";

/** The fields of an export in the API's list (`GET /api/v2/exports/`) this check reads. */
export interface ListedExport {
  id: number;
  filters: Record<string, unknown>;
  options?: Record<string, unknown>;
  excel_compatible?: boolean;
  columns?: readonly string[] | null;
}

/**
 * True when `listed` is what the demo requests with `filters`: the same filters (key order
 * aside), no format options, not `excel_compatible`, no `columns`.
 */
export function isDemoRequest(listed: ListedExport, filters: Record<string, unknown>): boolean {
  return sameValue(listed.filters, filters) &&
    Object.keys(listed.options ?? {}).length === 0 &&
    listed.excel_compatible !== true &&
    (listed.columns ?? null) === null;
}
