import { MockActivityEnvironment } from "@temporalio/testing";
import type { Info } from "@temporalio/activity";
import { connectDatabase } from "../db/client.ts";
import { inTransaction } from "../db/transaction.ts";
import { assert, assertEquals } from "../tests/assert.ts";
import { requireEnv, serviceTest } from "../tests/support.ts";
import { endStatementsWithAttempt } from "./keep_alive.ts";

Deno.test({
  name: "a statement ends with its activity attempt: PostgreSQL cancels it (57014), not the retry",
  ...serviceTest,
  async fn() {
    const sql = connectDatabase(requireEnv("TEST_DATABASE_URL"), { max: 2 });
    try {
      // an attempt of 1.5 s: its statements may run 0.5 s (a second is left for the rest)
      const attempt = new MockActivityEnvironment({ startToCloseTimeoutMs: 1500 } as Partial<Info>);
      const started = performance.now();
      const outcome = await attempt.run(() =>
        inTransaction(sql, async (tx) => {
          await endStatementsWithAttempt(tx);
          await tx`select pg_sleep(5)`;
          return "slept";
        }).catch((error: { code?: string }) => error.code)
      );
      const seconds = (performance.now() - started) / 1000;
      assertEquals(outcome, "57014");
      assert(seconds < 4, `cancelled after ${seconds.toFixed(1)} s`);
      // only for the rest of that transaction: the next one on the pool has no timeout
      const [after] = await sql<{ timeout: string }[]>`select current_setting('statement_timeout')
        as timeout`;
      assertEquals(after.timeout, "0");
      // outside an activity, nothing is set
      const outside = await inTransaction(sql, async (tx) => {
        await endStatementsWithAttempt(tx);
        return (await tx<{ timeout: string }[]>`select current_setting('statement_timeout')
          as timeout`)[0].timeout;
      });
      assertEquals(outside, "0");
    } finally {
      await sql.end();
    }
  },
});
