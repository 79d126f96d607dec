/**
 * The declared default of every export option, in one place: the formats read their options
 * through these (`splitOptions`, `cropOptions`, `yoloOptions`, `cocoOptions`), and a request's
 * options are normalised against them before its reuse key is computed and stored
 * ({@link normalizeOptions}), so that `{"split_seed": ""}` and `{}`, which make the same file,
 * are the same request (docs/http-api.md "Identical requests reuse their file").
 */
import type { ExportOptions } from "./types.ts";

/**
 * Each option's default, where it has a value: `per_taxon_limit` and `image_max_side` default to
 * "none" (every crop, the source size) and `columns` to every column, which no value equals.
 */
export const OPTION_DEFAULTS = {
  excel_compatible: false,
  split: { train: 0.8, val: 0.1, test: 0.1 },
  split_by: "event",
  split_seed: "",
  crop_padding: 0,
  jpeg_quality: 90,
  max_skipped_fraction: 0.05,
  include_images: false,
} as const satisfies ExportOptions;

/** JSON-equal: the same numbers, strings, booleans and objects' members, key order aside. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((key) =>
    Object.hasOwn(b, key) &&
    sameValue((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key])
  );
}

/** `value` with its object members in key order, recursively (arrays keep their order). */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.keys(value).sort().map((
      key,
    ) => [key, canonical((value as Record<string, unknown>)[key])]),
  );
}

/**
 * `options` as stored and compared: without the options that are not set (undefined, null, an
 * empty `columns` list) or equal to their declared default ({@link OPTION_DEFAULTS}), keys in
 * order, recursively. Two requests whose normalised options are equal make the same file.
 */
export function normalizeOptions(options: ExportOptions): ExportOptions {
  const kept = Object.keys(options).sort().flatMap((key) => {
    const value = (options as Record<string, unknown>)[key];
    if (value === undefined || value === null) return [];
    if (Array.isArray(value) && value.length === 0) return [];
    if (Object.hasOwn(OPTION_DEFAULTS, key)) {
      if (sameValue(value, OPTION_DEFAULTS[key as keyof typeof OPTION_DEFAULTS])) return [];
    }
    return [[key, canonical(value)]];
  });
  return Object.fromEntries(kept) as ExportOptions;
}
