import { assert, assertEquals } from "../tests/assert.ts";
import { type DataCardInput, renderDataCard } from "./datacard.ts";

const input: DataCardInput = {
  exportId: 7,
  projectId: 1,
  projectName: "Evil\n# Injected heading [click](javascript:alert(1)) <script>x</script> \u202eabc",
  ownerName: "*Ada*",
  format: {
    key: "dwca",
    label: "Darwin Core Archive",
    description: "a zip",
    extension: "zip",
    revision: 1,
  },
  filtersDisplay: {},
  columns: null,
  excelCompatible: false,
  requestedBy: "_someone_",
  createdAt: new Date("2026-12-05T00:00:00Z"),
  finishedAt: null,
  recordCount: 3,
  file: null,
  settings: { timeZone: "UTC", mediaUrl: "/media/", platformUrl: "" },
  settingsMatch: null,
  settingsKey: null,
  sourceVersion: undefined,
  globalSourceVersion: undefined,
  citation: null,
  contents: [{ name: "event.txt", description: "the core" }],
  contentsKind: "members",
};

Deno.test("renderDataCard: user text is one inert line (no heading, link, tag or bidi control)", () => {
  const card = renderDataCard(input);
  const line = card.split("\n").find((l) => l.startsWith('Project "'))!;
  assert(line !== undefined, card);
  assertEquals(card.split("\n").filter((l) => l.startsWith("# Injected")), []);
  assertEquals(/\u202e/.test(card), false);
  assert(line.includes("\\[click\\]\\(javascript:alert\\(1\\)\\)"), line);
  assert(line.includes("\\<script\\>x\\</script\\>"), line);
  assert(line.includes("\\*Ada\\*"), line);
  assert(!/<script>/.test(card), card);
});

Deno.test("renderDataCard: settings are said to have shaped the file only when its key matches", () => {
  const heading = (card: string) => card.split("\n").find((l) => l.startsWith("## Settings"));
  const matching = renderDataCard({ ...input, settingsMatch: true, settingsKey: "k" });
  assertEquals(heading(matching), "## Settings that shaped the file");
  assert(matching.includes("- Settings key: `k` (the settings above)."), matching);
  const other = renderDataCard({ ...input, settingsMatch: false, settingsKey: "k" });
  assertEquals(heading(other), "## Settings: this deployment's, not the file's");
  assert(other.includes("written under other settings than these"), other);
  assertEquals(other.includes("shaped the file"), false);
});

Deno.test("renderDataCard: the request's format options and the records left out are stated", () => {
  const card = renderDataCard({
    ...input,
    formatOptions: { per_taxon_limit: 3, jpeg_quality: 50, split: { train: 1, val: 0, test: 0 } },
    skippedCount: 6,
  });
  assert(
    card.includes(
      '- Options: `jpeg_quality`: 50, `per_taxon_limit`: 3, `split`: {"train":1,"val":0,"test":0}.',
    ),
    card,
  );
  assert(card.includes("- Left out: 6 (their image could not be fetched or read"), card);
  // an archive's own copy states neither; nothing left out is not a line
  const plain = renderDataCard({ ...input, skippedCount: 0 });
  assertEquals(plain.includes("- Options:"), false, plain);
  assertEquals(plain.includes("Left out"), false, plain);
  assertEquals(renderDataCard(input), renderDataCard({ ...input, formatOptions: {} }));
});
