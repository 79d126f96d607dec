/**
 * The Camtrap DP reader of the tests: `tests/camtrap_check.py` validates a package offline with
 * `frictionless` (PyPI) against the local Camtrap DP 1.0.2 table schemas and the profile
 * (`tests/fixtures/schemas/camtrap-dp-1.0.2/`, a copy of `shared/schemas/`) and reports its tables.
 */
import { fileURLToPath } from "node:url";
import { runPythonReader } from "./readers.ts";

/** The Camtrap DP 1.0.2 schemas (tdwg/camtrap-dp at tag 1.0.2), see the schemas README. */
export const CAMTRAP_SCHEMAS = fileURLToPath(
  new URL("./fixtures/schemas/camtrap-dp-1.0.2/", import.meta.url),
);

/** What `camtrap_check.py` reports. */
export interface CamtrapReport {
  /** frictionless errors (table schemas, primary and foreign keys): none when valid. */
  errors: string[];
  /** jsonschema errors of datapackage.json against the Camtrap DP profile. */
  profile_errors: string[];
  rows: { deployments: number; media: number; observations: number };
  levels: { event?: number; media?: number };
  dangling: Record<string, number>;
  descriptor: Record<string, unknown>;
  tables: Record<"deployments" | "media" | "observations", Record<string, string>[]>;
}

/** Validates and reads the package `bytes` (frictionless installed into `.tools/venv`). */
export function readCamtrap(bytes: Uint8Array): Promise<CamtrapReport> {
  return runPythonReader("camtrap_check.py", [bytes], {
    modules: ["frictionless", "jsonschema"],
    packages: ["frictionless"],
    suffix: ".zip",
    args: [CAMTRAP_SCHEMAS],
  }) as Promise<CamtrapReport>;
}
