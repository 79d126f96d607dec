/**
 * The Parquet readers of the tests: `tests/parquet_check.py` reads a file with pyarrow and with
 * DuckDB (PyPI, installed into `.tools/venv` on first use) and prints every value in the simple
 * CSV's text form.
 */
import { csvFormulaGuard } from "../registry/encoding.ts";
import { parquetColumns } from "../registry/formats/occurrences_parquet.ts";
import { runPythonReader } from "./readers.ts";

/** Rows of text cells by column name. */
export type Rows = Record<string, string>[];

/** What `tests/parquet_check.py` reports: the file as pyarrow and DuckDB read it. */
export interface ParquetReport {
  pyarrow: { types: Record<string, string>; row_groups: number[]; rows: Rows };
  duckdb: { types: Record<string, string>; rows: Rows };
}

/** Reads `bytes` with pyarrow and DuckDB (installed into `.tools/venv` on first use). */
export function readParquet(bytes: Uint8Array): Promise<ParquetReport> {
  return runPythonReader("parquet_check.py", [bytes], {
    modules: ["pyarrow", "duckdb", "pytz"],
    packages: ["pyarrow", "duckdb", "pytz"],
    suffix: ".parquet",
  }) as Promise<ParquetReport>;
}

/**
 * The rows of the Parquet file as the simple CSV writes them: the readers print the CSV's text
 * forms, and the CSV guards text cells against formulas (OWASP), so string columns are guarded.
 */
export function asCsvRows(rows: Rows): Rows {
  const strings = new Set(parquetColumns.filter((c) => c.kind === "string").map((c) => c.name));
  return rows.map((row) =>
    Object.fromEntries(
      Object.entries(row).map(([k, v]) => [k, strings.has(k) && v !== "" ? csvFormulaGuard(v) : v]),
    )
  );
}
