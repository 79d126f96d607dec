/**
 * Independent readers for exported files: `tests/readers.py` (Python's csv and json modules,
 * strict about NaN/Infinity, `str.splitlines`, lxml with XML Schema validation), run from the
 * project-local `.tools/venv`, where lxml and python-dwca-reader are installed on first use.
 */
import { fileURLToPath } from "node:url";
import { assert } from "./assert.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const VENV = `${ROOT}.tools/venv`;
const SCRIPT = `${ROOT}tests/readers.py`;

/** The EML 2.2.0 schema (NCEAS, local imports only): `tests/fixtures/schemas/README.md`. */
export const EML_XSD = fileURLToPath(
  new URL("./fixtures/schemas/eml-2.2.0/eml.xsd", import.meta.url),
);

async function run(cmd: string, args: string[]): Promise<Deno.CommandOutput> {
  return await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
}

let ready: Promise<void> | undefined;

/** Installs lxml and python-dwca-reader into `.tools/venv` unless they are there already. */
export function ensureReaders(): Promise<void> {
  ready ??= (async () => {
    const probe = await run(`${VENV}/bin/python`, ["-c", "import lxml, dwca"]).catch(() =>
      undefined
    );
    if (probe?.success) return;
    if (!probe) {
      const venv = await run("python3", ["-m", "venv", VENV]);
      assert(venv.success, new TextDecoder().decode(venv.stderr));
    }
    const pip = await run(`${VENV}/bin/pip`, ["install", "-q", "lxml", "python-dwca-reader"]);
    assert(pip.success, `could not install lxml: ${new TextDecoder().decode(pip.stderr)}`);
  })();
  return ready;
}

/** What `readers.py MODE` printed for `data` (integers come back as decimal text). */
export async function readWith(
  mode: "csv" | "json" | "ndjson" | "xml" | "tsv",
  data: string | Uint8Array,
  options: { xsd?: string } = {},
): Promise<unknown> {
  await ensureReaders();
  const path = await Deno.makeTempFile({ prefix: "reader-" });
  try {
    await Deno.writeFile(path, typeof data === "string" ? new TextEncoder().encode(data) : data);
    const out = await run(`${VENV}/bin/python`, [
      SCRIPT,
      mode,
      path,
      ...(options.xsd ? [options.xsd] : []),
    ]);
    const decoder = new TextDecoder();
    assert(out.success, `readers.py ${mode} failed: ${decoder.decode(out.stderr)}`);
    return JSON.parse(decoder.decode(out.stdout));
  } finally {
    await Deno.remove(path).catch(() => {});
  }
}

const installs = new Map<string, Promise<void>>();

/**
 * Installs the PyPI `packages` into `.tools/venv` unless `modules` import there already (the
 * third-party readers of the new formats: pycocotools, pyarrow, duckdb, frictionless).
 */
export function ensurePython(modules: string[], packages: string[]): Promise<void> {
  const key = modules.join(",");
  let ready = installs.get(key);
  if (!ready) {
    ready = (async () => {
      const probe = await run(`${VENV}/bin/python`, ["-c", `import ${key}`]).catch(() => undefined);
      if (probe?.success) return;
      if (!probe) {
        const venv = await run("python3", ["-m", "venv", VENV]);
        assert(venv.success, new TextDecoder().decode(venv.stderr));
      }
      const pip = await run(`${VENV}/bin/pip`, ["install", "-q", ...packages]);
      assert(pip.success, `could not install ${packages}: ${new TextDecoder().decode(pip.stderr)}`);
    })();
    installs.set(key, ready);
  }
  return ready;
}

/**
 * Runs `tests/<script>` with the venv's Python on `files` (written to temporary files) and
 * returns the JSON it prints.
 */
export async function runPythonReader(
  script: string,
  files: (string | Uint8Array)[],
  options: { modules: string[]; packages: string[]; suffix?: string; args?: string[] },
): Promise<unknown> {
  await ensurePython(options.modules, options.packages);
  const paths: string[] = [];
  try {
    for (const data of files) {
      const path = await Deno.makeTempFile({ prefix: "reader-", suffix: options.suffix });
      paths.push(path);
      await Deno.writeFile(path, typeof data === "string" ? new TextEncoder().encode(data) : data);
    }
    const out = await run(`${VENV}/bin/python`, [
      `${ROOT}tests/${script}`,
      ...paths,
      ...(options.args ?? []),
    ]);
    const decoder = new TextDecoder();
    assert(out.success, `${script} failed: ${decoder.decode(out.stderr)}`);
    return JSON.parse(decoder.decode(out.stdout));
  } finally {
    for (const path of paths) await Deno.remove(path).catch(() => {});
  }
}
