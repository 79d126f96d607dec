/** The real services answer: PostgreSQL (migrated), moto S3 and Temporal with a Deno worker. */
import { NativeConnection, Worker } from "@temporalio/worker";
import {
  CreateBucketCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { fileURLToPath } from "node:url";
import { assertEquals } from "./assert.ts";
import { connectTemporal } from "../cli/temporal.ts";
import { requireEnv, serviceTest, testDatabase } from "./support.ts";
import { createFixtureActivities } from "./fixtures/heartbeat_activities.ts";

Deno.test({
  name: "postgres: the migrations created the source and export tables",
  ...serviceTest,
  async fn() {
    const sql = testDatabase(1);
    try {
      const rows = await sql<{ table_name: string }[]>`
        select table_name from information_schema.tables where table_schema = 'public'`;
      const names = new Set(rows.map((r) => r.table_name));
      for (const t of ["occurrences", "detections", "classifications", "data_exports", "jobs"]) {
        assertEquals(names.has(t), true, `missing table ${t}`);
      }
    } finally {
      await sql.end();
    }
  },
});

Deno.test({
  name: "moto: an object put in a new bucket reads back",
  ...serviceTest,
  async fn() {
    const s3 = new S3Client({
      endpoint: requireEnv("TEST_S3_ENDPOINT"),
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: "testing", secretAccessKey: "testing" },
    });
    await s3.send(new CreateBucketCommand({ Bucket: "services-test" }));
    await s3.send(new PutObjectCommand({ Bucket: "services-test", Key: "a.txt", Body: "hello" }));
    const got = await s3.send(new GetObjectCommand({ Bucket: "services-test", Key: "a.txt" }));
    assertEquals(await got.Body?.transformToString(), "hello");
    s3.destroy();
  },
});

Deno.test({
  name: "temporal: a Deno worker runs a heartbeating activity started by a client",
  ...serviceTest,
  async fn() {
    const address = requireEnv("TEMPORAL_ADDRESS");
    const native = await NativeConnection.connect({ address });
    const seen: number[] = [];
    const worker = await Worker.create({
      connection: native,
      taskQueue: "services-test",
      workflowsPath: fileURLToPath(new URL("./fixtures/heartbeat_workflow.ts", import.meta.url)),
      activities: createFixtureActivities(seen),
    });
    const { client, close } = await connectTemporal({
      temporalAddress: address,
      temporalNamespace: "default",
    });
    try {
      const result = await worker.runUntil(
        client.workflow.execute("heartbeatFixtureWorkflow", {
          taskQueue: "services-test",
          workflowId: `services-test-${crypto.randomUUID()}`,
          args: [20],
        }),
      );
      assertEquals(result, 20);
      assertEquals(seen, Array.from({ length: 20 }, (_, i) => i));
    } finally {
      await close();
      await native.close();
    }
  },
});
