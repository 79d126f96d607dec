/**
 * Independent checks of Darwin Core Archives for tests: `unzip -t`, and `tests/dwca_check.py`
 * (Python's zipfile and XML parser, and python-dwca-reader from PyPI, installed into the
 * project-local `.tools/venv` on first use like the Temporal CLI).
 */
import { fileURLToPath } from "node:url";
import { assert } from "./assert.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const VENV = `${ROOT}.tools/venv`;
const SCRIPT = `${ROOT}tests/dwca_check.py`;

/** What `dwca_check.py` reports. */
export interface DwcaReport {
  testzip: string | null;
  names: string[];
  eml_root: string;
  eml_title: string;
  eml_license: string;
  eml_bounds: Record<string, number> | null;
  eml_dates: [string, string] | null;
  duplicate_core_ids: number;
  files: Record<
    string,
    {
      kind: "core" | "extension";
      row_type: string;
      rows: number;
      header: string[];
      terms: string[];
      dangling: number;
    }
  >;
  reader: {
    core_type: string;
    core_rows: number;
    extensions: Record<string, { rows: number; linked: number }>;
  };
}

async function run(cmd: string, args: string[]): Promise<Deno.CommandOutput> {
  return await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
}

let ready: Promise<void> | undefined;

/** Installs python-dwca-reader into `.tools/venv` unless it is there already. */
function ensureReader(): Promise<void> {
  ready ??= (async () => {
    const probe = await run(`${VENV}/bin/python`, ["-c", "import dwca"]).catch(() => undefined);
    if (probe?.success) return;
    if (!probe) {
      const venv = await run("python3", ["-m", "venv", VENV]);
      assert(venv.success, new TextDecoder().decode(venv.stderr));
    }
    const pip = await run(`${VENV}/bin/pip`, ["install", "-q", "python-dwca-reader"]);
    assert(
      pip.success,
      `could not install python-dwca-reader: ${new TextDecoder().decode(pip.stderr)}`,
    );
  })();
  return ready;
}

async function withArchive<T>(bytes: Uint8Array, fn: (path: string) => Promise<T>): Promise<T> {
  const path = await Deno.makeTempFile({ prefix: "dwca-test-", suffix: ".zip" });
  try {
    await Deno.writeFile(path, bytes);
    return await fn(path);
  } finally {
    await Deno.remove(path).catch(() => {});
  }
}

/** `unzip -t` (CRC of every entry) and the report of `dwca_check.py`. */
export async function checkDwca(bytes: Uint8Array): Promise<DwcaReport> {
  await ensureReader();
  return await withArchive(bytes, async (path) => {
    const unzip = await run("unzip", ["-tq", path]);
    const decoder = new TextDecoder();
    assert(unzip.success, `unzip -t failed: ${decoder.decode(unzip.stdout)}`);
    const out = await run(`${VENV}/bin/python`, [SCRIPT, path]);
    assert(out.success, `dwca_check.py failed: ${decoder.decode(out.stderr)}`);
    return JSON.parse(decoder.decode(out.stdout)) as DwcaReport;
  });
}

/** One entry of the archive as text (`unzip -p`). */
export async function unzipText(bytes: Uint8Array, name: string): Promise<string> {
  return await withArchive(bytes, async (path) => {
    const out = await run("unzip", ["-p", path, name]);
    assert(out.success, `unzip -p ${name} failed`);
    return new TextDecoder().decode(out.stdout);
  });
}
