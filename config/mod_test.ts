import { assertEquals, assertThrows } from "../tests/assert.ts";
import { defaultImageSourceSettings } from "../registry/image_sources.ts";
import { ConfigError, loadConfig } from "./mod.ts";

Deno.test("loadConfig applies defaults and picks fs storage without S3", () => {
  const config = loadConfig({});
  assertEquals(config.temporalTaskQueue, "data-exports");
  assertEquals(config.port, 8000);
  assertEquals(config.storageBackend, "fs");
  assertEquals(config.exportBatchSize, 5000);
});

Deno.test("loadConfig picks s3 when a bucket is configured", () => {
  const config = loadConfig({ S3_BUCKET: "exports", S3_ENDPOINT: "http://127.0.0.1:9000" });
  assertEquals(config.storageBackend, "s3");
  assertEquals(config.s3.forcePathStyle, true);
});

Deno.test("loadConfig names every bad variable", () => {
  const error = assertThrows(
    () => loadConfig({ PORT: "eighty", EXPORT_BATCH_SIZE: "0", DATABASE_URL: "mysql://x" }),
    ConfigError,
  );
  const text = error.problems.join("\n");
  for (const name of ["PORT", "EXPORT_BATCH_SIZE", "DATABASE_URL"]) {
    assertEquals(text.includes(name), true, `${name} missing from: ${text}`);
  }
});

Deno.test("loadConfig rejects s3 backend without a bucket", () => {
  assertThrows(() => loadConfig({ STORAGE_BACKEND: "s3" }), ConfigError, "S3_BUCKET");
});

Deno.test("loadConfig reads the format settings (antenna-compat §2) with their defaults", () => {
  assertEquals(loadConfig({}).formats, {
    timeZone: "UTC",
    mediaUrl: "/media/",
    platformUrl: "http://localhost:8000",
    images: defaultImageSourceSettings,
  });
  const config = loadConfig({
    TIME_ZONE: "America/New_York",
    MEDIA_URL: "https://cdn.example.net/uploads",
    PLATFORM_URL: "https://antenna.example.org/",
  });
  assertEquals(config.formats, {
    timeZone: "America/New_York",
    mediaUrl: "https://cdn.example.net/uploads",
    platformUrl: "https://antenna.example.org",
    images: defaultImageSourceSettings,
  });
});

Deno.test("loadConfig rejects a time zone that is not an IANA name and malformed URLs", () => {
  for (const zone of ["Mars/Olympus", "+05:00", "UTC+5", "America/New York"]) {
    assertThrows(() => loadConfig({ TIME_ZONE: zone }), ConfigError, "TIME_ZONE");
  }
  assertThrows(() => loadConfig({ MEDIA_URL: "media" }), ConfigError, "MEDIA_URL");
  assertThrows(() => loadConfig({ MEDIA_URL: "ftp://x/media/" }), ConfigError, "MEDIA_URL");
  assertThrows(() => loadConfig({ PLATFORM_URL: "localhost:8000" }), ConfigError, "PLATFORM_URL");
});

Deno.test("loadConfig reads EXPORT_SHARD_RECORDS (default 250,000; 0: never) and rejects bad ones", () => {
  assertEquals(loadConfig({}).exportShardRecords, 250_000);
  assertEquals(loadConfig({ EXPORT_SHARD_RECORDS: "0" }).exportShardRecords, 0);
  assertEquals(loadConfig({ EXPORT_SHARD_RECORDS: "40" }).exportShardRecords, 40);
  for (const bad of ["-1", "2.5", "many", "1e12"]) {
    assertThrows(
      () => loadConfig({ EXPORT_SHARD_RECORDS: bad }),
      ConfigError,
      "EXPORT_SHARD_RECORDS",
    );
  }
});

Deno.test("loadConfig reads WORKER_STICKY_TIMEOUT_SECONDS (default 10, the SDK's) and refuses bad ones", () => {
  assertEquals(loadConfig({}).stickyTimeoutSeconds, 10);
  assertEquals(loadConfig({ WORKER_STICKY_TIMEOUT_SECONDS: "2" }).stickyTimeoutSeconds, 2);
  for (const bad of ["0", "-1", "1.5", "soon", "601"]) {
    assertThrows(
      () => loadConfig({ WORKER_STICKY_TIMEOUT_SECONDS: bad }),
      ConfigError,
      "WORKER_STICKY_TIMEOUT_SECONDS",
    );
  }
});

Deno.test("loadConfig reads HOUSEKEEPING_INTERVAL_MINUTES (default 60; 0: none) and refuses bad ones", () => {
  assertEquals(loadConfig({}).housekeepingIntervalMinutes, 60);
  assertEquals(loadConfig({ HOUSEKEEPING_INTERVAL_MINUTES: "0" }).housekeepingIntervalMinutes, 0);
  assertEquals(loadConfig({ HOUSEKEEPING_INTERVAL_MINUTES: "15" }).housekeepingIntervalMinutes, 15);
  // a typo used to give NaN, and a worker then ran without its housekeeping, saying only
  // "could not create the housekeeping schedule"
  for (const bad of ["abc", "-5", "1.5", "100000"]) {
    assertThrows(
      () => loadConfig({ HOUSEKEEPING_INTERVAL_MINUTES: bad }),
      ConfigError,
      "HOUSEKEEPING_INTERVAL_MINUTES: must be a whole number of minutes",
    );
  }
});

Deno.test("loadConfig reads WORKER_ROLE: all by default, activities as streaming, else refused", () => {
  assertEquals(loadConfig({}).workerRole, "all");
  assertEquals(loadConfig({ WORKER_ROLE: "workflows" }).workerRole, "workflows");
  assertEquals(loadConfig({ WORKER_ROLE: "streaming" }).workerRole, "streaming");
  assertEquals(loadConfig({ WORKER_ROLE: "activities" }).workerRole, "streaming");
  for (const role of ["bogus", "ALL", "workflow", " streaming"]) {
    const error = assertThrows(() => loadConfig({ WORKER_ROLE: role }), ConfigError);
    assertEquals(
      error.problems,
      ["WORKER_ROLE: must be one of all, workflows, streaming, activities (activities is streaming)"],
    );
  }
});

Deno.test("a worker that streams defaults to 1 MB batches and 5 MiB parts; set values win", () => {
  const MIB = 1024 * 1024;
  assertEquals(loadConfig({}).exportBatchBytes, MIB); // WORKER_ROLE=all streams too
  assertEquals(loadConfig({}).uploadPartSize, 5 * MIB);
  assertEquals(loadConfig({ WORKER_ROLE: "workflows" }).exportBatchBytes, 4 * MIB);
  assertEquals(loadConfig({ WORKER_ROLE: "workflows" }).uploadPartSize, 8 * MIB);
  const streaming = loadConfig({ WORKER_ROLE: "streaming" });
  assertEquals([streaming.exportBatchBytes, streaming.uploadPartSize], [MIB, 5 * MIB]);
  const set = loadConfig({
    WORKER_ROLE: "activities",
    EXPORT_BATCH_MB: "2",
    UPLOAD_PART_SIZE_MB: "6",
  });
  assertEquals([set.exportBatchBytes, set.uploadPartSize], [2 * MIB, 6 * MIB]);
});

Deno.test("loadConfig bounds STORAGE_PREFIX so that every generated key fits S3's 1,024 bytes", () => {
  const s3 = { S3_BUCKET: "exports" };
  // 724 bytes + the longest generated key (exports/<uuid>/ + a 255-byte name) = 1,024
  const longest = `${"p".repeat(200)}/${"q".repeat(200)}/${"r".repeat(200)}/${"s".repeat(120)}/`;
  assertEquals(longest.length, 724);
  assertEquals(loadConfig({ ...s3, STORAGE_PREFIX: longest }).storagePrefix, longest);
  // without the trailing slash it is normalized to the same 724 bytes
  assertEquals(loadConfig({ ...s3, STORAGE_PREFIX: longest.slice(0, -1) }).storagePrefix, longest);
  const error = assertThrows(
    () => loadConfig({ ...s3, STORAGE_PREFIX: `x${longest}` }),
    ConfigError,
  );
  assertEquals(error.problems.length, 1);
  assertEquals(
    error.problems[0],
    "STORAGE_PREFIX: 725 bytes is too long: at most 724 bytes, so that a generated key " +
      "(up to 300 more) stays within the 1024 bytes of an S3 key",
  );
  assertThrows(
    () => loadConfig({ ...s3, STORAGE_PREFIX: `${"n".repeat(256)}/` }),
    ConfigError,
    "STORAGE_PREFIX: a 256-byte segment is too long: at most 255 bytes (POSIX NAME_MAX)",
  );
});

Deno.test("loadConfig bounds EXPORTS_DIR and the prefix under it by PATH_MAX (fs backend)", () => {
  // 3,794 bytes of directory + / + 300 bytes of key = 4,095 (PATH_MAX without its NUL)
  const dir = `/${"d".repeat(199)}`.repeat(19).slice(0, 3794);
  assertEquals(dir.length, 3794);
  assertEquals(loadConfig({ EXPORTS_DIR: dir }).exportsDir, dir);
  assertThrows(() => loadConfig({ EXPORTS_DIR: `${dir}d` }), ConfigError, "EXPORTS_DIR:");
  assertThrows(
    () => loadConfig({ EXPORTS_DIR: dir, STORAGE_PREFIX: "prod/" }),
    ConfigError,
    "STORAGE_PREFIX: 5 bytes is too long under EXPORTS_DIR (3794 bytes): at most 0 bytes",
  );
  assertThrows(
    () => loadConfig({ EXPORTS_DIR: `/srv/${"e".repeat(256)}` }),
    ConfigError,
    "EXPORTS_DIR: a 256-byte segment",
  );
  // the S3 backend does not care where EXPORTS_DIR would be
  assertEquals(loadConfig({ S3_BUCKET: "bucket", EXPORTS_DIR: `${dir}d` }).storageBackend, "s3");
});

Deno.test("loadConfig reads the retention: 30 days, seconds when given, 0 forever, max 365", () => {
  assertEquals(loadConfig({}).retention, { seconds: 30 * 86_400, maxDays: 365 });
  assertEquals(loadConfig({ EXPORT_RETENTION_DAYS: "0" }).retention.seconds, 0);
  assertEquals(
    loadConfig({ EXPORT_RETENTION_DAYS: "7", EXPORT_RETENTION_SECONDS: "2" }).retention.seconds,
    2,
  );
  assertEquals(loadConfig({ EXPORT_RETENTION_MAX_DAYS: "90" }).retention.maxDays, 90);
  for (const name of ["EXPORT_RETENTION_DAYS", "EXPORT_RETENTION_SECONDS"]) {
    assertThrows(() => loadConfig({ [name]: "-1" }), ConfigError, name);
    assertThrows(() => loadConfig({ [name]: "1.5" }), ConfigError, name);
  }
  assertThrows(() => loadConfig({ EXPORT_RETENTION_MAX_DAYS: "0" }), ConfigError);
});

Deno.test("EXPORT_DATABASE_URL defaults to DATABASE_URL; the replica's lag bound to 300 s", () => {
  const plain = loadConfig({ DATABASE_URL: "postgres://postgres@db:5432/x" });
  assertEquals(plain.exportDatabaseUrl, "postgres://postgres@db:5432/x");
  assertEquals(plain.exportReplicaMaxLagSeconds, 300);
  const replica = loadConfig({
    DATABASE_URL: "postgres://postgres@db:5432/x",
    EXPORT_DATABASE_URL: "postgresql://reader@replica:5433/x",
    EXPORT_REPLICA_MAX_LAG_SECONDS: "20",
  });
  assertEquals(replica.databaseUrl, "postgres://postgres@db:5432/x");
  assertEquals(replica.exportDatabaseUrl, "postgresql://reader@replica:5433/x");
  assertEquals(replica.exportReplicaMaxLagSeconds, 20);
  assertThrows(
    () => loadConfig({ EXPORT_DATABASE_URL: "mysql://x", EXPORT_REPLICA_MAX_LAG_SECONDS: "0" }),
    ConfigError,
    "EXPORT_DATABASE_URL: must be a postgres:// URL",
  );
});

Deno.test("loadConfig reads SMTP_URL (off when empty) and EMAIL_*, and refuses bad ones", () => {
  const off = loadConfig({ SMTP_URL: "" });
  assertEquals(off.email.smtpUrl, undefined);
  assertEquals(off.email.from, "ami-exports <noreply@localhost>");
  assertEquals(off.email.linkMaxDays, 30);
  const on = loadConfig({
    SMTP_URL: "smtps://user:pa%40ss@smtp.example.org:465",
    EMAIL_FROM: "Moth exports <exports@example.org>",
    EMAIL_LINK_MAX_DAYS: "7",
  });
  assertEquals(on.email.smtpUrl, "smtps://user:pa%40ss@smtp.example.org:465");
  assertEquals(on.email.from, "Moth exports <exports@example.org>");
  assertEquals(on.email.linkMaxDays, 7);
  for (const SMTP_URL of ["http://smtp.example.org", "smtp://", "smtp.example.org:25"]) {
    assertThrows(() => loadConfig({ SMTP_URL }), ConfigError, "SMTP_URL");
  }
  for (const EMAIL_FROM of ["noreply", "a <b>", "x@y.z\r\nBcc: evil@example.org"]) {
    assertThrows(() => loadConfig({ EMAIL_FROM }), ConfigError, "EMAIL_FROM");
  }
  assertThrows(() => loadConfig({ EMAIL_LINK_MAX_DAYS: "0" }), ConfigError, "EMAIL_LINK_MAX_DAYS");
});

Deno.test("loadConfig reads the running caps per user and per project (0: unlimited)", () => {
  assertEquals(loadConfig({}).exportMaxRunning, { perUser: 4, perProject: 8 });
  assertEquals(
    loadConfig({ EXPORT_MAX_RUNNING_PER_USER: "0", EXPORT_MAX_RUNNING_PER_PROJECT: "2" })
      .exportMaxRunning,
    { perUser: 0, perProject: 2 },
  );
  const error = assertThrows(
    () => loadConfig({ EXPORT_MAX_RUNNING_PER_USER: "-1", EXPORT_MAX_RUNNING_PER_PROJECT: "x" }),
    ConfigError,
  );
  for (const name of ["EXPORT_MAX_RUNNING_PER_USER", "EXPORT_MAX_RUNNING_PER_PROJECT"]) {
    assertEquals(error.problems.join("\n").includes(name), true);
  }
});

Deno.test("loadConfig reads SOURCE_IMAGE_HOSTS and refuses a port outside 1–65535", () => {
  assertEquals(
    loadConfig({ SOURCE_IMAGE_HOSTS: " Images.Example.org, 127.0.0.1:9000,[::1]:65535" })
      .formats.images?.hosts,
    ["images.example.org", "127.0.0.1:9000", "[::1]:65535"],
  );
  for (const hosts of ["example.org:99999", "example.org:0", "example.org:", "a b"]) {
    assertThrows(() => loadConfig({ SOURCE_IMAGE_HOSTS: hosts }), Error, "SOURCE_IMAGE_HOSTS");
  }
});
