import { assertEquals } from "../tests/assert.ts";
import {
  ALL_V8_FLAGS,
  STREAMING_V8_FLAGS,
  WORKER_MALLOC_ENV,
  WORKFLOWS_V8_FLAGS,
} from "./worker_flags.ts";

Deno.test("deno task worker, worker:streaming and worker:workflows pass the role and the V8 flags the bench measures", async () => {
  const { tasks } = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  ) as { tasks: Record<string, string> };
  const malloc = Object.entries(WORKER_MALLOC_ENV).map(([k, v]) => `${k}=${v} `).join("");
  assertEquals(tasks.worker, `${malloc}deno run -A --v8-flags=${ALL_V8_FLAGS} cli/worker.ts`);
  assertEquals(
    tasks["worker:streaming"],
    `${malloc}WORKER_ROLE=streaming deno run -A --v8-flags=${STREAMING_V8_FLAGS} cli/worker.ts`,
  );
  assertEquals(
    tasks["worker:workflows"],
    `${malloc}WORKER_ROLE=workflows deno run -A --v8-flags=${WORKFLOWS_V8_FLAGS} cli/worker.ts`,
  );
});
