/** The demo's deliberately broken captures, as chosen (the images: tests/demo_images_test.ts). */
import { assert, assertEquals } from "../tests/assert.ts";
import { planDemoImages } from "./seed_demo_images.ts";

Deno.test("planDemoImages: broken captures are the ones with fewest crops, within 2%", () => {
  const captures = Array.from({ length: 100 }, (_, i) => ({ id: i + 1, crops: 1 + (i % 7) }));
  const total = captures.reduce((n, c) => n + c.crops, 0); // 396: a budget of 7 crops
  const plan = planDemoImages(captures);
  const broken = captures.filter((c) => plan.get(c.id) !== "image");
  assertEquals(broken.map((c) => [c.id, plan.get(c.id)]), [
    [1, "missing"],
    [8, "not_an_image"],
    [15, "truncated"],
    [22, "missing"],
    [29, "not_an_image"],
    [36, "truncated"],
  ]);
  assert(broken.reduce((n, c) => n + c.crops, 0) <= 0.02 * total, "broken crops within 2%");
  // too few crops for any broken capture; captures without a crop are never broken
  const small = planDemoImages([{ id: 1, crops: 0 }, { id: 2, crops: 3 }]);
  assertEquals([...small.values()], ["image", "image"]);
});
