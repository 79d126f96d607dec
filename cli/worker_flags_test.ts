import { assertEquals } from "../tests/assert.ts";
import { SPLIT_WORKER_MALLOC_ENV, STREAMING_V8_FLAGS, WORKFLOWS_V8_FLAGS } from "./worker_flags.ts";

Deno.test("deno task worker:streaming and worker:workflows pass the role and the V8 flags the bench measures", async () => {
  const { tasks } = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  ) as { tasks: Record<string, string> };
  const malloc = Object.entries(SPLIT_WORKER_MALLOC_ENV).map(([k, v]) => `${k}=${v} `).join("");
  assertEquals(
    tasks["worker:streaming"],
    `${malloc}WORKER_ROLE=streaming deno run -A --v8-flags=${STREAMING_V8_FLAGS} cli/worker.ts`,
  );
  assertEquals(
    tasks["worker:workflows"],
    `${malloc}WORKER_ROLE=workflows deno run -A --v8-flags=${WORKFLOWS_V8_FLAGS} cli/worker.ts`,
  );
});
