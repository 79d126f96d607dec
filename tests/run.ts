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

const junitPath = `${dataDir}/junit.xml`;
await Deno.remove(junitPath).catch(() => {});
let exitCode = 1;
try {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", `--junit-path=${junitPath}`, ...Deno.args],
    env: {
      DATABASE_URL: databaseUrl,
      TEST_DATABASE_URL: databaseUrl,
      TEST_ADMIN_DATABASE_URL: baseUrl,
      TEMPORAL_ADDRESS: temporal.address,
      TEST_S3_ENDPOINT: moto.endpoint,
      TEST_MOTO_PORT: String(moto.port),
      AWS_ACCESS_KEY_ID: "testing",
      AWS_SECRET_ACCESS_KEY: "testing",
    },
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  exitCode = (await child.status).code;
} finally {
  await Promise.all([temporal.stop(), moto.stop()]);
  await dropDatabase(baseUrl, dbName).catch((e) => console.error(`could not drop ${dbName}: ${e}`));
}

const { passed, failed } = await countResults(junitPath, exitCode);
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(failed === 0 && exitCode === 0 ? 0 : 1);

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
