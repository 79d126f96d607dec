import { assertEquals } from "../tests/assert.ts";
import { normalizeOptions } from "./option_defaults.ts";

Deno.test("normalizeOptions drops unset options and those equal to their declared default", () => {
  assertEquals(
    normalizeOptions({
      split: { test: 0.1, val: 0.1, train: 0.8 },
      split_by: "event",
      split_seed: "",
      crop_padding: 0,
      jpeg_quality: 90,
      max_skipped_fraction: 0.05,
      include_images: false,
      excel_compatible: false,
      columns: [],
      per_taxon_limit: undefined,
    }),
    {},
  );
});

Deno.test("normalizeOptions keeps other values, keys in order, nested ones too", () => {
  const normalized = normalizeOptions({
    split_seed: "b",
    split: { val: 0.2, train: 0.7, test: 0.1 },
    columns: ["occurrence_id"],
    per_taxon_limit: 4,
    excel_compatible: true,
  });
  assertEquals(normalized, {
    columns: ["occurrence_id"],
    excel_compatible: true,
    per_taxon_limit: 4,
    split: { test: 0.1, train: 0.7, val: 0.2 },
    split_seed: "b",
  });
  assertEquals(Object.keys(normalized), [
    "columns",
    "excel_compatible",
    "per_taxon_limit",
    "split",
    "split_seed",
  ]);
  assertEquals(Object.keys(normalized.split!), ["test", "train", "val"]);
  // a split with one fraction moved is not the default
  assertEquals(normalizeOptions({ split: { train: 0.8, val: 0.15, test: 0.05 } }).split?.val, 0.15);
});
