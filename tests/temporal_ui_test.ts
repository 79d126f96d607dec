/**
 * Issue 14: operators find exports in the Temporal UI / CLI by search attributes (ExportId,
 * ProjectId, ExportFormat, ExportStatus kept current, RequestedBy), read a summary line, and
 * `deno task cli temporal-setup` registers the attributes idempotently. Filtering goes through
 * the real `temporal workflow list --query`, as an operator would type it.
 */
import { findOrInstallTool } from "../cli/dev_services.ts";
import { seedDemo } from "../db/seed_demo.ts";
import { assert, assertEquals } from "./assert.ts";
import { type Harness, startHarness, workflowIdsOf } from "./harness.ts";
import { serviceTest } from "./support.ts";

/** `temporal <args> --address … -o json`, parsed. */
async function temporalJson(h: Harness, args: string[]): Promise<unknown> {
  const out = await new Deno.Command(await findOrInstallTool("temporal"), {
    args: [...args, "--address", h.config.temporalAddress, "-o", "json"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    throw new Error(`temporal ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return text ? JSON.parse(text.startsWith("[") ? text : `[${text.split("\n").join(",")}]`) : [];
}

/** The workflow ids `temporal workflow list --query` returns, once visibility has them. */
async function listIds(h: Harness, query: string, expected: number): Promise<string[]> {
  let ids: string[] = [];
  for (let tries = 0; tries < 50; tries++) {
    const rows = await temporalJson(h, ["workflow", "list", "--query", query]) as {
      execution: { workflowId: string };
    }[];
    ids = rows.map((r) => r.execution.workflowId).sort();
    if (ids.length === expected) return ids;
    await new Promise((r) => setTimeout(r, 200));
  }
  return ids;
}

Deno.test({
  name: "search attributes filter exports in temporal workflow list; temporal-setup is idempotent",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "s3" });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 100, seed: 31 });
      const [{ email }] = await h.sql<{ email: string }[]>`
        select u.email from api_tokens t join users u on u.id = t.user_id
        where t.token_hash = encode(sha256(${seed.token}::bytea), 'hex')`;
      const create = async (format: string) => {
        const res = await h.api("POST", "/api/v2/exports/", {
          token: seed.token,
          body: { project: seed.project_id, format, force: true },
        });
        assertEquals(res.status, 201);
        return (await res.json()).id as number;
      };
      const csv = await create("occurrences_simple_csv");
      const ndjson = await create("occurrences_ndjson");
      for (const id of [csv, ndjson]) {
        assertEquals((await h.waitForExport(id, seed.token)).status, "SUCCESS");
      }
      // a PENDING export (no worker) that is then cancelled: ExportStatus follows it
      await h.stopWorker();
      const cancelled = await create("detections_csv");
      const ids = {
        csv: (await workflowIdsOf(h.sql, csv)).export,
        ndjson: (await workflowIdsOf(h.sql, ndjson)).export,
        cancelled: (await workflowIdsOf(h.sql, cancelled)).export,
      };
      const project = `ProjectId = ${seed.project_id}`;
      assertEquals(
        await listIds(h, `${project} AND ExportStatus = "PENDING"`, 1),
        [ids.cancelled],
      );
      await h.startWorker();
      assert(
        (await h.api("POST", `/api/v2/exports/${cancelled}/cancel/`, { token: seed.token })).ok,
      );
      assertEquals((await h.waitForExport(cancelled, seed.token)).status, "REVOKED");

      assertEquals(
        await listIds(
          h,
          `${project} AND ExportFormat = "occurrences_ndjson" AND ExportStatus = "SUCCESS"`,
          1,
        ),
        [ids.ndjson],
      );
      assertEquals(await listIds(h, `${project} AND ExportStatus = "REVOKED"`, 1), [ids.cancelled]);
      assertEquals(await listIds(h, `ExportId = ${csv} AND ${project}`, 1), [ids.csv]);
      assertEquals(
        await listIds(h, `${project} AND RequestedBy = "${email}"`, 3),
        Object.values(ids).sort(),
      );
      assertEquals(await listIds(h, `${project} AND ExportStatus = "FAILURE"`, 0), []);

      // the summary line the UI shows
      const described = await h.temporal.client.workflow.getHandle(ids.ndjson).describe();
      const summary = await described.staticSummary?.();
      assert(
        summary?.includes(`occurrences_ndjson · project ${seed.project_id}`),
        `summary: ${summary}`,
      );

      // registration: the dev server has them; temporal-setup adds them where they are missing
      const namespace = `ui-test-${crypto.randomUUID().slice(0, 8)}`;
      await temporalJson(h, ["operator", "namespace", "create", "--namespace", namespace]);
      const setup = async () => {
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "cli/main.ts", "temporal-setup"],
          env: {
            DATABASE_URL: h.env.DATABASE_URL,
            TEMPORAL_ADDRESS: h.config.temporalAddress,
            TEMPORAL_NAMESPACE: namespace,
          },
          stdout: "piped",
          stderr: "piped",
        }).output();
        const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
        assertEquals(out.code, 0, text);
        return text;
      };
      let first = "";
      for (let tries = 0; tries < 30; tries++) {
        try {
          first = await setup(); // a new namespace takes a moment to be served
          break;
        } catch (error) {
          if (tries === 29) throw error;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      assert(
        first.includes("added [ExportId, ProjectId, ExportFormat, ExportStatus, RequestedBy]"),
        first,
      );
      const second = await setup();
      assert(second.includes("added [], already present [ExportId"), second);
    } finally {
      await h.close();
    }
  },
});
