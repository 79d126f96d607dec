/**
 * How much of a client's input, or of a display string, a response may repeat (issue 23,
 * "responses stay proportional"): a 5 MB station name or a list of 10,000 ids is shown as its
 * beginning and a marker, never in full, so that every response stays small whatever the data
 * or the request holds. The limits are the constants below; the functions apply them.
 *
 * Lengths are counted in user-perceived characters (extended grapheme clusters, Unicode
 * UAX #29, via `Intl.Segmenter`), so a cut never splits an accented letter, an emoji or a
 * surrogate pair. Every cut string ends with {@link ELLIPSIS} and is at most its limit long,
 * the marker included.
 */

/**
 * A display string (a name or a label in `filters_display`, a user's name in an export or a
 * schedule) is at most this many characters, the ellipsis included.
 */
export const MAX_DISPLAY_CHARS = 200;

/**
 * An echoed input string (a format key, a filter key, a path, a file key, one string inside an
 * echoed value) is at most this many characters in an error message, the ellipsis included.
 */
export const MAX_ECHO_CHARS = 200;

/**
 * An echoed or displayed list (ids in a validation message, names in `filters_display`, keys,
 * fields of a 400, the errors of a job's progress) shows at most this many items, then
 * `… and N more`.
 */
export const MAX_ECHO_ITEMS = 20;

/**
 * A whole message in a response (an `error`, a job log line, a job's error, a rendered echoed
 * value) is at most this many characters, the ellipsis included.
 */
export const MAX_MESSAGE_CHARS = 1000;

/** Echoed nested values (arrays in arrays, objects in objects) are shown this deep, then `…`. */
export const MAX_ECHO_DEPTH = 3;

/** The marker that ends a cut string (U+2026 HORIZONTAL ELLIPSIS). */
export const ELLIPSIS = "…";

const graphemes = new Intl.Segmenter("en", { granularity: "grapheme" });

/**
 * `text` cut to at most `max` characters (graphemes, see the module doc), the last one being
 * {@link ELLIPSIS} when it was cut; `text` itself when it fits. `max` must be at least 1.
 * Reads at most `max` + 1 graphemes of `text`, so a huge string costs no more than a short one.
 */
export function truncateText(text: string, max: number = MAX_DISPLAY_CHARS): string {
  // fast path: a string of at most `max` UTF-16 units has at most `max` graphemes
  if (text.length <= max) return text;
  let count = 0;
  let cut = 0;
  let keep = 0;
  for (const { index } of graphemes.segment(text)) {
    if (count === max - 1) keep = index;
    if (count === max) {
      cut = index;
      break;
    }
    count++;
  }
  if (cut === 0) return text; // no more than `max` graphemes after all
  return text.slice(0, keep) + ELLIPSIS;
}

/**
 * The first {@link MAX_ECHO_ITEMS} (or `max`) items of `items` and how many were left out.
 */
export function truncateList<T>(
  items: readonly T[],
  max: number = MAX_ECHO_ITEMS,
): { items: T[]; omitted: number } {
  return { items: items.slice(0, max), omitted: Math.max(0, items.length - max) };
}

/**
 * `items` joined by `separator` (default `", "`) into at most `maxChars` characters (default
 * {@link MAX_DISPLAY_CHARS}) and at most `maxItems` items (default {@link MAX_ECHO_ITEMS}):
 * whole items while they fit, the first one cut if it alone does not, then `… and N more` for
 * the rest, which always fits: `"North, South, … and 998 more"`. `prefix` and `suffix` (default
 * empty) frame the list within the same budget: `"Deployments: North, … and 3 more"`.
 */
export function joinTruncated(
  items: readonly string[],
  options: {
    separator?: string;
    maxChars?: number;
    maxItems?: number;
    prefix?: string;
    suffix?: string;
  } = {},
): string {
  const {
    separator = ", ",
    maxChars = MAX_DISPLAY_CHARS,
    maxItems = MAX_ECHO_ITEMS,
    prefix = "",
    suffix = "",
  } = options;
  // room for the longest marker this list can need, so that it always fits
  const marker = items.length > 1 ? width(separator + moreMarker(items.length)) : 0;
  const budget = Math.max(1, maxChars - width(prefix) - width(suffix));
  let text = "";
  let shown = 0;
  for (const raw of items.slice(0, maxItems)) {
    const item = truncateText(raw, budget);
    const head = shown > 0 ? text + separator : "";
    const room = budget - width(head) - (shown + 1 < items.length ? marker : 0);
    if (width(item) <= room) {
      text = head + item;
      shown++;
      continue;
    }
    if (shown === 0 && room >= 1) {
      text = truncateText(item, room);
      shown++;
    }
    break;
  }
  const omitted = items.length - shown;
  const list = omitted === 0 ? text : `${shown > 0 ? text + separator : ""}${moreMarker(omitted)}`;
  return `${prefix}${list}${suffix}`;
}

/** The length of `text` in graphemes (see the module doc). */
function width(text: string): number {
  let count = 0;
  for (const _ of graphemes.segment(text)) count++;
  return count;
}

/** `… and N more`, the marker of a cut list. */
export function moreMarker(omitted: number): string {
  return `${ELLIPSIS} and ${omitted} more`;
}

/**
 * A compact, JSON-like rendering of a client's value for an error message, bounded whatever the
 * value: strings cut to {@link MAX_ECHO_CHARS}, arrays and objects to {@link MAX_ECHO_ITEMS}
 * items then `… and N more`, nesting beyond {@link MAX_ECHO_DEPTH} shown as `…`, the whole at
 * most {@link MAX_MESSAGE_CHARS}. `[1,2,3]` for a short list; never throws (no recursion past
 * the depth limit, unlike `JSON.stringify` on a deeply nested value).
 */
export function echoValue(value: unknown): string {
  return truncateText(render(value, 0), MAX_MESSAGE_CHARS);
}

function render(value: unknown, depth: number): string {
  if (value === null || typeof value === "number" || typeof value === "boolean") {
    return String(value);
  }
  if (typeof value === "string") return JSON.stringify(truncateText(value, MAX_ECHO_CHARS));
  if (typeof value === "bigint") return truncateText(String(value), MAX_ECHO_CHARS);
  if (value === undefined) return "undefined";
  if (typeof value !== "object") return typeof value;
  if (depth >= MAX_ECHO_DEPTH) return Array.isArray(value) ? `[${ELLIPSIS}]` : `{${ELLIPSIS}}`;
  if (Array.isArray(value)) {
    const shown = truncateList(value);
    const parts = shown.items.map((item) => render(item, depth + 1));
    if (shown.omitted > 0) parts.push(moreMarker(shown.omitted));
    return `[${parts.join(",")}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  const shown = truncateList(entries);
  const parts = shown.items.map(([key, item]) =>
    `${JSON.stringify(truncateText(key, MAX_ECHO_CHARS))}:${render(item, depth + 1)}`
  );
  if (shown.omitted > 0) parts.push(moreMarker(shown.omitted));
  return `{${parts.join(",")}}`;
}

/**
 * A copy of a stored `filters_display` (or any display document) with every string cut to
 * {@link MAX_DISPLAY_CHARS} and every list to {@link MAX_ECHO_ITEMS} items (a cut list gets a
 * sibling `<key>_omitted: N` count), for documents stored before these limits existed. Nesting
 * beyond {@link MAX_ECHO_DEPTH} levels below the top is dropped.
 */
export function truncateDisplay(document: Record<string, unknown>): Record<string, unknown> {
  return truncateObject(document, 0);
}

function truncateObject(document: Record<string, unknown>, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(document)) {
    if (Array.isArray(value)) {
      const shown = truncateList(value);
      out[key] = shown.items.map((item) => truncateValue(item, depth + 1));
      if (shown.omitted > 0) out[`${key}_omitted`] = shown.omitted;
    } else {
      out[key] = truncateValue(value, depth + 1);
    }
  }
  return out;
}

function truncateValue(value: unknown, depth: number): unknown {
  if (typeof value === "string") return truncateText(value, MAX_DISPLAY_CHARS);
  if (value === null || typeof value !== "object") return value;
  if (depth > MAX_ECHO_DEPTH) return ELLIPSIS;
  if (Array.isArray(value)) {
    const shown = truncateList(value);
    const items = shown.items.map((item) => truncateValue(item, depth + 1));
    return shown.omitted > 0 ? [...items, moreMarker(shown.omitted)] : items;
  }
  return truncateObject(value as Record<string, unknown>, depth);
}
