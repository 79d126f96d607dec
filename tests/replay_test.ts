/**
 * Determinism guard: recorded workflow histories must replay against the current workflow
 * code. A change that reorders activities without `patched()` breaks running executions; it
 * fails here first. `RECORD_HISTORIES=1 deno task test tests/replay_test.ts` refreshes the
 * committed histories after a deliberate, versioned change.
 */
import { Worker } from "@temporalio/worker";
import { historyFromJSON, historyToJSON } from "@temporalio/common/lib/proto-utils.js";
import { workflowBundle } from "../cli/worker.ts";
import { seedDemo } from "../db/seed_demo.ts";
import { assert, assertEquals } from "./assert.ts";
import { startHarness, workflowIdsOf } from "./harness.ts";
import { serviceTest } from "./support.ts";

const HISTORIES = new URL("./fixtures/histories/", import.meta.url);

type History = ReturnType<typeof historyFromJSON>;

async function replay(history: History, workflowId: string): Promise<void> {
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowId);
}

Deno.test({
  name: "committed workflow histories replay against the current workflow code",
  ...serviceTest,
  async fn() {
    const files = [...Deno.readDirSync(HISTORIES)].filter((e) => e.name.endsWith(".json"));
    assert(files.length >= 2, "no committed histories to replay");
    for (const file of files) {
      const history = historyFromJSON(
        JSON.parse(Deno.readTextFileSync(new URL(file.name, HISTORIES))),
      );
      assert((history.events ?? []).length > 10, `${file.name} holds no real history`);
      await replay(history, file.name);
    }
  },
});

Deno.test({
  name: "a fresh export and delete replay deterministically (and can be recorded)",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "s3", batchSize: 100 });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 300, seed: 11 });
      const res = await h.api("POST", "/api/v2/exports/", {
        token: seed.token,
        body: { project: seed.project_id, format: "occurrences_simple_csv" },
      });
      const id = (await res.json()).id as number;
      assertEquals((await h.waitForExport(id, seed.token)).status, "SUCCESS");
      const workflowIds = await workflowIdsOf(h.sql, id);
      assertEquals(
        (await h.api("DELETE", `/api/v2/exports/${id}/`, { token: seed.token })).status,
        204,
      );
      const recorded: [string, History][] = [];
      for (
        const [name, workflowId] of [["export_workflow", workflowIds.export], [
          "delete_export_workflow",
          workflowIds.delete,
        ]]
      ) {
        const history = await h.temporal.client.workflow.getHandle(workflowId).fetchHistory();
        await replay(history, workflowId);
        recorded.push([name, history]);
      }
      if (Deno.env.get("RECORD_HISTORIES") === "1") {
        for (const [name, history] of recorded) {
          Deno.writeTextFileSync(new URL(`${name}.json`, HISTORIES), historyToJSON(history));
        }
      }
    } finally {
      await h.close();
    }
  },
});
