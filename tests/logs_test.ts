/** Structured JSON logs: the API and the worker's activities log export id, workflow id, stage. */
import { assert, assertEquals } from "./assert.ts";
import { createProject } from "./fixtures/access.ts";
import { startHarness, workflowIdsOf } from "./harness.ts";
import { serviceTest } from "./support.ts";

Deno.test({
  name: "JSON log lines from the API and the worker carry export id, workflow id and stage",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "s3" });
    const lines: string[] = [];
    const original = console.log;
    try {
      const p = await createProject(h.sql, { draft: false });
      console.log = (...args: unknown[]) => lines.push(args.map(String).join(" "));
      const res = await h.api("POST", "/api/v2/exports/", {
        token: p.tokens.owner,
        body: { project: p.projectId, format: "occurrences_simple_csv", force: true },
      });
      const { id } = await res.json();
      const done = await h.waitForExport(id, p.tokens.owner);
      assertEquals(done.status, "SUCCESS");
      // saveStats writes SUCCESS before its "activity completed" line is logged: wait for it
      const deadline = Date.now() + 10_000;
      while (
        Date.now() < deadline &&
        !lines.some((l) => l.includes('"activity completed"') && l.includes('"saveStats"'))
      ) {
        await new Promise((r) => setTimeout(r, 50));
      }
      console.log = original;
      const records = lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
        .filter((r) => r.export_id === id);
      const requested = records.find((r) => r.msg === "export requested");
      const workflowId = (await workflowIdsOf(h.sql, id)).export;
      assertEquals(requested?.workflow_id, workflowId);
      for (const stage of ["resolveExporter", "countRecords", "exportRecords", "saveStats"]) {
        const completed = records.find((r) => r.msg === "activity completed" && r.stage === stage);
        assert(completed, `no completed line for ${stage}: ${JSON.stringify(records)}`);
        assertEquals(completed.workflow_id, workflowId);
        assert(typeof completed.time === "string" && completed.level === "info");
      }
    } finally {
      console.log = original;
      await h.close();
    }
  },
});
