/**
 * `deno task demo --exit` as a newcomer runs it with `TEMPORAL_ADDRESS` pointing at a Temporal
 * server they started themselves, without the export search attributes: the demo registers them
 * and creates the housekeeping Schedule, as `deno task worker` does, and every export it makes
 * ends SUCCESS (before, every start answered 503 and nothing expired). Its own database, task
 * queue and exports directory; the real PostgreSQL and a real Temporal dev server.
 */
import { ScheduleNotFoundError } from "@temporalio/client";
import { connectTemporal } from "../cli/temporal.ts";
import {
  dropDatabase,
  freePort,
  startTemporalDevServer,
  withDatabase,
} from "../cli/dev_services.ts";
import { assert, assertEquals } from "./assert.ts";
import { requireEnv, serviceTest } from "./support.ts";

Deno.test({
  name: "demo --exit on a Temporal server without the search attributes: every export SUCCESS",
  ...serviceTest,
  async fn() {
    const temporal = await startTemporalDevServer({ searchAttributes: false });
    const database = `ami_demo_test_${crypto.randomUUID().slice(0, 8)}`;
    const databaseUrl = withDatabase(requireEnv("TEST_DATABASE_URL"), database);
    const exportsDir = await Deno.makeTempDir({ prefix: "demo-test-" });
    try {
      const run = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "cli/demo.ts", "--exit", "--occurrences", "120"],
        env: {
          TEMPORAL_ADDRESS: temporal.address,
          DATABASE_URL: databaseUrl,
          PORT: String(freePort()),
          STORAGE_BACKEND: "fs",
          EXPORTS_DIR: exportsDir,
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(run.stdout);
      const stderr = new TextDecoder().decode(run.stderr);
      const context = `${stdout}\n--- stderr ---\n${stderr.slice(-4000)}`;
      assertEquals(run.code, 0, context);
      const lines = stdout.split("\n").filter((l) => /^\s+#\d+ \S+: /.test(l));
      assert(lines.length >= 10, `one line per exported format:\n${context}`);
      for (const line of lines) assert(/: SUCCESS/.test(line), `${line}\n${context}`);
      assert(!stdout.includes("HTTP 503"), context);

      const client = await connectTemporal({
        temporalAddress: temporal.address,
        temporalNamespace: "default",
      });
      try {
        const described = await client.client.schedule.getHandle("export-housekeeping")
          .describe()
          .catch((error) => {
            if (error instanceof ScheduleNotFoundError) return undefined;
            throw error;
          });
        assert(described, "the demo created the housekeeping Schedule");
        // the export search attributes are registered in the namespace
        const listed = await client.client.connection.operatorService.listSearchAttributes({
          namespace: "default",
        });
        const custom = Object.keys(listed.customAttributes ?? {});
        assert(custom.includes("ExportStatus"), `custom search attributes: ${custom}`);
      } finally {
        await client.close();
      }
    } finally {
      await temporal.stop();
      await dropDatabase(databaseUrl, database).catch(() => {});
      await Deno.remove(exportsDir, { recursive: true }).catch(() => {});
    }
  },
});
