/**
 * `deno task test [files…] [--lanes=N] [deno test flags]`: runs every test file against real
 * services and prints `N passed, N failed` as its last line.
 *
 * Files run in `--lanes` lanes (default `TEST_LANES` or 2): each lane has its own PostgreSQL
 * database and its own Temporal dev server, and runs one file at a time, each in its own
 * `deno test` process (a process that dies is reported by name and fails the run, it is never
 * rerun). The lanes share one moto S3 server (every harness has its own bucket). Files start
 * longest first (`tests/durations.json`, measured by this runner: `--record-durations`
 * rewrites it), and each file's output is printed whole when it ends. One `deno check` of all
 * the files runs beside them from the start (they run with `--no-check`); a type error is one
 * failure.
 */
import {
  createDatabase,
  dropDatabase,
  ensurePostgres,
  findOrInstallTool,
  freePorts,
  startMotoServer,
  startTemporalDevServer,
  type TemporalDevServer,
  withDatabase,
} from "../cli/dev_services.ts";
import { connectDatabase } from "../db/client.ts";
import { type FileOutcome, fileTimeTable } from "./file_time_table.ts";
import { migrate } from "../db/migrate.ts";

const baseUrl = Deno.env.get("DATABASE_URL") ?? "postgres://postgres@127.0.0.1:5432/postgres";
const dataDir = ".data/test";
const durationsFile = new URL("./durations.json", import.meta.url);
await Deno.mkdir(dataDir, { recursive: true });

const laneFlag = Deno.args.find((a) => a.startsWith("--lanes="));
const recordDurations = Deno.args.includes("--record-durations");
const flags = Deno.args.filter((a) =>
  a.startsWith("-") && a !== laneFlag && a !== "--record-durations"
);
const files = await testFiles(Deno.args.filter((a) => !a.startsWith("-")));
const laneCount = Math.max(
  1,
  Math.min(
    files.length,
    Number(laneFlag?.slice("--lanes=".length) ?? Deno.env.get("TEST_LANES") ?? 2) || 1,
  ),
);

await ensurePostgres(baseUrl);
const stamp = Date.now();
console.error(`starting ${laneCount} Temporal dev server(s) and a moto S3 server …`);
const moto = await startMotoServer({ logFile: `${dataDir}/moto.log` });
const lanes: Lane[] = [];

/** One lane: a database and a Temporal dev server of its own. */
interface Lane {
  index: number;
  dbName: string;
  databaseUrl: string;
  temporal: TemporalDevServer;
}

// Interrupted (Ctrl-C, a CI timeout): stop the servers this run started before leaving, so
// that no Temporal or moto server outlives it.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    console.error(`\n${signal}: stopping the test services …`);
    Promise.allSettled([moto.stop(), ...lanes.map((lane) => lane.temporal.stop())])
      .finally(() => Deno.exit(130));
  });
}

let passed = 0;
let failed = 0;
const crashes: string[] = [];
const measured: Record<string, number> = {};
const outcomes = new Map<string, FileOutcome>();
try {
  // One type check for everything, in the background: it runs while the lanes are set up (each
  // lane's database and Temporal dev server at once) and the first files run (they are run with
  // --no-check); a type error fails the run when it ends
  const check = new Deno.Command(Deno.execPath(), { args: ["check", ...files] }).spawn().status;
  // installed once (not by each lane at once); every port of every lane's server (gRPC, HTTP,
  // metrics) chosen together, so that no two are equal and no server's own pick of a port can
  // take another lane's while the servers start at once
  await findOrInstallTool("temporal");
  const ports = freePorts(laneCount * 3);
  const setups = await Promise.allSettled(
    Array.from({ length: laneCount }, async (_, index): Promise<Lane> => {
      const dbName = `ami_exports_test_${stamp}_${index}`;
      await createDatabase(baseUrl, dbName);
      const databaseUrl = withDatabase(baseUrl, dbName);
      const sql = connectDatabase(databaseUrl, { max: 2 });
      try {
        await migrate(sql);
      } finally {
        await sql.end();
      }
      const temporal = await startTemporalDevServer({
        port: ports[3 * index],
        httpPort: ports[3 * index + 1],
        metricsPort: ports[3 * index + 2],
        logFile: `${dataDir}/temporal-${index}.log`,
      });
      // pushed as soon as it exists, so that `finally` below stops it whatever else fails
      const lane = { index, dbName, databaseUrl, temporal };
      lanes.push(lane);
      return lane;
    }),
  );
  lanes.sort((a, b) => a.index - b.index);
  const setupFailure = setups.find((s) => s.status === "rejected");
  if (setupFailure) {
    await check;
    throw setupFailure.reason;
  }

  const queue = await longestFirst(files);
  const running = new Map<string, number>();
  const ticker = setInterval(() => {
    const now = performance.now();
    const list = [...running].map(([f, t]) => `${f} (${((now - t) / 1000).toFixed(0)} s)`);
    console.error(`… running: ${list.join(", ")}; ${queue.length} files waiting`);
  }, 300_000);
  await Promise.all(lanes.map(async (lane) => {
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
      const started = performance.now();
      running.set(file, started);
      const result = await runFile(lane, file);
      running.delete(file);
      const seconds = (performance.now() - started) / 1000;
      measured[file] = Math.round(seconds);
      outcomes.set(file, { seconds, lane: lane.index, ...result });
      console.log(result.output);
      console.log(
        `== ${file}: ${result.passed} passed, ${result.failed} failed in ${
          seconds.toFixed(0)
        } s (lane ${lane.index})`,
      );
      if (result.crashed) {
        crashes.push(`${file}: ${result.crashed}`);
        console.error(`\n!! ${file} crashed (${result.crashed}) before it finished`);
        failed++;
      }
      passed += result.passed;
      failed += result.failed;
    }
  }));
  clearInterval(ticker);
  if (!(await check).success) {
    console.error("\n!! deno check failed (its errors are above)");
    failed++;
  }
} finally {
  await Promise.all([moto.stop(), ...lanes.map((lane) => lane.temporal.stop())]);
  for (const lane of lanes) {
    await dropDatabase(baseUrl, lane.dbName).catch((e) =>
      console.error(`could not drop ${lane.dbName}: ${e}`)
    );
  }
}

if (recordDurations) {
  const known = await readDurations();
  await Deno.writeTextFile(
    durationsFile,
    JSON.stringify(Object.fromEntries(Object.entries({ ...known, ...measured }).sort()), null, 2) +
      "\n",
  );
}
console.log(fileTimeTable(outcomes));
if (crashes.length > 0) {
  console.log(`process crashes (each counts as a failure): ${crashes.join("; ")}`);
}
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(failed === 0 ? 0 : 1);

/** Seconds per file measured by an earlier run (`tests/durations.json`), or none. */
async function readDurations(): Promise<Record<string, number>> {
  try {
    return JSON.parse(await Deno.readTextFile(durationsFile));
  } catch {
    return {};
  }
}

/** `files` ordered by their measured duration, longest first (unmeasured ones first of all). */
async function longestFirst(files: string[]): Promise<string[]> {
  const known = await readDurations();
  return [...files].sort((a, b) => (known[b] ?? Infinity) - (known[a] ?? Infinity));
}

/**
 * Runs one test file in its own `deno test` process on `lane` and counts its JUnit report; the
 * process's output goes to `.data/test/output-<file>.log` as it comes and is returned whole.
 */
async function runFile(
  lane: Lane,
  file: string,
): Promise<{ passed: number; failed: number; crashed?: string; output: string }> {
  const junitPath = `${dataDir}/junit-${file.replaceAll("/", "_")}.xml`;
  await Deno.remove(junitPath).catch(() => {});
  const logPath = `${dataDir}/output-${file.replaceAll("/", "_")}.log`;
  const log = await Deno.open(logPath, { create: true, write: true, truncate: true });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--no-check", `--junit-path=${junitPath}`, ...flags, file],
    env: {
      DATABASE_URL: lane.databaseUrl,
      TEST_DATABASE_URL: lane.databaseUrl,
      TEST_ADMIN_DATABASE_URL: baseUrl,
      TEMPORAL_ADDRESS: lane.temporal.address,
      TEST_S3_ENDPOINT: moto.endpoint,
      TEST_MOTO_PORT: String(moto.port),
      AWS_ACCESS_KEY_ID: "testing",
      AWS_SECRET_ACCESS_KEY: "testing",
      // every API response in every test is checked against the OpenAPI document (api/contract.ts)
      API_VALIDATE_RESPONSES: "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // both streams into one file as they come (a file that hangs still leaves its output)
  const copy = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      for (let at = 0; at < chunk.length;) at += await log.write(chunk.subarray(at));
    }
  };
  const [status] = await Promise.all([child.status, copy(child.stdout), copy(child.stderr)]);
  log.close();
  const text = await Deno.readTextFile(logPath);
  const counts = await countResults(junitPath, status.code);
  const reportMissing = !(await Deno.stat(junitPath).then(() => true, () => false));
  if (status.signal || (reportMissing && !status.success)) {
    return {
      ...counts,
      output: text,
      crashed: status.signal ?? `exit code ${status.code} without a report`,
    };
  }
  return { ...counts, output: text };
}

/** The `*_test.ts` files under the given paths (default: the whole project), sorted. */
async function testFiles(paths: string[]): Promise<string[]> {
  const found: string[] = [];
  const skip = new Set([".tools", "node_modules", ".data", ".git"]);
  async function walk(path: string): Promise<void> {
    const info = await Deno.stat(path);
    if (info.isFile) {
      if (path.endsWith("_test.ts")) found.push(path);
      return;
    }
    for await (const entry of Deno.readDir(path)) {
      if (skip.has(entry.name)) continue;
      await walk(path === "." ? entry.name : `${path.replace(/\/$/, "")}/${entry.name}`);
    }
  }
  for (const path of paths.length > 0 ? paths : ["."]) await walk(path);
  return found.sort();
}

/** Counts test cases in Deno's JUnit report; a run that produced none counts as one failure. */
async function countResults(
  path: string,
  code: number,
): Promise<{ passed: number; failed: number }> {
  let xml = "";
  try {
    xml = await Deno.readTextFile(path);
  } catch {
    return { passed: 0, failed: 1 };
  }
  const cases = xml.match(/<testcase\b[^>]*?(\/>|>[\s\S]*?<\/testcase>)/g) ?? [];
  let failed = 0;
  let passed = 0;
  for (const c of cases) {
    if (/<(failure|error)\b/.test(c)) failed++;
    else if (/<skipped\b/.test(c)) continue;
    else passed++;
  }
  if (cases.length === 0 || (code !== 0 && failed === 0)) failed++;
  return { passed, failed };
}
