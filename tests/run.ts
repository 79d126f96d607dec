/**
 * `deno task test`: starts a Temporal dev server and a moto S3 server on free loopback ports,
 * creates a fresh PostgreSQL database, runs every test against them, stops what it started and
 * prints `N passed, N failed` as its last line.
 */
import {
  createDatabase,
  dropDatabase,
  ensurePostgres,
  startMotoServer,
  startTemporalDevServer,
  withDatabase,
} from "../cli/dev_services.ts";
import { connectDatabase } from "../db/client.ts";
import { migrate } from "../db/migrate.ts";

const baseUrl = Deno.env.get("DATABASE_URL") ?? "postgres://postgres@127.0.0.1:5432/postgres";
const dataDir = ".data/test";
await Deno.mkdir(dataDir, { recursive: true });

await ensurePostgres(baseUrl);
const dbName = `ami_exports_test_${Date.now()}`;
await createDatabase(baseUrl, dbName);
const databaseUrl = withDatabase(baseUrl, dbName);
const sql = connectDatabase(databaseUrl, { max: 2 });
await migrate(sql);
await sql.end();

console.error("starting Temporal dev server and moto S3 server …");
const [temporal, moto] = await Promise.all([
  startTemporalDevServer({ logFile: `${dataDir}/temporal.log` }),
  startMotoServer({ logFile: `${dataDir}/moto.log` }),
]);

const env = {
  DATABASE_URL: databaseUrl,
  TEST_DATABASE_URL: databaseUrl,
  TEST_ADMIN_DATABASE_URL: baseUrl,
  TEMPORAL_ADDRESS: temporal.address,
  TEST_S3_ENDPOINT: moto.endpoint,
  TEST_MOTO_PORT: String(moto.port),
  AWS_ACCESS_KEY_ID: "testing",
  AWS_SECRET_ACCESS_KEY: "testing",
  // every API response in every test is checked against the OpenAPI document (api/contract.ts)
  API_VALIDATE_RESPONSES: "1",
};
const flags = Deno.args.filter((a) => a.startsWith("-"));
const files = await testFiles(Deno.args.filter((a) => !a.startsWith("-")));
let passed = 0;
let failed = 0;
const crashes: string[] = [];
try {
  // One type check for everything, then each file in its own process, so that a process that
  // dies is reported by name. A crash is a defect: it fails the run, it is never rerun.
  const check = await new Deno.Command(Deno.execPath(), { args: ["check", ...files] }).spawn()
    .status;
  if (!check.success) failed++;
  for (const [index, file] of files.entries()) {
    const junitPath = `${dataDir}/junit-${index}.xml`;
    const result = await runFile(file, junitPath);
    if (result.crashed) {
      crashes.push(`${file}: ${result.crashed}`);
      console.error(`\n!! ${file} crashed (${result.crashed}) before it finished`);
      failed++;
    }
    passed += result.passed;
    failed += result.failed;
  }
} finally {
  await Promise.all([temporal.stop(), moto.stop()]);
  await dropDatabase(baseUrl, dbName).catch((e) => console.error(`could not drop ${dbName}: ${e}`));
}

if (crashes.length > 0) {
  console.log(`process crashes (each counts as a failure): ${crashes.join("; ")}`);
}
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(failed === 0 ? 0 : 1);

/** Runs one test file in its own `deno test` process and counts its JUnit report. */
async function runFile(
  file: string,
  junitPath: string,
): Promise<{ passed: number; failed: number; crashed?: string }> {
  await Deno.remove(junitPath).catch(() => {});
  const status = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--no-check", `--junit-path=${junitPath}`, ...flags, file],
    env,
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  const counts = await countResults(junitPath, status.code);
  const reportMissing = !(await Deno.stat(junitPath).then(() => true, () => false));
  if (status.signal || (reportMissing && !status.success)) {
    return { ...counts, crashed: status.signal ?? `exit code ${status.code} without a report` };
  }
  return counts;
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
