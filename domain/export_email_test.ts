import { assert, assertEquals } from "../tests/assert.ts";
import { composeExportEmail } from "./export_email.ts";
import { formatFileSize } from "./file_size.ts";

const base = {
  exportId: 7,
  projectName: "Moths of\r\nVermont",
  format: "occurrences_simple_csv",
  recordCount: 12345,
  fileSize: 2_345_678,
  checksum: "sha256:ab",
  error: null,
  errorStage: null,
};

Deno.test("export email: success names counts, size and the link; failure the error", () => {
  const ready = composeExportEmail({
    ...base,
    status: "SUCCESS",
    link: "http://api.test/api/v2/exports/7/download/?expires=1&signature=ab",
    linkExpiresAt: new Date("2027-01-01T00:00:00Z"),
  });
  assertEquals(ready.subject, 'Your export "Moths of Vermont – occurrences_simple_csv" is ready');
  assert(ready.text.includes("Records: 12,345"), ready.text);
  // the size as file_size_display and the data card show it (powers of 1024), and exact
  assert(ready.text.includes(`Size: ${formatFileSize(2_345_678)} (2,345,678 bytes)`), ready.text);
  assert(ready.text.includes("Size: 2.2 MB (2,345,678 bytes)"), ready.text);
  // a small file's size is said once
  const small = composeExportEmail({
    ...base,
    fileSize: 502,
    status: "SUCCESS",
    link: "http://api.test/x",
    linkExpiresAt: new Date("2027-01-01T00:00:00Z"),
  });
  assert(small.text.includes("Size: 502 bytes\n"), small.text);
  assert(
    ready.text.includes("\nhttp://api.test/api/v2/exports/7/download/?expires=1&signature=ab\n"),
  );
  const failed = composeExportEmail({
    ...base,
    status: "FAILURE",
    error: "capture set 3 was deleted",
    errorStage: "resolve",
  });
  assertEquals(failed.subject, 'Your export "Moths of Vermont – occurrences_simple_csv" failed');
  assert(failed.text.includes("Error (in resolve): capture set 3 was deleted"), failed.text);
  assert(!failed.text.includes("download/"), failed.text);
  const revoked = composeExportEmail({ ...base, status: "REVOKED" });
  assert(revoked.subject.endsWith("was cancelled"), revoked.subject);
});
