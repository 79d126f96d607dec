import { assertEquals } from "../tests/assert.ts";
import { describeDatabaseUrl, readsFromReplica, replicaLagMessage } from "./replica.ts";

Deno.test("describeDatabaseUrl names host, port and database, never credentials", () => {
  assertEquals(
    describeDatabaseUrl("postgres://reader:secret@db2.internal:5433/ami_exports?sslmode=require"),
    "db2.internal:5433/ami_exports",
  );
  assertEquals(describeDatabaseUrl("postgresql://postgres@127.0.0.1/x"), "127.0.0.1:5432/x");
});

Deno.test("readsFromReplica: only when EXPORT_DATABASE_URL differs from DATABASE_URL", () => {
  const url = "postgres://postgres@db:5432/x";
  assertEquals(readsFromReplica({ databaseUrl: url, exportDatabaseUrl: url }), false);
  assertEquals(
    readsFromReplica({ databaseUrl: url, exportDatabaseUrl: "postgres://postgres@db2:5432/x" }),
    true,
  );
});

Deno.test("replicaLagMessage names the position, the wait and the lag in bytes and seconds", () => {
  assertEquals(
    replicaLagMessage("db2:5432/ami", "0/3000060", {
      waitedSeconds: 300.2,
      position: {
        standby: true,
        replayed: "0/3000000",
        caughtUp: false,
        bytesBehind: 96,
        replayAgeSeconds: 311.6,
        paused: true,
      },
    }),
    "the replica at db2:5432/ami has not replayed the export's request position 0/3000060 " +
      "after 300 s (96 bytes behind, replayed up to 0/3000000, last replayed commit 312 s old, " +
      "replay paused)",
  );
});
