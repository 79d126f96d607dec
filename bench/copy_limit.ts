/**
 * The database's pace for an exporter: `COPY (<the exporter's own batch statement>) TO STDOUT`
 * into a byte counter, summed over the same keyset batches the export runs. Also counts the SQL
 * statements one batch sends.
 *
 * The batch statement is captured from the exporter itself through postgres.js `debug` (the
 * text it sends and its parameters), so the limit moves with the exporter's query. COPY cannot
 * take bind parameters: the captured parameters are inlined, and only when every one of them is
 * an integer (the project id, the keyset cursor and limits this module produced itself, or a
 * format constant); anything else is refused. The COPY runs through `psql` (jit off, as the
 * service's pool sets it).
 */
import postgres from "postgres";
import { bigintType, type Sql } from "../db/client.ts";
import { occurrencePredicate } from "../registry/filters.ts";
import { asStream } from "../registry/stream.ts";
import type { Exporter, ExportQueryContext, RecordId } from "../registry/types.ts";

/** What one run of {@link measureCopyLimit} found. */
export interface CopyLimit {
  rows: number;
  batches: number;
  seconds: number;
  rowsPerSecond: number;
  bytes: number;
  /** Statements `fetchBatch` sent per batch (counted through postgres.js `debug`). */
  statementsPerBatch: number;
}

/** The keyset predicate of `occurrenceBatch` (`c.id > $n`). */
const CURSOR = /c\.id\s*>\s*\$(\d+)/;

/** Every keyset predicate on the cursor (`c.id > $n`, and `o.id > $n` of `batchOccurrences`). */
const CURSORS = /\b[co]\.id\s*>\s*\$(\d+)/g;

interface Captured {
  text: string;
  params: unknown[];
}

/** A connection whose `debug` hook records every statement it sends. */
function capturingConnection(url: string, log: Captured[]): Sql {
  return postgres(url, {
    max: 1,
    onnotice: () => {},
    connection: { jit: "off" },
    types: { bigint: bigintType },
    debug: (_connection: number, text: string, params: unknown[]) => {
      log.push({ text, params: [...params] });
    },
  });
}

/** The statement with its `$n` parameters inlined; throws unless every parameter is an integer. */
function inlineIntegers(statement: Captured): string {
  return statement.text.replace(/\$(\d+)/g, (_, n: string) => {
    const value = statement.params[Number(n) - 1];
    const text = String(value);
    if (/^-?\d+$/.test(text)) return text;
    // the exporter's own settings (time zone, URL bases): a quoted literal, quotes doubled
    if (typeof value === "string") return `'${value.replaceAll("'", "''")}'`;
    throw new Error(`refusing to inline a parameter of this type into COPY: $${n}`);
  });
}

/** Removes an outer `copy (…) to stdout …`, in case the exporter already streams with COPY. */
function innerQuery(text: string): string {
  const match = /^\s*copy\s*\(([\s\S]*)\)\s*to\s+stdout[\s\S]*$/i.exec(text);
  return match ? match[1] : text;
}

/**
 * Runs one `COPY … TO STDOUT` through `psql` and returns the bytes it wrote. (postgres.js
 * `readable()` never ended on a COPY whose single row is a whole 2 MB batch.)
 */
export async function psqlCopy(url: string, copy: string): Promise<number> {
  const child = new Deno.Command("psql", {
    args: ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", "set jit = off", "-c", copy],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let bytes = 0;
  const counting = (async () => {
    for await (const chunk of child.stdout) bytes += chunk.length;
  })();
  const [status, stderr] = await Promise.all([
    child.status,
    new Response(child.stderr).text(),
    counting,
  ]);
  if (!status.success) throw new Error(`psql COPY failed: ${stderr.trim()}`);
  return bytes;
}

/**
 * The text of `exporter`'s first batch statement for project `projectId` with at most `limit`
 * records, integer parameters inlined (for a single-pass COPY: `limit` as large as the project).
 */
export async function captureStatement(
  url: string,
  exporter: Exporter,
  options: { projectId: number; limit: number },
): Promise<string> {
  if (exporter.kind === "stream") throw new Error(`not a record exporter: ${exporter.key}`);
  const log: Captured[] = [];
  const capture = capturingConnection(url, log);
  try {
    await capture`select 1`;
    log.length = 0;
    const ctx: ExportQueryContext = { sql: capture, projectId: options.projectId, filters: {} };
    // a tiny batch runs the statement cheaply; its text and parameters are what we keep
    await exporter.fetchBatch(ctx, { afterId: null, limit: 1, recordsBefore: 0 });
    const [statement] = log;
    const limitMatch = /limit\s+\$(\d+)/.exec(statement.text);
    if (!limitMatch) throw new Error(`${exporter.key}: no batch limit in its statement`);
    const limitIndex = Number(limitMatch[1]) - 1;
    const params = statement.params.map((p, i) => (i === limitIndex ? options.limit : p));
    return innerQuery(inlineIntegers({ text: statement.text, params }));
  } finally {
    await capture.end();
  }
}

/** The keyset cursors (`afterId` before each batch) of a whole export, in order. */
async function batchCursors(
  sql: Sql,
  projectId: number,
  limit: number,
): Promise<{ cursors: (number | null)[]; rows: number }> {
  const ctx: ExportQueryContext = { sql, projectId, filters: {} };
  const [{ n }] = await sql<{ n: number }[]>`
    select count(*)::int as n from occurrences o where ${occurrencePredicate(ctx)}`;
  const rows = await sql<{ id: number }[]>`
    select id from (
      select o.id, row_number() over (order by o.id) as n
      from occurrences o where ${occurrencePredicate(ctx)}
    ) numbered
    where n % ${limit} = 0
    order by id`;
  // a last cursor at the very end would start an empty batch, which the export runs too
  return { cursors: [null, ...rows.map((r) => r.id)], rows: n };
}

/**
 * Measures the COPY limit of `exporter` on project `projectId` with batches of `limit` records.
 * `format` is appended to COPY (`with csv` for CSV formats, empty for text).
 */
export async function measureCopyLimit(
  url: string,
  exporter: Exporter,
  options: { projectId: number; limit: number; copyOptions: string },
): Promise<CopyLimit> {
  if (exporter.kind === "stream") throw new Error(`not a record exporter: ${exporter.key}`);
  const log: Captured[] = [];
  const capture = capturingConnection(url, log);
  const plain = postgres(url, { max: 1, onnotice: () => {}, connection: { jit: "off" } });
  try {
    // Capture one batch statement and count the statements of three batches.
    const ctx: ExportQueryContext = { sql: capture, projectId: options.projectId, filters: {} };
    await capture`select 1`; // connection set-up statements are not the exporter's
    log.length = 0;
    let cursor = { afterId: null as RecordId | null, limit: options.limit, recordsBefore: 0 };
    let counted = 0;
    for (let i = 0; i < 3; i++) {
      const batch = await exporter.fetchBatch(ctx, cursor);
      counted++;
      if (batch.records < options.limit) break;
      cursor = {
        ...cursor,
        afterId: batch.lastId,
        recordsBefore: cursor.recordsBefore + batch.records,
      };
    }
    const statementsPerBatch = log.length / counted;
    const first = log.find((s) => !CURSOR.test(s.text));
    const later = log.find((s) => CURSOR.test(s.text));
    if (!first || !later) throw new Error(`${exporter.key}: need two batches to measure`);
    const afterIndexes = new Set(
      [...later.text.matchAll(CURSORS)].map((m) => Number(m[1]) - 1),
    );

    const { cursors, rows } = await batchCursors(plain, options.projectId, options.limit);
    let bytes = 0;
    const started = performance.now();
    for (const afterId of cursors) {
      const statement = afterId === null ? first : {
        text: later.text,
        params: later.params.map((p, i) => (afterIndexes.has(i) ? afterId : p)),
      };
      const copy = `copy (${
        innerQuery(inlineIntegers(statement))
      }) to stdout ${options.copyOptions}`;
      bytes += await psqlCopy(url, copy);
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      rows,
      batches: cursors.length,
      seconds,
      rowsPerSecond: rows / seconds,
      bytes,
      statementsPerBatch,
    };
  } finally {
    await capture.end();
    await plain.end();
  }
}

/**
 * Statements a format sends per chunk of `limit` records, run as the export runs it (a record
 * format through `asStream`): the most statements any of its first `chunks` chunks sent
 * (counted through postgres.js `debug`). A stream format has phases (a zip's members, a header
 * chunk), so this is the maximum, not the mean.
 */
export async function streamStatementsPerChunk(
  url: string,
  exporter: Exporter,
  options: { projectId: number; limit: number; chunks?: number },
): Promise<number> {
  const stream = asStream(exporter);
  const log: Captured[] = [];
  const capture = capturingConnection(url, log);
  try {
    const ctx: ExportQueryContext = { sql: capture, projectId: options.projectId, filters: {} };
    await capture`select 1`; // connection set-up statements are not the exporter's
    let state = stream.initialState(ctx);
    let most = 0;
    for (let i = 0; i < (options.chunks ?? 12); i++) {
      log.length = 0;
      const chunk = await stream.next(ctx, state, { limit: options.limit });
      most = Math.max(most, log.length);
      state = chunk.state;
      if (chunk.done) break;
    }
    return most;
  } finally {
    await capture.end();
  }
}
