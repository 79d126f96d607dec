import sharp from "sharp";
import { assert, assertEquals, assertRejects, assertThrows } from "../tests/assert.ts";
import {
  budgetLimiter,
  cropRegion,
  cutCrop,
  DECODE_BUDGET_BYTES,
  DECODE_SLOTS,
  decodeImage,
  encodeFrame,
  limiter,
  scaledSize,
  setDecodeBudget,
  withDecodedImage,
} from "./image_crops.ts";

Deno.test("image crops: regions rounded out, padded, clamped; boxes outside refused", () => {
  const size = { width: 100, height: 50 };
  assertEquals(cropRegion([10.5, 5.2, 20.1, 15], 0, size), {
    ok: true,
    region: { left: 10, top: 5, width: 11, height: 10 },
  });
  assertEquals(cropRegion([10, 10, 20, 20], 0.5, size), {
    ok: true,
    region: { left: 5, top: 5, width: 20, height: 20 },
  });
  assertEquals(cropRegion([0, 0, 100, 50], 1, size), {
    ok: true,
    region: { left: 0, top: 0, width: 100, height: 50 },
  });
  assertEquals(cropRegion([90, 40, 110, 60], 0, size), {
    ok: false,
    reason: "box outside the image",
  });
  assertEquals(cropRegion([10, 10, 10, 20], 0, size), { ok: false, reason: "empty box" });
});

Deno.test("image crops: not an image, truncated, and a crop of the decoded pixels", async () => {
  assertEquals(await decodeImage(new TextEncoder().encode("<html>")), {
    ok: false,
    reason: "not an image",
  });
  const jpeg = new Uint8Array(
    await sharp({
      create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 30, b: 60 } },
    }).jpeg({ quality: 95 }).toBuffer(),
  );
  const truncated = await decodeImage(jpeg.slice(0, Math.floor(jpeg.length / 2)));
  assertEquals(truncated, { ok: false, reason: "truncated or corrupt image" });
  const decoded = await decodeImage(jpeg);
  assert(decoded.ok);
  assertEquals([decoded.image.width, decoded.image.height], [64, 48]);
  const crop = await cutCrop(decoded.image, { left: 4, top: 6, width: 20, height: 10 }, 90);
  const { data, info } = await sharp(crop).raw().toBuffer({ resolveWithObject: true });
  assertEquals([info.width, info.height], [20, 10]);
  assert(Math.abs(data[0] - 200) <= 4 && Math.abs(data[1] - 30) <= 4, `${data[0]} ${data[1]}`);
});

Deno.test("image frames: re-encoded whole, downscaled to the longest side, never enlarged", async () => {
  const png = new Uint8Array(
    await sharp({
      create: {
        width: 300,
        height: 120,
        channels: 4,
        background: { r: 10, g: 200, b: 60, alpha: 1 },
      },
    }).png().toBuffer(),
  );
  assertEquals(
    await encodeFrame(new TextEncoder().encode("<html>"), { quality: 90, maxSide: null }),
    {
      ok: false,
      reason: "not an image",
    },
  );
  const jpeg = new Uint8Array(await sharp(png).jpeg({ quality: 95 }).toBuffer());
  assertEquals(await encodeFrame(jpeg.slice(0, jpeg.length / 2), { quality: 90, maxSide: 100 }), {
    ok: false,
    reason: "truncated or corrupt image",
  });
  for (
    const [maxSide, size] of [[null, [300, 120]], [100, [100, 40]], [1000, [300, 120]]] as const
  ) {
    const frame = await encodeFrame(png, { quality: 80, maxSide });
    assert(frame.ok);
    // the source's size, whatever was written
    assertEquals([frame.frame.width, frame.frame.height], [300, 120]);
    const { info, data } = await sharp(frame.frame.jpeg).raw().toBuffer({
      resolveWithObject: true,
    });
    assertEquals([info.format, info.width, info.height, info.channels], ["raw", ...size, 3]);
    assert(Math.abs(data[1] - 200) <= 4, `green ${data[1]}`);
  }
});

Deno.test("image crops: downscaled to the longest side, never upscaled", async () => {
  assertEquals(scaledSize({ width: 45, height: 80 }, 32), { width: 18, height: 32 });
  assertEquals(scaledSize({ width: 300, height: 2 }, 16), { width: 16, height: 1 });
  assertEquals(scaledSize({ width: 20, height: 10 }, 32), { width: 20, height: 10 });
  assertEquals(scaledSize({ width: 20, height: 10 }), { width: 20, height: 10 });
  const decoded = await decodeImage(
    new Uint8Array(
      await sharp({
        create: { width: 64, height: 48, channels: 3, background: { r: 20, g: 130, b: 60 } },
      }).jpeg({ quality: 95 }).toBuffer(),
    ),
  );
  assert(decoded.ok);
  const region = { left: 0, top: 0, width: 60, height: 40 };
  const cases: [number, number[]][] = [[16, [16, 11]], [100, [60, 40]]];
  for (const [maxSide, size] of cases) {
    const crop = await cutCrop(decoded.image, region, 90, { maxSide });
    const { info } = await sharp(crop).raw().toBuffer({ resolveWithObject: true });
    assertEquals([info.width, info.height], size);
  }
});

Deno.test("limiter: at most `slots` works at once, the waiting ones first come first served", async () => {
  const run = limiter(2);
  let running = 0;
  let most = 0;
  const started: number[] = [];
  const gates = Array.from({ length: 5 }, () => Promise.withResolvers<void>());
  const done = gates.map((gate, i) =>
    run(async () => {
      started.push(i);
      running++;
      most = Math.max(most, running);
      await gate.promise;
      running--;
      return i;
    })
  );
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertEquals(started, [0, 1]);
  gates[1].resolve();
  await done[1];
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertEquals(started, [0, 1, 2]);
  for (const gate of gates) gate.resolve();
  assertEquals(await Promise.all(done), [0, 1, 2, 3, 4]);
  assertEquals(started, [0, 1, 2, 3, 4]);
  assertEquals(most, 2);
});

Deno.test("limiter: a work that throws frees its slot", async () => {
  const run = limiter(1);
  await assertRejects(() => run(() => Promise.reject(new Error("boom"))), Error, "boom");
  assertEquals(await run(() => Promise.resolve(7)), 7);
});

Deno.test("withDecodedImage: the pixels are released once the work ends", async () => {
  const jpeg = await sharp({
    create: { width: 40, height: 30, channels: 3, background: { r: 10, g: 200, b: 30 } },
  }).jpeg().toBuffer();
  let kept: Uint8Array | undefined;
  const size = await withDecodedImage(new Uint8Array(jpeg), (decoded) => {
    if (!decoded.ok) throw new Error(decoded.reason);
    kept = decoded.image.data;
    return Promise.resolve(decoded.image.data.byteLength);
  });
  assertEquals(size, 40 * 30 * 3);
  assertEquals(kept!.byteLength, 0);
  const bad = await withDecodedImage(new Uint8Array([1, 2, 3]), (d) => Promise.resolve(d));
  assertEquals(bad, { ok: false, reason: "not an image" });
});

Deno.test("budgetLimiter: a second work starts only while both fit the capacity, first come first served", async () => {
  const run = budgetLimiter({ slots: 2, capacity: 10 });
  const started: string[] = [];
  const gates = new Map<string, PromiseWithResolvers<void>>();
  const work = (name: string, weight: number) => {
    const gate = Promise.withResolvers<void>();
    gates.set(name, gate);
    return run(weight, async () => {
      started.push(name);
      await gate.promise;
      return name;
    });
  };
  const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
  const big = work("big", 8); // alone it fits
  const mid = work("mid", 5); // 8 + 5 > 10: waits
  const small = work("small", 1); // would fit, but waits behind "mid" (no overtaking)
  await tick();
  assertEquals(started, ["big"]);
  gates.get("big")!.resolve();
  assertEquals(await big, "big");
  await tick();
  assertEquals(started, ["big", "mid", "small"]); // 5 + 1 ≤ 10, two slots
  const huge = work("huge", 50); // heavier than the capacity: runs once it is alone
  await tick();
  assertEquals(started.length, 3);
  gates.get("mid")!.resolve();
  gates.get("small")!.resolve();
  assertEquals(await Promise.all([mid, small]), ["mid", "small"]);
  await tick();
  assertEquals(started, ["big", "mid", "small", "huge"]);
  gates.get("huge")!.resolve();
  assertEquals(await huge, "huge");
});

Deno.test("budgetLimiter: a work that throws gives its weight back", async () => {
  const run = budgetLimiter({ slots: 2, capacity: 10 });
  await assertRejects(() => run(10, () => Promise.reject(new Error("boom"))), Error, "boom");
  // were the 10 still counted, this 10 would run alone anyway: check with two that must overlap
  const both = Promise.withResolvers<void>();
  let running = 0;
  const overlap = () =>
    run(5, async () => {
      running++;
      if (running === 2) both.resolve();
      await both.promise;
      running--;
    });
  await Promise.all([overlap(), overlap()]);
});

Deno.test("withDecodedImage: two captures decode side by side within the budget, a larger one alone", async () => {
  const jpegOf = async (width: number, height: number) =>
    new Uint8Array(
      await sharp({ create: { width, height, channels: 3, background: { r: 9, g: 9, b: 9 } } })
        .jpeg().toBuffer(),
    );
  const concurrentOf = async (images: Uint8Array[]) => {
    let running = 0;
    let most = 0;
    await Promise.all(images.map((bytes) =>
      withDecodedImage(bytes, async (decoded) => {
        assert(decoded.ok);
        running++;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, 30));
        running--;
      })
    ));
    return most;
  };
  setDecodeBudget(1_000_000); // bytes: two 300 × 300 RGB captures (270,000 each) fit, not two 500 × 500
  try {
    const small = await jpegOf(300, 300);
    assertEquals(await concurrentOf([small, small, small]), DECODE_SLOTS);
    const large = await jpegOf(500, 500); // 750,000 bytes
    assertEquals(await concurrentOf([large, large]), 1);
    const huge = await jpegOf(700, 700); // above the whole budget: decoded alone, not refused
    assertEquals(await concurrentOf([huge, small]), 1);
  } finally {
    setDecodeBudget(DECODE_BUDGET_BYTES);
  }
  assertThrows(() => setDecodeBudget(0), RangeError);
});
