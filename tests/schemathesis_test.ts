/**
 * Issue 14: the OpenAPI document says exactly what the API accepts. Schemathesis (PyPI, in
 * `.tools/venv`) generates requests for every operation from `/api/v2/openapi.json` and sends
 * them, with a token, to the real API (worker, PostgreSQL, Temporal, S3); the run fails on any
 * 5xx, undocumented status code, schema-valid request rejected, invalid request accepted,
 * response not matching its schema, or unsupported method not answered 405 with `Allow`.
 * Bounded: `SCHEMATHESIS_MAX_EXAMPLES` examples per operation (default 7;
 * `SCHEMATHESIS_SEED`, default 14).
 */
import {
  createDatabase,
  dropDatabase,
  findOrInstallTool,
  freePort,
  withDatabase,
} from "../cli/dev_services.ts";
import { connectDatabase } from "../db/client.ts";
import { migrate } from "../db/migrate.ts";
import { scheduleTemporalId } from "../db/schedules.ts";
import { fileURLToPath } from "node:url";
import { seedDemo } from "../db/seed_demo.ts";
import { assertEquals } from "./assert.ts";
import { startHarness } from "./harness.ts";
import { requireEnv, serviceTest } from "./support.ts";

const TESTS = fileURLToPath(new URL(".", import.meta.url)).replace(/\/$/, "");

Deno.test({
  name: "schemathesis: every operation conforms to the OpenAPI document",
  ...serviceTest,
  async fn() {
    // A database of its own: its first project (id 1, the documented example) is the seeded
    // one, owned by the token's user, so that generated requests reach the export logic instead
    // of stopping at "not your project".
    const admin = requireEnv("TEST_ADMIN_DATABASE_URL");
    const name = `ami_exports_st_${Date.now()}_${crypto.randomUUID().slice(0, 6)}`;
    await createDatabase(admin, name);
    const databaseUrl = withDatabase(admin, name);
    const migrating = connectDatabase(databaseUrl, { max: 2 });
    await migrate(migrating);
    await migrating.end();
    const h = await startHarness({ storage: "fs", databaseUrl });
    const port = freePort();
    const server = Deno.serve(
      { port, hostname: "127.0.0.1", onListen: () => {} },
      h.app.fetch,
    );
    try {
      // and ids of its own: a Temporal Schedule an earlier file of this lane left under an id
      // this new database will give again (export-schedule-1) would make its create a 503
      for await (const schedule of h.temporal.client.schedule.list()) {
        if (/^export-schedule-\d+$/.test(schedule.scheduleId)) {
          await h.temporal.client.schedule.getHandle(schedule.scheduleId).delete()
            .catch(() => {});
        }
      }
      const seed = await seedDemo(h.sql, { occurrences: 30, seed: 41 });
      const bin = await findOrInstallTool("schemathesis");
      const report = `${Deno.cwd()}/.data/test/schemathesis`;
      await Deno.mkdir(report, { recursive: true });
      const out = await new Deno.Command(bin, {
        args: [
          "--config-file",
          `${TESTS}/schemathesis.toml`,
          "run",
          `http://127.0.0.1:${port}/api/v2/openapi.json`,
          "--url",
          `http://127.0.0.1:${port}`,
          "--header",
          `Authorization: Token ${seed.token}`,
          "--checks",
          "all",
          "--max-examples",
          Deno.env.get("SCHEMATHESIS_MAX_EXAMPLES") ?? "7",
          "--seed",
          Deno.env.get("SCHEMATHESIS_SEED") ?? "14",
          "--workers",
          "1",
          // conformance, not speed: timing goals live in `deno task bench`; on a loaded
          // 2-core machine one answer took 17.7 s, past schemathesis' default 10 s limit
          "--request-timeout",
          "120",
          "--max-response-time",
          "120",
          "--report",
          "junit",
          "--report-dir",
          report,
        ],
        env: {
          NO_COLOR: "1",
          SCHEMATHESIS_TELEMETRY: "false",
          SCHEMATHESIS_HOOKS: "schemathesis_hooks",
          PYTHONPATH: TESTS,
        },
        cwd: report, // its `.schemathesis/` cache stays out of the work tree
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      await Deno.mkdir(report, { recursive: true });
      await Deno.writeTextFile(`${report}/output.txt`, text);
      assertEquals(out.code, 0, `schemathesis found problems (${report}/output.txt):\n${text}`);
    } finally {
      await server.shutdown();
      // Schedule ids are per database (`export-schedule-<id>`) in a namespace the test run's
      // other files share: remove the Temporal Schedules this database created, so that no later
      // file finds its ids taken (docs/operations.md: one namespace per database for
      // schedules)
      const rows = await h.sql<{ id: number }[]>`select id from export_schedules`;
      for (const { id } of rows) {
        await h.temporal.client.schedule.getHandle(scheduleTemporalId(id)).delete().catch(() => {});
      }
      await h.close();
      await dropDatabase(admin, name);
    }
  },
});
