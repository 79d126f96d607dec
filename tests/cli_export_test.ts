/**
 * The operator CLI's `export` command as a subprocess against the test services, with the
 * harness's worker running the workflow: progress, file URL, exit codes.
 */
import { parse } from "csv-parse/sync";
import { seedDemo } from "../db/seed_demo.ts";
import { assert, assertEquals } from "./assert.ts";
import { createUser } from "./fixtures/access.ts";
import { expectedOccurrenceIds, type Harness, startHarness } from "./harness.ts";
import { requireEnv, serviceTest } from "./support.ts";

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(h: Harness, args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli/main.ts", "export", ...args],
    env: {
      DATABASE_URL: requireEnv("TEST_DATABASE_URL"),
      TEMPORAL_ADDRESS: h.config.temporalAddress,
      TEMPORAL_TASK_QUEUE: h.config.temporalTaskQueue,
      STORAGE_BACKEND: "s3",
      S3_ENDPOINT: h.config.s3.endpoint!,
      S3_BUCKET: h.config.s3.bucket,
      AWS_ACCESS_KEY_ID: "testing",
      AWS_SECRET_ACCESS_KEY: "testing",
      PUBLIC_BASE_URL: h.config.publicBaseUrl,
      TEMPORAL_LOG_LEVEL: "WARN",
      LOG_LEVEL: "silent",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b).trim();
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test({
  name: "operator CLI export: --wait shows progress, prints the file URL, exit codes",
  ...serviceTest,
  async fn(t) {
    const h = await startHarness({ storage: "s3", batchSize: 100 });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 400, seed: 11 });
      const expected = await expectedOccurrenceIds(h.sql, seed.project_id);

      await t.step("token from the environment, --wait: success and a working URL", async () => {
        const run = await cli(
          h,
          ["--project", String(seed.project_id), "--format", "occurrences_simple_csv", "--wait"],
          { AMI_EXPORTS_TOKEN: seed.token },
        );
        assertEquals(run.code, 0, run.stderr);
        assert(run.stderr.includes("records/s") && run.stderr.includes("ETA"), run.stderr);
        assert(run.stderr.includes(`${expected.length}/${expected.length} records`), run.stderr);
        const url = run.stdout.split("\n").pop()!;
        assert(url.startsWith("http"), url);
        const rows: string[][] = parse(new TextDecoder().decode(await h.download(url)));
        assertEquals(rows.slice(1).map((r) => Number(r[0])), expected);
        const [row] = await h.sql`select user_id, format, status from data_exports
          where id = (select max(id) from data_exports where project_id = ${seed.project_id})`;
        assertEquals(row.user_id, seed.user_id);
        assertEquals(row.status, "SUCCESS");
      });

      await t.step("--user with --filters, without --wait: prints the export id", async () => {
        const run = await cli(h, [
          "--project",
          String(seed.project_id),
          "--format",
          "occurrences_api_json",
          "--filters",
          JSON.stringify({ collection_id: seed.collection_id }),
          "--user",
          String(seed.user_id),
        ]);
        assertEquals(run.code, 0, run.stderr);
        const id = Number(run.stdout.split("\n").pop());
        const done = await h.waitForExport(id, seed.token);
        assertEquals(done.status, "SUCCESS");
        assertEquals((done.filters as { collection_id: number }).collection_id, seed.collection_id);
      });

      await t.step("an export that fails: exit 1 with its error", async () => {
        await h.stopWorker();
        const [{ id: collection }] = await h.sql<{ id: number }[]>`
          insert into source_image_collections (project_id, name)
          values (${seed.project_id}, 'soon gone') returning id`;
        const running = cli(h, [
          "--project",
          String(seed.project_id),
          "--format",
          "occurrences_simple_csv",
          "--filters",
          JSON.stringify({ collection_id: collection }),
          "--token",
          seed.token,
          "--wait",
        ]);
        // the export exists but no worker has picked it up: its capture set disappears
        while (
          (await h.sql`select 1 from data_exports where filters->>'collection_id' = ${
            String(collection)
          }`).length === 0
        ) {
          await new Promise((r) => setTimeout(r, 100));
        }
        await h.sql`delete from source_image_collections where id = ${collection}`;
        await h.startWorker();
        const run = await running;
        assertEquals(run.code, 1, run.stderr);
        assert(run.stderr.includes("FAILURE") && run.stderr.includes("capture set"), run.stderr);
        assertEquals(run.stdout.includes("http"), false);
      });

      await t.step("refusals exit 2 with the API's message, nothing created", async () => {
        const [, strangerToken] = await createUser(h.sql, "stranger");
        const [[{ n: before }]] = [await h.sql`select count(*)::int as n from data_exports`];
        const cases: [string[], string][] = [
          [["--format", "xlsx", "--token", seed.token], "unknown export format"],
          [["--format", "occurrences_simple_csv", "--token", "nope"], "invalid or revoked token"],
          [["--format", "occurrences_simple_csv", "--token", strangerToken], "may not create"],
          [["--format", "occurrences_simple_csv"], "--token"],
          [
            [
              "--format",
              "occurrences_simple_csv",
              "--user",
              String(seed.user_id),
              "--filters",
              "[1",
            ],
            "--filters",
          ],
        ];
        for (const [args, message] of cases) {
          const run = await cli(h, ["--project", String(seed.project_id), ...args]);
          assertEquals(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
          assert(run.stderr.includes(message), `${args.join(" ")}: ${run.stderr}`);
        }
        const [{ n: after }] = await h.sql`select count(*)::int as n from data_exports`;
        assertEquals(after, before);
      });
    } finally {
      await h.close();
    }
  },
});
