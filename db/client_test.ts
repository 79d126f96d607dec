import { assertEquals } from "../tests/assert.ts";
import { requireEnv, serviceTest } from "../tests/support.ts";
import { connectDatabase, withoutParallelWorkers } from "./client.ts";
import { readConsistently } from "./snapshot.ts";

Deno.test({
  name: "withoutParallelWorkers: none for the rest of its transaction, the server's default after",
  ...serviceTest,
  async fn() {
    const sql = connectDatabase(requireEnv("TEST_DATABASE_URL"), { max: 1 });
    try {
      const setting = async (tx: typeof sql) =>
        (await tx<{ workers: string }[]>`
          select current_setting('max_parallel_workers_per_gather') as workers`)[0].workers;
      const before = await setting(sql);
      const inside = await readConsistently(sql, async (tx) => {
        await withoutParallelWorkers(tx);
        return await setting(tx);
      });
      assertEquals(inside, "0");
      // the same (only) connection of the pool, after the transaction
      assertEquals(await setting(sql), before);
      assertEquals(before === "0", false, "the server's default already has no workers");
    } finally {
      await sql.end();
    }
  },
});
