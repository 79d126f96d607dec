/**
 * No process opens a `node:http2` session: under Deno 2.9 a server GOAWAY on one crashes the
 * process inside nghttp2 (docs/architecture.md, "Running Temporal's TS SDK under Deno"). The test
 * counts `http2.connect` calls while the API, a worker, an export, a cancel-free delete and
 * housekeeping run in this process; a grpc-js `Connection` is the positive control that the count
 * works.
 */
import http2 from "node:http2";
import { Connection } from "@temporalio/client";
import { seedDemo } from "../db/seed_demo.ts";
import { assert, assertEquals } from "./assert.ts";
import { startHarness } from "./harness.ts";
import { requireEnv, serviceTest } from "./support.ts";

let sessions = 0;
const connect = http2.connect;
(http2 as { connect: typeof http2.connect }).connect = ((...args: Parameters<typeof connect>) => {
  sessions++;
  return connect(...args);
}) as typeof http2.connect;

Deno.test({
  name: "API, worker, export, delete and healthz open no node:http2 session",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "s3" });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 100, seed: 9 });
      const res = await h.api("POST", "/api/v2/exports/", {
        token: seed.token,
        body: { project: seed.project_id, format: "occurrences_simple_csv", force: true },
      });
      const { id } = await res.json();
      assertEquals((await h.waitForExport(id, seed.token)).status, "SUCCESS");
      assertEquals((await h.api("GET", "/healthz")).status, 200);
      const del = await h.api("DELETE", `/api/v2/exports/${id}/`, { token: seed.token });
      assertEquals(del.status, 204);
      assertEquals(sessions, 0, "a node:http2 session was opened");
    } finally {
      await h.close();
    }
    // positive control: the gRPC-js transport does go through the patched http2.connect
    const grpc = await Connection.connect({ address: requireEnv("TEMPORAL_ADDRESS") });
    await grpc.close();
    assert(sessions > 0, "the http2.connect counter saw no gRPC-js session");
  },
});
