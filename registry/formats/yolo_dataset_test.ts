import { assert, assertEquals } from "../../tests/assert.ts";
import {
  imageQueryContext,
  readYolo,
  storedBoxes,
  withCropsProject,
  type YoloReport,
} from "../../tests/fixtures/crops_project.ts";
import { runPythonReader } from "../../tests/readers.ts";
import { assertResumable, drainStream, refusalOf } from "../../tests/stream_drain.ts";
import { serviceTest } from "../../tests/support.ts";
import { assertArchiveShardsCompose, composeArchiveShards, exportCard } from "./test_support.ts";
import type { ExportOptions, ExportQueryContext } from "../types.ts";
import { dataYamlText, labelLine, yoloDataset, yoloOptions } from "./yolo_dataset.ts";

Deno.test("yolo_dataset: label lines, options", () => {
  const size = { width: 240, height: 160 };
  assertEquals(labelLine(2, [10, 20, 55, 100], size), {
    ok: true,
    line: "2 0.135417 0.375000 0.187500 0.500000",
  });
  assertEquals(labelLine(0, [0, 0, 240, 160], size), {
    ok: true,
    line: "0 0.500000 0.500000 1.000000 1.000000",
  });
  assertEquals(labelLine(0, [200, 100, 300, 150], size), {
    ok: false,
    reason: "box outside the image",
  });
  assertEquals(labelLine(0, [20, 20, 10, 30], size), { ok: false, reason: "empty box" });
  assertEquals(yoloOptions({}).image_max_side, null);
  assertEquals(yoloOptions({ image_max_side: 640 }).image_max_side, 640);
  for (const bad of [8, 10_001, 640.5]) {
    const problems = yoloDataset.optionProblems!({ image_max_side: bad });
    assertEquals(Object.keys(problems), ["image_max_side"], String(bad));
  }
  assertEquals(yoloDataset.optionProblems!({ image_max_side: 16, jpeg_quality: 100 }), {});
});

Deno.test("yolo_dataset: data.yaml names read back by PyYAML whatever they hold", async () => {
  const names = [
    "Agrotis ipsilon",
    "Émeraude / verte",
    'quote " and \\ backslash',
    "colon: # hash",
    " leading space",
    "yes",
    "null",
    "~",
    "- dash",
    "tab\tnew\nline\rcr",
    "nul\u0000 bel\u0007 del\u007f c1\u0085\u009f",
    "line sep\u2028 para\u2029 bom\ufeff nonchar\ufffe\uffff",
    "emoji 🦋 and 𝔘",
    "",
  ];
  const text = dataYamlText(names.map((name, i) => ({ id: i + 100, name })));
  const read = await runPythonReader("yolo_check.py", [text], {
    modules: ["PIL", "yaml"],
    packages: ["Pillow", "PyYAML"],
  }) as { names: Record<string, string>; path: string; train: string };
  assertEquals(read.path, ""); // the folder of data.yaml for Ultralytics, not the working directory
  assertEquals(read.train, "images/train");
  assertEquals(read.names, Object.fromEntries(names.map((name, i) => [String(i), name])));
  const empty = await runPythonReader("yolo_check.py", [dataYamlText([])], {
    modules: ["PIL", "yaml"],
    packages: ["Pillow", "PyYAML"],
  }) as { names: Record<string, string> };
  assertEquals(empty.names, {});
});

/** The split of each event holds all of its frames. */
function assertUnitsWhole(report: YoloReport, unitOf: Map<string, string>): void {
  const splits = new Map<string, Set<string>>();
  for (const frame of report.frames) {
    const unit = unitOf.get(frame.capture_id)!;
    splits.set(unit, (splits.get(unit) ?? new Set()).add(frame.split));
  }
  for (const [unit, set] of splits) assertEquals(set.size, 1, `unit ${unit}: ${[...set]}`);
}

Deno.test({
  name: "yolo_dataset: labels map back to the stored boxes; skips listed with reasons; resume",
  ...serviceTest,
  async fn() {
    await withCropsProject(async (sql, seed, listener) => {
      const ctx = (options: ExportOptions, filters = {}): ExportQueryContext =>
        imageQueryContext(sql, seed, options, filters);
      // 10 good captures of 4 boxes; one each missing, not an image, off the list, box outside
      const allowed = ctx({ max_skipped_fraction: 0.3 });
      assertEquals(await yoloDataset.count(allowed), 14);
      const { bytes, records } = await assertResumable(yoloDataset, allowed, 3);
      assertEquals(records, 10);
      const boxes = await storedBoxes(sql, seed.projectId);
      const report = await readYolo(bytes, boxes);
      assertEquals(report.bad, null);
      assertEquals(report.problems, []);
      assertEquals(report.frames.length, 10);
      assertEquals(report.checked, 40);
      assert(report.worst <= 1, `worst edge ${report.worst} px`);
      assertEquals(report.yaml, {
        path: "",
        train: "images/train",
        val: "images/val",
        test: "images/test",
      });
      const taxa = await sql<{ name: string }[]>`
        select distinct t.id, t.name from occurrences o join taxa t on t.id = o.determination_id
        where o.project_id = ${seed.projectId} order by t.id`;
      assertEquals(report.class_names, Object.fromEntries(taxa.map((t, i) => [String(i), t.name])));
      assert(report.names.includes("README.md"), report.names.join());
      assert(report.frames.every((f) => f.size[0] === 240 && f.size[1] === 160));
      const events = new Map(
        (await sql<{ id: string; event_id: string }[]>`
          select id::text, event_id::text from source_images where project_id = ${seed.projectId}`)
          .map((r) => [r.id, r.event_id]),
      );
      assertUnitsWhole(report, events);
      assertEquals(
        report.skipped.map((r) => r.reason).sort(),
        ["HTTP 404", "box outside the image", "host not allowed", "not an image"],
      );
      assert(report.skipped.every((r) => r.source_url.startsWith("http")));
      assertEquals(listener.connections(), 0);

      // downscaled: the same labels, smaller images
      const small = await drainStream(
        yoloDataset,
        ctx({ max_skipped_fraction: 0.3, image_max_side: 100, split_by: "capture" }),
        { limit: 50 },
      );
      const smallReport = await readYolo(small.bytes, boxes);
      assertEquals(smallReport.problems, []);
      assertEquals(smallReport.checked, 40);
      assert(smallReport.frames.every((f) => Math.max(...f.size) === 100), "not downscaled");
      const labels = (r: YoloReport) =>
        Object.entries(r.digests).filter(([n]) => n.startsWith("labels/"))
          .map(([n, d]) => `${n.split("/")[2]} ${d}`).sort();
      assertEquals(labels(smallReport), labels(report));

      // a filter: only the boxes of one taxon, and it is the only class
      const [agrotis] = await sql<{ id: number }[]>`
        select t.id from occurrences o join taxa t on t.id = o.determination_id
        where o.project_id = ${seed.projectId} and t.name = 'Agrotis ipsilon' limit 1`;
      const taxonId = Number(agrotis.id);
      const filtered = await drainStream(
        yoloDataset,
        ctx({ max_skipped_fraction: 0.3 }, { taxon_id: taxonId }),
        { limit: 4 },
      );
      const only = await storedBoxes(sql, seed.projectId, taxonId);
      const filteredReport = await readYolo(filtered.bytes, only);
      assertEquals(filteredReport.problems, []);
      assertEquals(filteredReport.class_names, { "0": "Agrotis ipsilon" });
      const goodBoxes = Object.entries(only)
        .filter(([id]) => report.frames.some((f) => f.capture_id === id))
        .reduce((n, [, c]) => n + c.boxes.length, 0);
      assertEquals(filteredReport.checked, goodBoxes);
      assertEquals(filteredReport.skipped.map((r) => r.reason), ["host not allowed"]);

      // in shards of 4 captures (and the classes phase apart): the unsharded bytes
      const card = exportCard(3, "2026-12-07T02:00:00.000Z");
      const { units } = await assertArchiveShardsCompose(
        yoloDataset,
        { ...allowed, card },
        { batchRecords: 40, every: 4, wanted: 4 },
      );
      assertEquals(units.map((u) => u.member), [0, 1, 1, 1, 1]);
      // the skipped list is checked whole when the shards are composed: every shard of 4
      // captures stays within 0.2 of the 14, the export does not (4 of 14), as unsharded
      const strict = { ...ctx({ max_skipped_fraction: 0.2 }), card };
      const composed = await composeArchiveShards(yoloDataset, strict, {
        batchRecords: 40,
        every: 4,
        wanted: 4,
      }).then(() => "composed", (error: Error) => error.message);
      assert(composed.includes("too many frames left out: 4 of 14 captures"), composed);
      const unsharded = await refusalOf(yoloDataset, strict);
      assert(unsharded.includes(composed), `${unsharded} / ${composed}`);

      // above the threshold (default 0.05: 4 of 14): the export fails, naming the counts
      const refused = await refusalOf(yoloDataset, ctx({}));
      assert(refused.includes("too many frames left out: 4 of 14 captures"), refused);
      assert(refused.includes("1 box outside the image"), refused);

      // more frames than one archive holds (two entries each): refused before any image
      const limited = imageQueryContext(sql, seed, { max_skipped_fraction: 0.3 }, {}, 10);
      const tooMany = await refusalOf(yoloDataset, limited);
      assert(tooMany.includes("at most 5 frames per export for now: this request has 14"), tooMany);
    });
  },
});
