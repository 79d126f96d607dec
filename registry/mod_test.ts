import { cropOptionKeys } from "./formats/crops_by_taxon.ts";
import { yoloOptionKeys } from "./formats/yolo_dataset.ts";
import { cocoOptionKeys } from "./formats/detections_coco.ts";
import { assert, assertEquals, assertThrows } from "../tests/assert.ts";
import { occurrenceFilterKeys } from "./filters.ts";
import { occurrencesApiJson } from "./formats/occurrences_api_json.ts";
import { occurrencesSimpleCsv } from "./formats/occurrences_simple_csv.ts";
import {
  describeFormats,
  exporterFor,
  exporters,
  getExporter,
  indexExporters,
  supportedFormats,
} from "./mod.ts";

Deno.test("registry: lists the two original formats, sorted", () => {
  const keys = supportedFormats();
  assert(keys.includes("occurrences_api_json"), keys.join());
  assert(keys.includes("occurrences_simple_csv"), keys.join());
  assertEquals(keys, [...keys].sort());
});

Deno.test("registry: every exporter is filed under its own key", () => {
  for (const [key, exporter] of Object.entries(exporters)) assertEquals(exporter.key, key);
  assertEquals(getExporter("occurrences_api_json"), occurrencesApiJson);
  assertEquals(getExporter("occurrences_simple_csv"), occurrencesSimpleCsv);
});

Deno.test("registry: an unknown key has no exporter", () => {
  for (const key of ["", "csv", "OCCURRENCES_SIMPLE_CSV", "constructor", "__proto__", "toString"]) {
    assertEquals(getExporter(key), undefined, key);
  }
});

Deno.test("registry: describeFormats gives the formats endpoint's fields", () => {
  const formats = describeFormats();
  assertEquals(formats.map((f) => f.key), supportedFormats());
  assertEquals(formats.find((f) => f.key === "occurrences_simple_csv"), {
    key: "occurrences_simple_csv",
    label: occurrencesSimpleCsv.label,
    description: occurrencesSimpleCsv.description,
    extension: "csv",
    content_type: "text/csv",
    accepted_filters: [...occurrenceFilterKeys],
    accepted_options: ["excel_compatible"],
  });
  assertEquals(formats.find((f) => f.key === "occurrences_api_json"), {
    key: "occurrences_api_json",
    label: occurrencesApiJson.label,
    description: occurrencesApiJson.description,
    extension: "json",
    content_type: "application/json",
    accepted_filters: [...occurrenceFilterKeys],
    accepted_options: [],
  });
  for (const f of formats) assert(f.label !== "" && f.description !== "", f.key);
  // issue 12 kind 7: every CSV format, and only those, offers the byte order mark; the image
  // formats have options of their own
  const imageOptions: Record<string, readonly string[]> = {
    crops_by_taxon: cropOptionKeys,
    yolo_dataset: yoloOptionKeys,
    detections_coco: cocoOptionKeys,
  };
  for (const f of formats) {
    const own = [...(imageOptions[f.key] ?? [])];
    const csv = f.extension === "csv";
    const columns = csv && f.key !== "occurrences_simple_csv";
    assertEquals(
      f.accepted_options,
      csv ? ["excel_compatible", ...(columns ? ["columns"] : [])] : own,
      f.key,
    );
    // the keyset-CSV formats, and only those, choose columns, and list theirs
    assertEquals(f.columns !== undefined, columns, f.key);
  }
});

Deno.test("registry: two formats under one key are refused", () => {
  assertThrows(
    () =>
      indexExporters([occurrencesSimpleCsv, {
        ...occurrencesApiJson,
        key: "occurrences_simple_csv",
      }]),
    Error,
    "registered twice: occurrences_simple_csv",
  );
  assertEquals(Object.keys(indexExporters([occurrencesSimpleCsv])), ["occurrences_simple_csv"]);
});

Deno.test("registry: an option choosing another container flows to the exporter", () => {
  const coco = getExporter("detections_coco")!;
  for (const options of [{}, { include_images: false }]) {
    const plain = exporterFor(coco, options);
    assertEquals([plain.extension, plain.contentType, plain.fetchesImages], [
      "json",
      "application/json",
      undefined,
    ]);
  }
  const zipped = exporterFor(coco, { include_images: true });
  assertEquals(
    [zipped.key, zipped.extension, zipped.contentType, zipped.fetchesImages],
    ["detections_coco", "zip", "application/zip", true],
  );
  assertEquals(zipped.acceptedOptions, cocoOptionKeys);
  // the variant's own options lead back to the variants
  assertEquals(exporterFor(zipped, {}).extension, "json");
  const crops = getExporter("crops_by_taxon")!;
  assertEquals(exporterFor(crops, { image_max_side: 64 }), crops);
});
