/**
 * Service configuration from environment variables, validated once at start-up so that a bad
 * value stops the process with a message naming the variable instead of failing mid-export.
 */
import { resolve } from "node:path";
import { z } from "zod";
import { exportsDirProblem, storagePrefixProblem, utf8ByteLength } from "../storage/key_bounds.ts";

/** True for a TCP port a URL can name: 1–65535 (RFC 6335 §6). */
function inPortRange(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

/** Everything the API, the worker and the CLI read from the environment. */
export interface Config {
  databaseUrl: string;
  /**
   * Where exports count and stream their records (`EXPORT_DATABASE_URL`, default
   * `DATABASE_URL`): one server, a hot standby of the primary or the primary itself. Every write
   * stays on `databaseUrl` (docs/replica.md).
   */
  exportDatabaseUrl: string;
  /**
   * How long an export waits for the replica to replay its request position before it fails
   * (`EXPORT_REPLICA_MAX_LAG_SECONDS`, default 300).
   */
  exportReplicaMaxLagSeconds: number;
  temporalAddress: string;
  temporalNamespace: string;
  temporalTaskQueue: string;
  /** What a worker process polls (`WORKER_ROLE`, see {@link WorkerRole}). */
  workerRole: WorkerRole;
  port: number;
  publicBaseUrl: string;
  storageBackend: "fs" | "s3";
  exportsDir: string;
  /**
   * Prepended to every object key (`""` or segments ending in `/`, e.g. `prod/`), so that
   * deployments sharing a bucket or directory keep apart; each key also carries the export's
   * UUID, so even equal prefixes never collide.
   */
  storagePrefix: string;
  s3: S3Settings;
  exportBatchSize: number;
  /**
   * Exports of more records than this are split into shards of about equal record counts,
   * exported in parallel and composed into one file (`EXPORT_SHARD_RECORDS`); 0: never.
   */
  exportShardRecords: number;
  /** Target bytes per batch: large records (JSON documents) get smaller batches. */
  exportBatchBytes: number;
  /** Minimum S3 part size in bytes (S3 requires ≥ 5 MiB for all parts but the last). */
  uploadPartSize: number;
  /**
   * Bytes of decoded source-image pixels a worker process holds at once
   * (`IMAGE_DECODE_BUDGET_MB`, default 80 MiB; `registry/image_crops.ts` `setDecodeBudget`).
   */
  imageDecodeBudgetBytes: number;
  heartbeatTimeoutSeconds: number;
  /**
   * How long a workflow task waits on the sticky queue of the worker that cached the workflow
   * before any worker may take it (`WORKER_STICKY_TIMEOUT_SECONDS`, default 10, the SDK's):
   * after a worker dies (kill -9, a lost machine) each of its workflows waits this long once.
   */
  stickyTimeoutSeconds: number;
  /**
   * Attempts of each export activity before the export ends FAILURE (backoff 1 s doubling to
   * 30 s between them): 10 gives a dependency that stays down about 3 minutes.
   */
  exportMaxAttempts: number;
  /**
   * Running exports allowed at once per user (`EXPORT_MAX_RUNNING_PER_USER`, default 4) and per
   * project (`EXPORT_MAX_RUNNING_PER_PROJECT`, default 8); 0: unlimited. Further exports wait,
   * PENDING, for a slot (domain/admission.ts, docs/fair-scheduling.md).
   */
  exportMaxRunning: { perUser: number; perProject: number };
  /**
   * The shortest `interval` a schedule may have, in seconds (`SCHEDULE_MIN_INTERVAL_SECONDS`,
   * default 60: a cron schedule's granularity); a shorter one is a 400. Each run of a schedule
   * is a new export, never a reused one.
   */
  scheduleMinIntervalSeconds: number;
  downloadUrlExpirySeconds: number;
  /**
   * When set, exports are served from public objects at `<base><file key>` instead of short-lived
   * signed URLs (for deployments whose bucket or CDN is public on purpose).
   */
  publicFilesBaseUrl?: string;
  /**
   * Secret used to sign filesystem download URLs and the download links of emails
   * (`SIGNING_SECRET`, docs/email.md).
   */
  signingSecret: string;
  /**
   * Minutes between runs of the `export-housekeeping` Schedule that `all` and `workflows`
   * workers create at start (`HOUSEKEEPING_INTERVAL_MINUTES`, default 60, at most a week);
   * 0: none is created.
   */
  housekeepingIntervalMinutes: number;
  /** What the occurrence formats print: local time zone, crop URL base, `details` link base. */
  formats: FormatSettings;
  /** Webhook URLs and deliveries (docs/webhooks.md). */
  webhooks: WebhookSettings;
  /** How long exports' files are kept (docs/retention.md, GBIF's download `eraseAfter`). */
  retention: RetentionSettings;
  /** The email a user gets when an export ends (docs/email.md); off when `smtpUrl` is unset. */
  email: EmailSettings;
}

/** Email settings (`SMTP_URL`, `EMAIL_*`, docs/email.md and docs/configuration.md). */
export interface EmailSettings {
  /** `smtp://user:pass@host:port` or `smtps://…` (`SMTP_URL`); undefined: no email is sent. */
  smtpUrl?: string;
  /** The From header (`EMAIL_FROM`, default `ami-exports <noreply@localhost>`). */
  from: string;
  /** Lifetime of a link to an export kept forever (`EMAIL_LINK_MAX_DAYS`, default 30). */
  linkMaxDays: number;
  /** One SMTP conversation's timeout (`SMTP_TIMEOUT_SECONDS`, default 30). */
  timeoutSeconds: number;
  /** First retry delay, doubled per attempt (`EMAIL_RETRY_INITIAL_SECONDS`, default 10). */
  retryInitialSeconds: number;
  /** Longest delay between attempts (`EMAIL_RETRY_MAX_INTERVAL_SECONDS`, default 3600). */
  retryMaxIntervalSeconds: number;
  /** How long an email is tried in all (`EMAIL_RETRY_TOTAL_SECONDS`, default 86400). */
  retryTotalSeconds: number;
}

/** Webhook settings (`WEBHOOK_*`, docs/webhooks.md and docs/configuration.md). */
export interface WebhookSettings {
  /** Accept loopback, private, link-local … destinations (`WEBHOOK_ALLOW_PRIVATE`, tests only). */
  allowPrivate: boolean;
  /** One POST's timeout (`WEBHOOK_TIMEOUT_SECONDS`, default 10). */
  timeoutSeconds: number;
  /** First retry delay, doubled per attempt (`WEBHOOK_RETRY_INITIAL_SECONDS`, default 5). */
  retryInitialSeconds: number;
  /** Longest delay between attempts (`WEBHOOK_RETRY_MAX_INTERVAL_SECONDS`, default 3600). */
  retryMaxIntervalSeconds: number;
  /** How long an event is tried in all (`WEBHOOK_RETRY_TOTAL_SECONDS`, default 86400). */
  retryTotalSeconds: number;
}

/**
 * Retention of export files, after GBIF's downloads (`eraseAfter`, extendable by the owner):
 * a SUCCESS export expires `seconds` after it finished (0: kept forever, `expires_at` null),
 * and an extension may ask for at most `maxDays` days.
 */
export interface RetentionSettings {
  /**
   * `EXPORT_RETENTION_SECONDS` when set (short retentions in tests and trials), else
   * `EXPORT_RETENTION_DAYS` (default 30) × 86,400; 0 keeps files forever.
   */
  seconds: number;
  /** `EXPORT_RETENTION_MAX_DAYS` (default 365): the longest extension. */
  maxDays: number;
}

/**
 * What one worker process runs (`WORKER_ROLE`):
 * - `all` (default): the workflows, the streaming `exportRecords` activities on the export task
 *   queue and the control activities on `<queue>-control`;
 * - `workflows`: the workflow tasks of the export queue and the control activities; no streaming
 *   activity slot;
 * - `streaming` (alias `activities`): only the activities of the export queue (`exportRecords`),
 *   no workflow bundle and no second V8 isolate, so its memory is the export's alone.
 *
 * A deployment runs `all` workers, or at least one `workflows` and one `streaming` worker: every
 * task then has a poller.
 */
export type WorkerRole = "all" | "workflows" | "streaming";

/** The accepted `WORKER_ROLE` values (`activities` means `streaming`). */
export const WORKER_ROLES = ["all", "workflows", "streaming", "activities"] as const;

/**
 * Settings of the original platform's formats (antenna-compat README §2): the IANA zone of local
 * times for stations without `deployments.time_zone` and of every non-station timestamp, the
 * base of crop and user-image URLs, and the base of every `details` link.
 */
export interface FormatSettings {
  /** IANA zone name (`TIME_ZONE`, default `UTC`). */
  timeZone: string;
  /** Base of crop URLs (`MEDIA_URL`, default `/media/`): an absolute URL or a path. */
  mediaUrl: string;
  /** Base of `details` links, without trailing slash (`PLATFORM_URL`). */
  platformUrl: string;
  /** Where the image formats may fetch source images from; absent: no host allowed. */
  images?: ImageSourceSettings;
}

/** Where the S3 bucket lives and how to reach it (`S3_*`; docs/configuration.md). */
export interface S3Settings {
  /** Custom endpoint (MinIO, moto); the AWS endpoint for `region` when absent. */
  endpoint?: string;
  bucket: string;
  region: string;
  forcePathStyle: boolean;
  /** Static credentials; the SDK's default provider chain is used when absent. */
  accessKeyId?: string;
  secretAccessKey?: string;
}

/** How source images are fetched (docs/configuration.md, "Image sources"). */
export interface ImageSourceSettings {
  /** `host` or `host:port` entries, lower case (`SOURCE_IMAGE_HOSTS`); empty: none allowed. */
  hosts: readonly string[];
  /** Requests at once per batch (`IMAGE_FETCH_CONCURRENCY`, default 8). */
  concurrency: number;
  /** One request's timeout, in milliseconds (`IMAGE_FETCH_TIMEOUT_SECONDS`, default 20 s). */
  timeoutMs: number;
  /** Largest image accepted, in bytes (`IMAGE_FETCH_MAX_MB`, default 50 MB). */
  maxBytes: number;
  /** Attempts for a 5xx, a 429 or a timeout (`IMAGE_FETCH_ATTEMPTS`, default 3). */
  attempts: number;
  /** First retry delay in milliseconds, doubled per attempt (default 250). */
  backoffMs: number;
  /**
   * Most image entries one export writes (default `MAX_IMAGE_ENTRIES`: 50,000): crops of
   * `crops_by_taxon`; `yolo_dataset` frames count two (image and labels). Tests lower it.
   */
  maxCrops?: number;
}

/** The format settings when nothing is configured (antenna-compat README §2). */
export const defaultFormatSettings: FormatSettings = {
  timeZone: "UTC",
  mediaUrl: "/media/",
  platformUrl: "http://localhost:8000",
};

/**
 * True when `zone` is an IANA zone name that both the JavaScript runtime (Intl) and the name
 * grammar accept: `America/New_York`, `UTC`, `Etc/GMT+5`. Offsets (`+05:00`) are refused.
 */
export function isIanaTimeZone(zone: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(zone)) return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Raised when the environment holds a missing or malformed value. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

const MIB = 1024 * 1024;

const booleanString = z.enum(["true", "false", "1", "0"]).transform((v) =>
  v === "true" || v === "1"
);

const HOUSEKEEPING_MINUTES = "must be a whole number of minutes from 0 (none) to 10080 (a week)";

const envSchema = z.object({
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL").default(
    "postgres://postgres@127.0.0.1:5432/ami_exports",
  ),
  EXPORT_DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL")
    .optional(),
  EXPORT_REPLICA_MAX_LAG_SECONDS: z.coerce.number().int().min(1).max(86_400).default(300),
  TEMPORAL_ADDRESS: z.string().regex(/^[^\s:]+:\d+$/, "must be host:port").default(
    "localhost:7233",
  ),
  TEMPORAL_NAMESPACE: z.string().min(1).default("default"),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default("data-exports"),
  WORKER_ROLE: z.enum(WORKER_ROLES, {
    error: `must be one of ${WORKER_ROLES.join(", ")} (activities is streaming)`,
  }).default("all").transform((v): WorkerRole => v === "activities" ? "streaming" : v),
  PORT: z.coerce.number().int().min(1).max(65535).default(8000),
  PUBLIC_BASE_URL: z.url().optional(),
  STORAGE_BACKEND: z.enum(["fs", "s3"]).optional(),
  EXPORTS_DIR: z.string().min(1).default(".data/exports"),
  STORAGE_PREFIX: z.string().regex(
    /^([A-Za-z0-9._-]+\/)*[A-Za-z0-9._-]+\/?$/,
    "must be path segments of letters, digits, '.', '_' or '-' separated by '/' (e.g. prod/)",
  ).refine((v) => !v.split("/").some((s) => s === "." || s === ".."), "must not hold . or ..")
    .optional(),
  S3_ENDPOINT: z.url().optional(),
  S3_BUCKET: z.string().min(3).optional(),
  S3_REGION: z.string().min(1).default("us-east-1"),
  S3_FORCE_PATH_STYLE: booleanString.default(true),
  AWS_ACCESS_KEY_ID: z.string().min(1).optional(),
  AWS_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  EXPORT_BATCH_SIZE: z.coerce.number().int().min(1).max(100_000).default(5000),
  EXPORT_SHARD_RECORDS: z.coerce.number().int().min(0).max(1_000_000_000).default(250_000),
  EXPORT_BATCH_MB: z.coerce.number().min(0.01).max(256).optional(),
  UPLOAD_PART_SIZE_MB: z.coerce.number().min(5).max(512).optional(),
  HEARTBEAT_TIMEOUT_SECONDS: z.coerce.number().int().min(2).max(600).default(20),
  WORKER_STICKY_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(600).default(10),
  EXPORT_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(10),
  EXPORT_MAX_RUNNING_PER_USER: z.coerce.number().int().min(0).max(10_000).default(4),
  EXPORT_MAX_RUNNING_PER_PROJECT: z.coerce.number().int().min(0).max(10_000).default(8),
  SCHEDULE_MIN_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(86_400).default(60),
  DOWNLOAD_URL_EXPIRY_SECONDS: z.coerce.number().int().min(10).max(7 * 24 * 3600).default(3600),
  PUBLIC_FILES_BASE_URL: z.url().optional(),
  HOUSEKEEPING_INTERVAL_MINUTES: z.coerce.number({ error: HOUSEKEEPING_MINUTES })
    .int({ error: HOUSEKEEPING_MINUTES }).min(0, { error: HOUSEKEEPING_MINUTES })
    .max(7 * 24 * 60, { error: HOUSEKEEPING_MINUTES }).default(60),
  SIGNING_SECRET: z.string().min(16).default("ami-exports-development-signing-secret"),
  TIME_ZONE: z.string().refine(isIanaTimeZone, "must be an IANA time zone name, e.g. Europe/Paris")
    .default(defaultFormatSettings.timeZone),
  MEDIA_URL: z.string().refine(
    (v) => /^\/[^\s]*$/.test(v) || /^https?:\/\/[^\s/]+[^\s]*$/.test(v),
    "must be an absolute path (/media/) or an http(s) URL",
  ).default(defaultFormatSettings.mediaUrl),
  PLATFORM_URL: z.url({ protocol: /^https?$/ }).default(defaultFormatSettings.platformUrl),
  WEBHOOK_ALLOW_PRIVATE: booleanString.default(false),
  SOURCE_IMAGE_HOSTS: z.string().default("").transform((v) =>
    v.split(",").map((h) => h.trim().toLowerCase()).filter((h) => h.length > 0)
  ).refine(
    (hosts) =>
      hosts.every((h) => {
        const entry = /^([a-z0-9.-]+|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?$/.exec(h);
        // a port is 1–65535 (RFC 6335 §6); 0 and 99999 name nothing a URL can reach
        return entry !== null && (entry[2] === undefined || inPortRange(Number(entry[2])));
      }),
    "must be comma-separated host or host:port entries (ports 1–65535)",
  ),
  IMAGE_FETCH_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(8),
  IMAGE_FETCH_TIMEOUT_SECONDS: z.coerce.number().min(1).max(600).default(20),
  IMAGE_FETCH_MAX_MB: z.coerce.number().min(0.1).max(1024).default(50),
  IMAGE_FETCH_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(3),
  IMAGE_DECODE_BUDGET_MB: z.coerce.number().min(1).max(4096).default(80),
  WEBHOOK_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(60).default(10),
  WEBHOOK_RETRY_INITIAL_SECONDS: z.coerce.number().int().min(1).max(3600).default(5),
  WEBHOOK_RETRY_MAX_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(86400).default(3600),
  WEBHOOK_RETRY_TOTAL_SECONDS: z.coerce.number().int().min(10).max(7 * 86400).default(86400),
  EXPORT_RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(30),
  EXPORT_RETENTION_SECONDS: z.coerce.number().int().min(0).max(36_500 * 86_400).optional(),
  EXPORT_RETENTION_MAX_DAYS: z.coerce.number().int().min(1).max(36_500).default(365),
  SMTP_URL: z.url({ protocol: /^smtps?$/, error: "must be an smtp:// or smtps:// URL" })
    .refine((v) => new URL(v).hostname !== "", "must name a host: smtp://user:pass@host:port")
    .optional(),
  EMAIL_FROM: z.string().regex(
    /^([^<>\r\n]*<[^\s<>@]+@[^\s<>@]+>|[^\s<>@]+@[^\s<>@]+)$/,
    "must be an address, or a name and <address>: ami-exports <noreply@example.org>",
  ).default("ami-exports <noreply@localhost>"),
  EMAIL_LINK_MAX_DAYS: z.coerce.number().int().min(1).max(36_500).default(30),
  SMTP_TIMEOUT_SECONDS: z.coerce.number().int().min(1).max(600).default(30),
  EMAIL_RETRY_INITIAL_SECONDS: z.coerce.number().int().min(1).max(3600).default(10),
  EMAIL_RETRY_MAX_INTERVAL_SECONDS: z.coerce.number().int().min(1).max(86400).default(3600),
  EMAIL_RETRY_TOTAL_SECONDS: z.coerce.number().int().min(10).max(7 * 86400).default(86400),
});

/**
 * The byte bounds of generated keys (storage/key_bounds.ts) that the storage settings must leave
 * room for: `STORAGE_PREFIX` plus the longest key an export generates (300 bytes) within S3's
 * 1,024-byte keys, each prefix segment within NAME_MAX (255 bytes) and, on the filesystem
 * backend, the absolute `EXPORTS_DIR` plus `/`, prefix and key within PATH_MAX (4,095 bytes).
 * One `VARIABLE: problem` line each; none when everything fits.
 */
function storageBoundsProblems(
  backend: "fs" | "s3",
  exportsDir: string,
  storagePrefix: string,
): string[] {
  const problems: string[] = [];
  let exportsDirBytes: number | undefined;
  if (backend === "fs") {
    const dir = resolve(exportsDir);
    const problem = exportsDirProblem(dir);
    if (problem) problems.push(`EXPORTS_DIR: ${problem}`);
    else exportsDirBytes = utf8ByteLength(dir);
  }
  const prefixProblem = storagePrefixProblem(storagePrefix, { exportsDirBytes });
  if (prefixProblem) problems.push(`STORAGE_PREFIX: ${prefixProblem}`);
  return problems;
}

/** Reads and validates the configuration; throws {@link ConfigError} listing every problem. */
export function loadConfig(env: Record<string, string | undefined> = Deno.env.toObject()): Config {
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ""),
  );
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`),
    );
  }
  const e = parsed.data;
  // a worker that streams (streaming, and the default all) trades some speed for memory:
  // smaller batch strings and part buffers bound its peak (docs/architecture.md, "Worker roles
  // and memory"); a workflows worker streams nothing, its defaults only matter to tools
  const streaming = e.WORKER_ROLE !== "workflows";
  const batchMb = e.EXPORT_BATCH_MB ?? (streaming ? 1 : 4);
  const partMb = e.UPLOAD_PART_SIZE_MB ?? (streaming ? 5 : 8);
  const storageBackend = e.STORAGE_BACKEND ?? (e.S3_BUCKET ? "s3" : "fs");
  if (storageBackend === "s3" && !e.S3_BUCKET) {
    throw new ConfigError(["S3_BUCKET: required when STORAGE_BACKEND=s3"]);
  }
  const storagePrefix = e.STORAGE_PREFIX ? e.STORAGE_PREFIX.replace(/\/?$/, "/") : "";
  const bounds = storageBoundsProblems(storageBackend, e.EXPORTS_DIR, storagePrefix);
  if (bounds.length > 0) throw new ConfigError(bounds);
  return {
    databaseUrl: e.DATABASE_URL,
    exportDatabaseUrl: e.EXPORT_DATABASE_URL ?? e.DATABASE_URL,
    exportReplicaMaxLagSeconds: e.EXPORT_REPLICA_MAX_LAG_SECONDS,
    temporalAddress: e.TEMPORAL_ADDRESS,
    temporalNamespace: e.TEMPORAL_NAMESPACE,
    temporalTaskQueue: e.TEMPORAL_TASK_QUEUE,
    workerRole: e.WORKER_ROLE,
    port: e.PORT,
    publicBaseUrl: (e.PUBLIC_BASE_URL ?? `http://localhost:${e.PORT}`).replace(/\/$/, ""),
    storageBackend,
    exportsDir: e.EXPORTS_DIR,
    storagePrefix,
    s3: {
      endpoint: e.S3_ENDPOINT,
      bucket: e.S3_BUCKET ?? "",
      region: e.S3_REGION,
      forcePathStyle: e.S3_FORCE_PATH_STYLE,
      accessKeyId: e.AWS_ACCESS_KEY_ID,
      secretAccessKey: e.AWS_SECRET_ACCESS_KEY,
    },
    exportBatchSize: e.EXPORT_BATCH_SIZE,
    exportShardRecords: e.EXPORT_SHARD_RECORDS,
    exportBatchBytes: Math.round(batchMb * MIB),
    uploadPartSize: Math.round(partMb * MIB),
    imageDecodeBudgetBytes: Math.round(e.IMAGE_DECODE_BUDGET_MB * MIB),
    heartbeatTimeoutSeconds: e.HEARTBEAT_TIMEOUT_SECONDS,
    stickyTimeoutSeconds: e.WORKER_STICKY_TIMEOUT_SECONDS,
    exportMaxAttempts: e.EXPORT_MAX_ATTEMPTS,
    exportMaxRunning: {
      perUser: e.EXPORT_MAX_RUNNING_PER_USER,
      perProject: e.EXPORT_MAX_RUNNING_PER_PROJECT,
    },
    scheduleMinIntervalSeconds: e.SCHEDULE_MIN_INTERVAL_SECONDS,
    downloadUrlExpirySeconds: e.DOWNLOAD_URL_EXPIRY_SECONDS,
    publicFilesBaseUrl: e.PUBLIC_FILES_BASE_URL,
    signingSecret: e.SIGNING_SECRET,
    housekeepingIntervalMinutes: e.HOUSEKEEPING_INTERVAL_MINUTES,
    formats: {
      timeZone: e.TIME_ZONE,
      mediaUrl: e.MEDIA_URL,
      platformUrl: e.PLATFORM_URL.replace(/\/+$/, ""),
      images: {
        hosts: e.SOURCE_IMAGE_HOSTS,
        concurrency: e.IMAGE_FETCH_CONCURRENCY,
        timeoutMs: e.IMAGE_FETCH_TIMEOUT_SECONDS * 1000,
        maxBytes: Math.round(e.IMAGE_FETCH_MAX_MB * MIB),
        attempts: e.IMAGE_FETCH_ATTEMPTS,
        backoffMs: 250,
      },
    },
    webhooks: {
      allowPrivate: e.WEBHOOK_ALLOW_PRIVATE,
      timeoutSeconds: e.WEBHOOK_TIMEOUT_SECONDS,
      retryInitialSeconds: e.WEBHOOK_RETRY_INITIAL_SECONDS,
      retryMaxIntervalSeconds: e.WEBHOOK_RETRY_MAX_INTERVAL_SECONDS,
      retryTotalSeconds: e.WEBHOOK_RETRY_TOTAL_SECONDS,
    },
    retention: {
      seconds: e.EXPORT_RETENTION_SECONDS ?? e.EXPORT_RETENTION_DAYS * 86_400,
      maxDays: e.EXPORT_RETENTION_MAX_DAYS,
    },
    email: {
      smtpUrl: e.SMTP_URL,
      from: e.EMAIL_FROM,
      linkMaxDays: e.EMAIL_LINK_MAX_DAYS,
      timeoutSeconds: e.SMTP_TIMEOUT_SECONDS,
      retryInitialSeconds: e.EMAIL_RETRY_INITIAL_SECONDS,
      retryMaxIntervalSeconds: e.EMAIL_RETRY_MAX_INTERVAL_SECONDS,
      retryTotalSeconds: e.EMAIL_RETRY_TOTAL_SECONDS,
    },
  };
}
