import { assertEquals } from "../tests/assert.ts";
import { issueMessage } from "./errors.ts";
import { CreateExportSchema, ListExportsQuerySchema } from "./schemas.ts";

function messages(schema: { safeParse(v: unknown): unknown }, value: unknown): string[] {
  const result = schema.safeParse(value) as {
    error?: { issues: Parameters<typeof issueMessage>[0][] };
  };
  return (result.error?.issues ?? []).map((issue) =>
    `${issue.path.join(".")} ${issueMessage(issue)}`
  );
}

Deno.test("issueMessage says what to send, not which type zod expected", () => {
  assertEquals(messages(ListExportsQuerySchema, { limit: "-1" }), [
    "limit must be an integer from 1 to 100",
  ]);
  assertEquals(messages(ListExportsQuerySchema, { offset: "1.5" }), [
    `offset must be an integer from 0 to ${Number.MAX_SAFE_INTEGER}`,
  ]);
  assertEquals(messages(ListExportsQuerySchema, { status: "DONE" }), [
    "status must be one of: PENDING, STARTED, SUCCESS, FAILURE, REVOKED, EXPIRED",
  ]);
  assertEquals(messages(CreateExportSchema, { project: 1, format: "x", force: "yes" }), [
    "force must be true or false",
  ]);
  assertEquals(messages(CreateExportSchema, { project: 1 }), ["format is required"]);
  assertEquals(messages(CreateExportSchema, { format: "x" }), ["project is required"]);
  assertEquals(messages(CreateExportSchema, { project: "x", format: "x" }), [
    `project must be an integer from 1 to ${Number.MAX_SAFE_INTEGER}`,
  ]);
  assertEquals(
    messages(CreateExportSchema, { project: 1, format: "x", options: { jpeg_quality: 0 } }),
    ["options.jpeg_quality must be at least 1"],
  );
  assertEquals(
    messages(CreateExportSchema, {
      project: 1,
      format: "x",
      options: { split_seed: "s".repeat(201) },
    }),
    ["options.split_seed must have at most 200 characters"],
  );
});
