/**
 * `deno task cli seed-demo --images-base-url URL` as an operator runs it, against the real
 * database and moto: the images land in the configured storage under `<STORAGE_PREFIX>sources/`,
 * moto serves them at URL over plain HTTP, and a `crops_by_taxon` export of the printed capture
 * set ends SUCCESS with exactly the planned broken captures' crops left out. A bad URL is exit 2
 * with the reason and seeds nothing.
 */
import { PutBucketAclCommand, S3Client } from "@aws-sdk/client-s3";
import { sourcesBaseUrl } from "../cli/main.ts";
import { assert, assertEquals } from "./assert.ts";
import { startHarness } from "./harness.ts";
import { requireEnv, serviceTest } from "./support.ts";

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

async function seedDemoCli(env: Record<string, string>, args: string[]): Promise<CliRun> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli/main.ts", "seed-demo", ...args],
    env: { ...env, LOG_LEVEL: "silent" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b).trim();
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test("sourcesBaseUrl: http(s) only, no credentials, query or fragment; ends in /", () => {
  assertEquals(
    sourcesBaseUrl("http://127.0.0.1:9000/b/sources"),
    "http://127.0.0.1:9000/b/sources/",
  );
  assertEquals(sourcesBaseUrl("https://img.example.org/x/"), "https://img.example.org/x/");
  for (
    const bad of ["file:///tmp/x/", "ftp://h/x/", "sources/", "http://u:p@h/x/", "http://h/?a=1"]
  ) {
    assert(sourcesBaseUrl(bad) instanceof Error, `accepted ${bad}`);
  }
});

Deno.test({
  name: "cli seed-demo --images-base-url: images served by moto, a crops export of them succeeds",
  ...serviceTest,
  async fn(t) {
    const endpoint = requireEnv("TEST_S3_ENDPOINT").replace(/\/+$/, "");
    const host = new URL(endpoint).host;
    const h = await startHarness({
      storage: "s3",
      env: { SOURCE_IMAGE_HOSTS: host, STORAGE_PREFIX: "demo/" },
    });
    try {
      const bucket = h.config.s3.bucket;
      const baseUrl = `${endpoint}/${bucket}/demo/sources/`;

      await t.step("a URL that is not http(s): exit 2, the reason, nothing seeded", async () => {
        const [{ n: before }] = await h.sql<
          { n: number }[]
        >`select count(*)::int as n from projects`;
        const run = await seedDemoCli(h.env, [
          "--occurrences",
          "50",
          "--images-base-url",
          "file:///etc/",
        ]);
        assertEquals(run.code, 2, run.stderr);
        assert(run.stderr.includes("--images-base-url: scheme must be http or https"), run.stderr);
        const [{ n: after }] = await h.sql<
          { n: number }[]
        >`select count(*)::int as n from projects`;
        assertEquals(after, before, "projects added by a refused seed-demo");
      });

      await t.step(
        "images written, served, and exported with the broken ones skipped",
        async () => {
          const run = await seedDemoCli(h.env, [
            "--occurrences",
            "1500",
            "--seed",
            "21",
            "--images-base-url",
            baseUrl.slice(0, -1),
          ]);
          assertEquals(run.code, 0, run.stderr);
          assert(run.stderr.includes("list its host in SOURCE_IMAGE_HOSTS"), run.stderr);
          const seeded = JSON.parse(run.stdout.split("\n").pop()!);
          assertEquals(seeded.images.base_url, baseUrl, "the base URL, with its trailing slash");
          assert(seeded.images.captures > 20, `captures: ${seeded.images.captures}`);
          assert(seeded.images.broken_crops > 0, "no broken capture holds a crop");

          // moto serves the bucket's objects to anonymous GETs once the bucket is public-read
          const s3 = new S3Client({
            endpoint,
            region: "us-east-1",
            forcePathStyle: true,
            credentials: { accessKeyId: "testing", secretAccessKey: "testing" },
          });
          await s3.send(new PutBucketAclCommand({ Bucket: bucket, ACL: "public-read" }));
          s3.destroy();
          const [capture] = await h.sql<{ url: string }[]>`
          select s.public_base_url || s.path as url from source_images s
          join source_image_collection_images ci on ci.source_image_id = s.id
          where ci.collection_id = ${seeded.images.collection_id}
          order by s.id limit 1`;
          assert(capture.url.startsWith(baseUrl), capture.url);
          const got = await fetch(capture.url);
          const bytes = new Uint8Array(await got.arrayBuffer());
          assertEquals(got.status, 200, capture.url);
          assert(bytes[0] === 0xff && bytes[1] === 0xd8, "not a JPEG (no SOI marker)");

          const created = await h.api("POST", "/api/v2/exports/", {
            token: seeded.token,
            body: {
              project: seeded.project_id,
              format: "crops_by_taxon",
              filters: { collection_id: seeded.images.collection_id },
            },
          });
          assertEquals(created.status, 201, await created.clone().text());
          const done = await h.waitForExport((await created.json()).id, seeded.token, 180_000);
          assertEquals(done.status, "SUCCESS", JSON.stringify(done.error));
          assertEquals(done.record_count, seeded.images.crops - seeded.images.broken_crops);
          assertEquals(done.skipped_count, seeded.images.broken_crops);
        },
      );
    } finally {
      await h.close();
    }
  },
});
