import { assertEquals, assertThrows } from "../tests/assert.ts";
import { BOXES_PER_CAPTURE, captureBoxes, captureCount, parseImageSize } from "./image_sources.ts";
import { cropRegion } from "../registry/image_crops.ts";

Deno.test("parseImageSize: WIDTHxHEIGHT, sides 64–16384", () => {
  assertEquals(parseImageSize("1600x1200"), { width: 1600, height: 1200 });
  assertEquals(parseImageSize("4000x3000"), { width: 4000, height: 3000 });
  for (const bad of ["1600", "1600x", "x1200", "10x10", "20000x100", "1600×1200"]) {
    assertThrows(() => parseImageSize(bad), Error, "--image-size");
  }
});

Deno.test("captureBoxes: deterministic, one whole-pixel box per grid cell, inside the image", () => {
  for (const size of [{ width: 1600, height: 1200 }, { width: 4000, height: 3000 }]) {
    for (let i = 0; i < 50; i++) {
      const boxes = captureBoxes(i, size);
      assertEquals(boxes, captureBoxes(i, size));
      assertEquals(boxes.length, BOXES_PER_CAPTURE);
      for (const [cell, box] of boxes.entries()) {
        assertEquals(box.every(Number.isInteger), true);
        assertEquals(cropRegion(box, 0.1, size).ok, true);
        const column = Math.floor(box[0] / (size.width / 4));
        const row = Math.floor(box[1] / (size.height / 2));
        assertEquals(row * 4 + column, cell);
      }
    }
  }
  assertEquals(captureCount(10_000), 1250);
  assertEquals(captureCount(10_001), 1251);
});
