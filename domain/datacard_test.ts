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

Deno.test("renderDataCard: declared descriptions are Markdown, not escaped; archives list members", () => {
  const card = renderDataCard({
    ...input,
    contents: [
      { name: "images/<capture id>.jpg", description: "each capture of `annotations.json`" },
      { name: "skipped.csv", description: "what was left out, see `reason`", unit: "rows" },
    ],
  });
  assert(card.includes("- `images/<capture id>.jpg`: each capture of `annotations.json`."), card);
  assert(card.includes("- `skipped.csv` (rows): what was left out, see `reason`."), card);
  assertEquals(card.includes("\\`"), false, card);
  // an archive chooses no columns: it says what it holds
  assertEquals(card.includes("Columns: every column"), false, card);
  assert(
    card.includes("- Holds the member files `images/<capture id>.jpg`, `skipped.csv` (below)."),
    card,
  );
  const table = renderDataCard({
    ...input,
    contentsKind: "columns",
    format: { ...input.format, extension: "csv" },
  });
  assert(table.includes("- Columns: every column."), table);
});

Deno.test("renderDataCard: settings written under other values are named, with both values", () => {
  const card = renderDataCard({
    ...input,
    settingsMatch: false,
    settingsKey: "k",
    settingsDifferences: [
      { name: "TIME_ZONE", then: "UTC", now: "Europe/Paris" },
      { name: "revision", then: 1, now: 2 },
      { name: "SOURCE_IMAGE_HOSTS", then: ["a.org"], now: undefined },
    ],
  });
  assert(card.includes("- `TIME_ZONE`: `UTC` when written, `Europe/Paris` now."), card);
  assert(card.includes("- `revision`: `1` when written, `2` now."), card);
  assert(card.includes("- `SOURCE_IMAGE_HOSTS`: changed since the file was written"), card);
  // the deployment's allowlist is named, never listed
  assert(!card.includes("a.org"), card);
  assertEquals(card.includes("are not recorded"), false, card);
  // not recorded (an export older than the settings' recording): only the key is known
  const unknown = renderDataCard({ ...input, settingsMatch: false, settingsKey: "k" });
  assert(unknown.includes("the values it was written under are not recorded"), unknown);
});
