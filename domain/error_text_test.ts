/** errorText of domain/error_text.ts: causes followed, not repeated, cycles bounded. */
import { assertEquals } from "../tests/assert.ts";
import { errorText, innermostMessage } from "./error_text.ts";

Deno.test("errorText: an error's causes, outermost first, none repeated", () => {
  const refused = new Error("Connection refused (os error 111)");
  refused.name = "ConnectionRefused";
  const wrapped = new TypeError("fetch failed", { cause: refused });
  assertEquals(
    errorText(wrapped),
    "TypeError: fetch failed: ConnectionRefused: Connection refused (os error 111)",
  );
  assertEquals(errorText(new Error("alone")), "Error: alone");
  assertEquals(errorText("a string"), "a string");
  // a cause whose text the outer message already holds adds nothing
  const inner = new Error("no mapping for ExportStatus");
  assertEquals(
    errorText(new Error("Error: no mapping for ExportStatus", { cause: inner })),
    "Error: Error: no mapping for ExportStatus",
  );
  // a cycle ends at maxDepth
  const a = new Error("a");
  const b = new Error("b", { cause: a });
  (a as { cause?: unknown }).cause = b;
  assertEquals(errorText(a, 3), "Error: a: Error: b");
});

Deno.test("innermostMessage: the deepest cause's message, or the error's own", () => {
  const inner = new TypeError("Minute is not in range [0-59]");
  assertEquals(
    innermostMessage(new Error("Failed to create schedule", { cause: inner })),
    "Minute is not in range [0-59]",
  );
  assertEquals(innermostMessage(new Error("alone")), "alone");
  assertEquals(innermostMessage("text"), "text");
});
