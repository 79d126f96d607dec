/**
 * Text encoders shared by the formats, each keeping a value inside its container whatever it
 * holds: XML text (XML 1.0 §2.2), JSON lines (RFC 8259 + line-based readers), CSV cells
 * (OWASP CSV injection), plain decimals and WGS84 coordinates (EML 2.2.0, Darwin Core).
 */

/**
 * Characters XML 1.0 (Fifth Edition) §2.2 does not allow in a document: everything outside
 * `Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]`, i.e. the C0
 * controls but TAB, LF and CR, lone surrogates, U+FFFE and U+FFFF. Not even a character
 * reference (`&#2;`) may name them, so they can only be removed.
 */
const XML_FORBIDDEN = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** `text` without the characters XML 1.0 §2.2 forbids (see {@link XML_FORBIDDEN}). */
export function xmlChars(text: string): string {
  return text.replace(XML_FORBIDDEN, "");
}

const XML_ESCAPES: Record<string, string> = {
  "<": "&lt;",
  ">": "&gt;",
  "&": "&amp;",
  '"': "&quot;",
  "'": "&apos;",
  // XML 1.0 §2.11: a parser turns a literal CR (or CR LF) into LF; a reference survives
  "\r": "&#13;",
};

/**
 * `text` as XML character data or an attribute value: the characters XML 1.0 §2.2 forbids are
 * removed, markup characters escaped, and CR written as `&#13;` so that a reader gets it back
 * (§2.11 end-of-line handling would turn it into LF).
 */
export function xmlText(text: string): string {
  return xmlChars(text).replace(/[<>&"'\r]/g, (ch) => XML_ESCAPES[ch]);
}

/**
 * One JSON text made safe for line-based readers: U+0085 (NEL), U+2028 (LINE SEPARATOR) and
 * U+2029 (PARAGRAPH SEPARATOR) are legal unescaped in JSON strings (RFC 8259 §7), but Python's
 * `str.splitlines`, JavaScript before ES2019 and many log tools treat them as line breaks, so
 * an NDJSON record holding one would be split in two. They are written as `\uXXXX` escapes. In
 * a JSON text they can only occur inside strings (they are not JSON whitespace), so the
 * replacement never touches structure.
 */
export function jsonLineSafe(json: string): string {
  return json.replace(
    /[\u0085\u2028\u2029]/g,
    (ch) => "\\u" + ch.charCodeAt(0).toString(16).padStart(4, "0"),
  );
}

/** A number literal (CSV cells that are numbers are never formula-guarded). */
const NUMBER_LITERAL = /^[-+]?(?:[0-9]+[.]?[0-9]*|[.][0-9]+)(?:[eE][-+]?[0-9]+)?$|^-?Infinity$/;

/** The first characters that make a spreadsheet read a cell as a formula (OWASP). */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * A CSV text cell that a spreadsheet will not run as a formula: OWASP's "CSV Injection" advice
 * (owasp.org/www-community/attacks/CSV_Injection) is to prefix a cell starting with `=`, `+`,
 * `-`, `@`, TAB or CR with a single quote. A number (`-3.5`) is not text and stays as it is.
 * Applied to the CSV formats only; JSON, NDJSON and the Darwin Core Archive keep exact values.
 */
export function csvFormulaGuard(text: string): string {
  return FORMULA_START.test(text) && !NUMBER_LITERAL.test(text) ? "'" + text : text;
}

/**
 * A finite number as a plain decimal (`0.0000001`, `123000000000000000000000`), never in
 * exponent notation: xs:decimal (the type of EML's bounding coordinates) and many CSV/TSV
 * readers reject `1e-7`. The digits are JavaScript's shortest round-trip digits, so
 * `Number(decimalText(x)) === x`.
 */
export function decimalText(value: number): string {
  if (!Number.isFinite(value)) throw new Error(`not a finite number: ${value}`);
  const text = String(value);
  const m = /^(-?)([0-9])(?:[.]([0-9]+))?e([-+][0-9]+)$/.exec(text);
  if (!m) return text;
  const digits = m[2] + (m[3] ?? "");
  const point = 1 + Number(m[4]); // digits before the decimal point
  if (point <= 0) return `${m[1]}0.${"0".repeat(-point)}${digits}`;
  if (point >= digits.length) return m[1] + digits + "0".repeat(point - digits.length);
  return `${m[1]}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** A WGS84 coordinate pair (decimal degrees, EPSG:4326). */
export interface Wgs84 {
  latitude: number;
  longitude: number;
}

/**
 * The pair when both values are finite numbers in range (latitude −90..90, longitude −180..180,
 * the domain of Darwin Core's decimalLatitude/decimalLongitude and of EML's bounding
 * coordinates), else null: half a pair or an impossible one is written as nothing.
 */
export function wgs84(latitude: unknown, longitude: unknown): Wgs84 | null {
  if (typeof latitude !== "number" || typeof longitude !== "number") return null;
  if (!Number.isFinite(latitude) || !Number.isFinite(longitude)) return null;
  if (latitude < -90 || latitude > 90 || longitude < -180 || longitude > 180) return null;
  return { latitude, longitude };
}

/** The UTF-8 byte order mark some spreadsheets (Excel on Windows) need to read CSV as UTF-8. */
export const UTF8_BOM = "\uFEFF";

/**
 * The row with its `latitude` and `longitude` cells as plain decimals when they are a valid
 * WGS84 pair ({@link wgs84}, {@link decimalText}), else both empty (the station tables).
 */
export function coordinateCells(row: Record<string, unknown>): Record<string, unknown> {
  const pair = wgs84(row.latitude, row.longitude);
  return {
    ...row,
    latitude: pair ? decimalText(pair.latitude) : null,
    longitude: pair ? decimalText(pair.longitude) : null,
  };
}
