/**
 * Processes stay up (docs/architecture.md, "Running Temporal's TS SDK under Deno"): the soak of
 * `tests/soak.ts` for `SOAK_MINUTES` (default 2) minutes: GOAWAY every 20 s, a Temporal restart, a
 * 30 s S3 outage (connections cut, stored objects kept), exports and cancels in a loop; no process
 * may die, every export ends right and every finished file downloads exactly.
 */
import { assert, assertEquals } from "./assert.ts";
import { runSoak } from "./soak.ts";
import { requireEnv, serviceTest } from "./support.ts";

Deno.test({
  name: "soak: API and worker processes survive GOAWAYs, a Temporal restart and an S3 outage",
  ...serviceTest,
  async fn() {
    const minutes = Number(Deno.env.get("SOAK_MINUTES") ?? "2");
    const report = await runSoak({ minutes, databaseUrl: requireEnv("TEST_DATABASE_URL") });
    console.error(`[soak] ${JSON.stringify(report)}`);
    assertEquals(report.deaths, [], "a process died");
    assertEquals(report.problems, []);
    // a loaded 2-core machine manages ~12 in the 2 minutes, a quiet one ~37
    assert(report.succeeded >= 5, `only ${report.succeeded} exports succeeded`);
    assert(report.succeededAfterFaults >= 1, "no export succeeded after the S3 outage");
    assert(report.revoked >= 1, "no export was cancelled");
    assert(report.duringS3Outage >= 1, "no export was in flight during the S3 outage");
  },
});
