import { assertEquals } from "../tests/assert.ts";
import { exportCitation } from "./citation.ts";

Deno.test("exportCitation: one line with project, owner, format, count, date and URL", () => {
  const base = {
    projectName: "Moths\nof Vermont",
    ownerName: "Ada Lovelace",
    formatLabel: "Darwin Core Archive",
    formatKey: "dwca",
    recordCount: 19883,
    finishedAt: new Date("2026-12-05T23:59:59Z"),
    downloadUrl: "https://exports.example.org/api/v2/exports/7/download/",
  };
  assertEquals(
    exportCitation(base),
    'Project "Moths of Vermont" (owner Ada Lovelace). Darwin Core Archive export (dwca), ' +
      "19,883 records, exported 2026-12-05 via ami-exports: " +
      "https://exports.example.org/api/v2/exports/7/download/",
  );
  assertEquals(
    exportCitation({ ...base, ownerName: null, recordCount: 1 }),
    'Project "Moths of Vermont". Darwin Core Archive export (dwca), 1 record, exported ' +
      "2026-12-05 via ami-exports: https://exports.example.org/api/v2/exports/7/download/",
  );
});

Deno.test("exportCitation: control and bidirectional formatting characters never reach it", () => {
  const citation = exportCitation({
    projectName: "Evil\u202eabc\u0007",
    ownerName: "A\u2066da",
    formatLabel: "Simple CSV",
    formatKey: "occurrences_simple_csv",
    recordCount: 2,
    finishedAt: new Date("2026-12-05T00:00:00Z"),
    downloadUrl: "https://x/api/v2/exports/1/download/",
  });
  assertEquals(citation.startsWith('Project "Evilabc" (owner Ada).'), true, citation);
});
