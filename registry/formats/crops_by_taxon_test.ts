import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import sharp from "sharp";
import { defaultFormatSettings } from "../../config/mod.ts";
import type { Sql } from "../../db/client.ts";
import { assert, assertEquals } from "../../tests/assert.ts";
import { runPythonReader } from "../../tests/readers.ts";
import { assertResumable, drainStream } from "../../tests/stream_drain.ts";
import { requireEnv, serviceTest, testDatabase } from "../../tests/support.ts";
import { defaultImageSourceSettings } from "../image_sources.ts";
import type { ExportOptions, ExportQueryContext } from "../types.ts";
import {
  cropOptionProblems,
  cropsByTaxon,
  safeName,
  splitOf,
  taxonFolder,
} from "./crops_by_taxon.ts";

interface CropsReport {
  bad: string | null;
  names: string[];
  manifest: Record<string, string>[];
  taxa: Record<string, string>[];
  skipped: Record<string, string>[];
  checked: number;
  worst: number;
  problems: string[];
}

function readCrops(bytes: Uint8Array): Promise<CropsReport> {
  return runPythonReader("crops_check.py", [bytes], {
    modules: ["PIL"],
    packages: ["Pillow"],
    suffix: ".zip",
  }) as Promise<CropsReport>;
}

const WIDTH = 240;
const HEIGHT = 160;

/** Four boxes per capture, side by side; the last one with fractional edges. */
function boxes(): number[][] {
  return [0, 1, 2, 3].map((i) =>
    i === 3
      ? [10.5 + i * 55, 20.25, 55 + i * 55, 100.75]
      : [10 + i * 55, 20 + i * 5, 55 + i * 55, 100]
  );
}

/** A grey JPEG with a coloured rectangle (a different colour per box) at each box. */
async function sourceJpeg(seed: number): Promise<Uint8Array> {
  const overlays = await Promise.all(
    boxes().map(async (b, i) => {
      const left = Math.floor(b[0]);
      const top = Math.floor(b[1]);
      const width = Math.ceil(b[2]) - left;
      const height = Math.ceil(b[3]) - top;
      const input = await sharp({
        create: {
          width,
          height,
          channels: 3,
          background: {
            r: (seed * 40 + i * 60) % 256,
            g: (i * 90 + 30) % 256,
            b: (seed * 70) % 256,
          },
        },
      }).png().toBuffer();
      return { input, left, top };
    }),
  );
  const jpeg = await sharp({
    create: { width: WIDTH, height: HEIGHT, channels: 3, background: { r: 128, g: 128, b: 128 } },
  }).composite(overlays).jpeg({ quality: 95 }).toBuffer();
  return new Uint8Array(jpeg);
}

interface Seeded {
  projectId: number;
  host: string;
  /** Port of a listener that must never be connected to. */
  forbiddenPort: number;
  detections: number;
  events: number[];
}

/**
 * A project of 10 good captures (4 boxed detections each) in 3 events of 2 stations, plus one
 * capture each that is missing (404), not an image, on a host off the list, and one box outside
 * its image: 44 boxed detections, 4 of them left out.
 */
async function seedCrops(sql: Sql, forbiddenPort: number): Promise<Seeded> {
  const endpoint = requireEnv("TEST_S3_ENDPOINT");
  const bucket = `crops-src-${crypto.randomUUID().slice(0, 8)}`;
  const s3 = new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "testing", secretAccessKey: "testing" },
  });
  await s3.send(new CreateBucketCommand({ Bucket: bucket, ACL: "public-read" }));
  const base = `${endpoint.replace(/\/+$/, "")}/${bucket}/`;
  const insert = async (table: string, row: Record<string, unknown>): Promise<number> => {
    const [{ id }] = await sql<{ id: number }[]>`insert into ${sql(table)} ${
      sql(row)
    } returning id`;
    return Number(id);
  };
  const tag = crypto.randomUUID().slice(0, 8);
  const owner = await insert("users", { email: `crops-${tag}@example.org`, name: "Crops" });
  const projectId = await insert("projects", {
    name: "Crops",
    slug: `crops-${tag}`,
    owner_id: owner,
  });
  const north = await insert("deployments", { project_id: projectId, name: "North" });
  const south = await insert("deployments", { project_id: projectId, name: "South" });
  const events = [
    await insert("events", {
      project_id: projectId,
      deployment_id: north,
      start: new Date("2024-06-01T21:00:00Z"),
      end: new Date("2024-06-02T05:00:00Z"),
    }),
    await insert("events", {
      project_id: projectId,
      deployment_id: north,
      start: new Date("2024-06-02T21:00:00Z"),
      end: new Date("2024-06-03T05:00:00Z"),
    }),
    await insert("events", {
      project_id: projectId,
      deployment_id: south,
      start: new Date("2024-06-01T21:00:00Z"),
      end: new Date("2024-06-02T05:00:00Z"),
    }),
  ];
  const lep = await insert("taxa", { name: "Lepidoptera", rank: "ORDER" });
  const lepRef = { id: lep, name: "Lepidoptera", rank: "ORDER" };
  const noct = await insert("taxa", {
    name: "Noctuidae",
    rank: "FAMILY",
    parent_id: lep,
    parents: sql.json([lepRef]),
  });
  const geo = await insert("taxa", {
    name: "Geometridae",
    rank: "FAMILY",
    parent_id: lep,
    parents: sql.json([lepRef]),
  });
  const species = [
    await insert("taxa", {
      name: "Agrotis ipsilon",
      rank: "SPECIES",
      parent_id: noct,
      parents: sql.json([lepRef, { id: noct, name: "Noctuidae", rank: "FAMILY" }]),
    }),
    await insert("taxa", {
      name: "Émeraude / verte",
      rank: "SPECIES",
      parent_id: geo,
      parents: sql.json([lepRef, { id: geo, name: "Geometridae", rank: "FAMILY" }]),
    }),
    lep,
  ];
  let detections = 0;
  const capture = async (
    i: number,
    url: { base: string; path: string },
    bbox: number[][],
  ): Promise<void> => {
    const event = events[i % 3];
    const s = await insert("source_images", {
      project_id: projectId,
      deployment_id: i % 3 === 2 ? south : north,
      event_id: event,
      path: url.path,
      public_base_url: url.base,
      timestamp: new Date(`2024-06-0${1 + (i % 3 === 1 ? 1 : 0)}T22:${10 + i}:00Z`),
      width: WIDTH,
      height: HEIGHT,
    });
    for (const [j, box] of bbox.entries()) {
      const o = await insert("occurrences", {
        project_id: projectId,
        deployment_id: i % 3 === 2 ? south : north,
        event_id: event,
        determination_id: species[(i + j) % 3],
        determination_score: 0.5 + j / 10,
      });
      await insert("detections", {
        occurrence_id: o,
        source_image_id: s,
        bbox: box,
        timestamp: new Date("2024-06-01T22:00:00Z"),
      });
      detections++;
    }
  };
  for (let i = 0; i < 10; i++) {
    const key = `captures/c${i}.jpg`;
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: await sourceJpeg(i),
        ACL: "public-read",
      }),
    );
    await capture(i, { base, path: key }, boxes());
  }
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: "captures/text.jpg",
      Body: "not a jpeg at all",
      ACL: "public-read",
    }),
  );
  await capture(10, { base, path: "captures/missing.jpg" }, [boxes()[0]]);
  await capture(11, { base, path: "captures/text.jpg" }, [boxes()[0]]);
  await capture(12, { base: `http://127.0.0.1:${forbiddenPort}/`, path: "c.jpg" }, [boxes()[0]]);
  await capture(13, { base, path: "captures/c0.jpg" }, [[200, 100, 300, 150]]);
  s3.destroy();
  return { projectId, host: new URL(endpoint).host, forbiddenPort, detections, events };
}

/** A listener counting its connections. */
function countingListener(): { port: number; connections: () => number; close: () => void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  (async () => {
    for await (const conn of listener) {
      connections++;
      conn.close();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    connections: () => connections,
    close: () => listener.close(),
  };
}

Deno.test("crops_by_taxon: names, splits and options", () => {
  assertEquals(safeName("Émeraude / verte"), "Emeraude_verte");
  assertEquals(safeName("../.."), "taxon");
  assertEquals(
    taxonFolder({ id: 7, name: "Agrotis ipsilon", family: null }),
    "no_family/Agrotis_ipsilon-7",
  );
  const options = { split: { train: 0.8, val: 0.1, test: 0.1 }, split_seed: "" };
  assertEquals(
    splitOf({ kind: "event", id: 3 }, options),
    splitOf({ kind: "event", id: 3 }, options),
  );
  const counts = { train: 0, val: 0, test: 0 };
  for (let id = 0; id < 2000; id++) counts[splitOf({ kind: "event", id }, options)]++;
  assert(counts.train > 1500 && counts.train < 1700, JSON.stringify(counts));
  assert(counts.val > 120 && counts.test > 120, JSON.stringify(counts));
  assertEquals(cropOptionProblems({}), {});
  assertEquals(
    Object.keys(cropOptionProblems({
      split: { train: 0.5, val: 0.1, test: 0.1 },
      jpeg_quality: 0,
      crop_padding: -1,
      max_skipped_fraction: 2,
      split_by: "station" as ExportOptions["split_by"],
    })).sort(),
    ["crop_padding", "jpeg_quality", "max_skipped_fraction", "split", "split_by"],
  );
});

Deno.test({
  name: "crops_by_taxon: crops equal their source boxes; skips listed with reasons; resume",
  ...serviceTest,
  async fn() {
    const sql = testDatabase();
    const listener = countingListener();
    try {
      const seed = await seedCrops(sql, listener.port);
      assertEquals(seed.detections, 44);
      const ctx = (options: ExportOptions): ExportQueryContext => ({
        sql,
        projectId: seed.projectId,
        filters: {},
        settings: {
          ...defaultFormatSettings,
          images: {
            ...defaultImageSourceSettings,
            hosts: [seed.host],
            attempts: 2,
            backoffMs: 10,
            timeoutMs: 5000,
          },
        },
        options,
      });
      const allowed = ctx({ max_skipped_fraction: 0.1 });
      assertEquals(await cropsByTaxon.count(allowed), 44);
      const { bytes, records } = await assertResumable(cropsByTaxon, allowed, 7);
      assertEquals(records, 40);
      const report = await readCrops(bytes);
      assertEquals(report.bad, null);
      assertEquals(report.problems, []);
      assertEquals(report.checked, 40);
      assert(report.worst <= 4, `mean absolute difference ${report.worst}`);
      const crops = report.names.filter((n) => n.startsWith("crops/"));
      assertEquals(crops.sort(), report.manifest.map((r) => r.file).sort());
      for (const row of report.manifest) {
        assert(
          row.file.startsWith(`crops/${row.split}/`) &&
            row.file.endsWith(`/${row.occurrence_id}_${row.detection_id}.jpg`),
          row.file,
        );
      }
      assert(report.manifest.some((r) => r.file.includes("/Geometridae/Emeraude_verte-")));
      assert(report.manifest.some((r) => r.file.includes("/no_family/Lepidoptera-")));
      // a split unit (event) is in one split only
      const splits = new Map<string, Set<string>>();
      for (const r of report.manifest) {
        splits.set(r.event_id, (splits.get(r.event_id) ?? new Set()).add(r.split));
      }
      for (const [event, set] of splits) assertEquals(set.size, 1, `event ${event}: ${[...set]}`);
      assertEquals(
        report.skipped.map((r) => r.reason).sort(),
        ["HTTP 404", "box outside the image", "host not allowed", "not an image"],
      );
      assert(report.skipped.every((r) => r.source_url.startsWith("http")));
      assertEquals(listener.connections(), 0);
      assertEquals(
        report.taxa.map((t) => Number(t.crop_count)).reduce((a, b) => a + b, 0),
        40,
      );
      // by capture: another unit, the same crops
      const byCapture = await drainStream(
        cropsByTaxon,
        ctx({ max_skipped_fraction: 0.1, split_by: "capture", split_seed: "x" }),
        { limit: 50 },
      );
      assertEquals(byCapture.records, 40);

      // above the threshold (default 0.05: 4 of 44 is 9 %): the export fails, naming the counts
      let refused = "";
      await drainStream(cropsByTaxon, ctx({}), { limit: 50 }).catch((e) => (refused = String(e)));
      assert(refused.includes("too many crops left out: 4 of 44"), refused);
      assert(refused.includes("1 host not allowed"), refused);
    } finally {
      listener.close();
      await sql.end();
    }
  },
});
