/**
 * `deno task cli <command>`: operator commands.
 *   migrate                                   apply database migrations
 *   seed-demo --occurrences N [--seed S] [--images-base-url URL]
 *                                             add a demo project; last line is JSON; with
 *                                             --images-base-url also its synthetic source images
 *   create-token --user ID [--name NAME]      print a new API token for a user
 *   revoke-token --token TOKEN                revoke a token
 *   export --project P --format F [--wait]    start an export (see cli/export.ts)
 *   temporal-setup                            register the export search attributes
 *   queue [--json]                            exports waiting for a slot, in admission order
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../config/mod.ts";
import { connectDatabase } from "../db/client.ts";
import { listQueue } from "../db/export_queue.ts";
import { migrate } from "../db/migrate.ts";
import { seedDemo } from "../db/seed_demo.ts";
import { seedDemoImages } from "../db/seed_demo_images.ts";
import { createStorage } from "../storage/mod.ts";
import { hashToken } from "../domain/users.ts";
import { EXPORT_USAGE, exportCommand } from "./export.ts";
import { ensureHousekeepingSchedule, runHousekeeping } from "./housekeeping.ts";
import { LOST_EXPORT_GRACE_SECONDS } from "../activities/lost_exports.ts";
import { connectTemporal } from "./temporal.ts";
import { ensureSearchAttributes } from "./temporal_setup.ts";

const USAGE = `usage: deno task cli <command> [options]
  migrate                                  apply database migrations
  seed-demo [--occurrences N] [--seed S]   add a demo project of N occurrences (default 20000;
                                           last stdout line: JSON)
            [--images-base-url URL]        also write its synthetic source images into the
                                           configured storage under <STORAGE_PREFIX>sources/ and
                                           point its captures at URL, where you serve them
  create-token --user ID [--name NAME]     print a new API token for user ID
  revoke-token --token TOKEN               revoke an API token
${EXPORT_USAGE}
  housekeeping --install [--every MIN]     create the export-housekeeping Schedule (default 60)
  housekeeping --run [--min-age SECONDS]   sweep orphaned uploads and files, expire exports
            [--lost-after SECONDS]         past their retention (EXPIRED) and fail running
                                           exports whose workflow is gone (unchanged for
                                           --lost-after, default 120) once, print report
  temporal-setup                           register the export search attributes (idempotent)
  queue [--json]                           exports waiting for a slot, in admission order,
                                           judged by the caps of this process's environment
                                           (EXPORT_MAX_RUNNING_PER_USER, _PER_PROJECT)
  <command> --help                         this text; changes nothing`;

/** The commands {@link main} runs. */
const COMMANDS = new Set([
  "migrate",
  "seed-demo",
  "create-token",
  "revoke-token",
  "housekeeping",
  "export",
  "queue",
  "temporal-setup",
]);

/**
 * The base URL the demo's source images are served from: an absolute `http:` or `https:` URL
 * without credentials, query or fragment, ending in `/` (added when missing); an `Error` saying
 * why otherwise.
 */
export function sourcesBaseUrl(text: string): string | Error {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return new Error(`not an absolute URL: ${JSON.stringify(text)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return new Error(`scheme must be http or https, got ${url.protocol.slice(0, -1)}`);
  }
  if (url.username || url.password) return new Error("must not hold credentials");
  if (url.search || url.hash) return new Error("must not hold a query or fragment");
  return url.pathname.endsWith("/") ? url.href : `${url.href}/`;
}

/** Runs one CLI command; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  // asking for help never runs a command (`migrate --help` used to migrate)
  if (command === undefined || ["help", "--help", "-h"].includes(command)) {
    console.log(USAGE);
    return 0;
  }
  if (!COMMANDS.has(command)) {
    console.error(`unknown command: ${command}\n${USAGE}`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(command === "export" ? EXPORT_USAGE : USAGE);
    return 0;
  }
  const config = loadConfig();
  const sql = connectDatabase(config.databaseUrl, { max: 4 });
  try {
    switch (command) {
      case "migrate": {
        parseArgs({ args: rest, options: {} }); // no options: an unknown one is refused
        const applied = await migrate(sql);
        console.log(applied.length ? `applied: ${applied.join(", ")}` : "database is up to date");
        return 0;
      }
      case "seed-demo": {
        const { values } = parseArgs({
          args: rest,
          options: {
            occurrences: { type: "string", default: "20000" },
            seed: { type: "string", default: "1" },
            "images-base-url": { type: "string" },
          },
        });
        const occurrences = Number(values.occurrences);
        const seed = Number(values.seed);
        if (!Number.isInteger(occurrences) || occurrences < 1) {
          console.error(`--occurrences must be a positive integer, got ${values.occurrences}`);
          return 2;
        }
        if (!Number.isInteger(seed)) {
          console.error(`--seed must be an integer, got ${values.seed}`);
          return 2;
        }
        const imagesBaseUrl = values["images-base-url"] === undefined
          ? undefined
          : sourcesBaseUrl(values["images-base-url"]);
        if (imagesBaseUrl instanceof Error) {
          console.error(`--images-base-url: ${imagesBaseUrl.message}`);
          return 2;
        }
        await migrate(sql);
        const started = performance.now();
        const result = await seedDemo(sql, { occurrences, seed });
        console.error(
          `seeded ${occurrences} occurrences in ${
            ((performance.now() - started) / 1000).toFixed(1)
          } s`,
        );
        if (imagesBaseUrl === undefined) {
          console.log(JSON.stringify(result));
          return 0;
        }
        const storage = createStorage(config);
        await storage.ensureReady();
        const images = await seedDemoImages(sql, storage, {
          projectId: result.project_id,
          baseUrl: imagesBaseUrl,
          storagePrefix: config.storagePrefix,
        });
        console.error(
          `source images: ${images.captures} captures (${
            images.captures - images.kinds.image
          } broken on purpose), ${images.written} written in ${images.seconds.toFixed(1)} s; ` +
            `serve ${config.storagePrefix}sources/ of the configured storage at ${imagesBaseUrl} ` +
            `and list its host in SOURCE_IMAGE_HOSTS`,
        );
        console.log(JSON.stringify({
          ...result,
          images: {
            collection_id: images.collectionId,
            base_url: imagesBaseUrl,
            captures: images.captures,
            crops: images.crops,
            broken_crops: images.brokenCrops,
          },
        }));
        return 0;
      }
      case "create-token": {
        const { values } = parseArgs({
          args: rest,
          options: { user: { type: "string" }, name: { type: "string" } },
        });
        if (values.user === undefined) {
          console.error("create-token needs --user ID");
          return 2;
        }
        const userId = Number(values.user);
        const [user] = await sql`select id from users where id = ${
          Number.isInteger(userId) ? userId : -1
        }`;
        if (!user) {
          console.error(`user does not exist: ${values.user}`);
          return 2;
        }
        const token = Array.from(
          crypto.getRandomValues(new Uint8Array(20)),
          (b) => b.toString(16).padStart(2, "0"),
        )
          .join("");
        await sql`insert into api_tokens (user_id, token_hash, name)
          values (${userId}, ${await hashToken(token)}, ${values.name ?? "cli"})`;
        console.log(token);
        return 0;
      }
      case "revoke-token": {
        const { values } = parseArgs({ args: rest, options: { token: { type: "string" } } });
        if (values.token === undefined) {
          console.error("revoke-token needs --token TOKEN");
          return 2;
        }
        const result = await sql`update api_tokens set revoked_at = now()
          where token_hash = ${await hashToken(values.token)} and revoked_at is null`;
        if (result.count === 0) {
          console.error("no active token matches");
          return 2;
        }
        console.log("revoked");
        return 0;
      }
      case "housekeeping": {
        const { values } = parseArgs({
          args: rest,
          options: {
            install: { type: "boolean", default: false },
            run: { type: "boolean", default: false },
            every: { type: "string", default: "60" },
            "min-age": { type: "string", default: "3600" },
            "lost-after": { type: "string", default: String(LOST_EXPORT_GRACE_SECONDS) },
          },
        });
        const every = Number(values.every);
        const minAge = Number(values["min-age"]);
        const lostAfter = Number(values["lost-after"]);
        if (!values.install && !values.run) {
          console.error("housekeeping needs --install or --run");
          return 2;
        }
        const bad = [
          ["--every", values.every, every > 0, "a number of minutes > 0"],
          ["--min-age", values["min-age"], minAge >= 0, "a number of seconds >= 0"],
          ["--lost-after", values["lost-after"], lostAfter >= 0, "a number of seconds >= 0"],
        ].find(([, , ok]) => !ok);
        if (bad) {
          console.error(`${bad[0]} must be ${bad[3]}, got ${JSON.stringify(bad[1])}`);
          return 2;
        }
        const temporal = await connectTemporal(config);
        try {
          if (values.install) {
            const outcome = await ensureHousekeepingSchedule(temporal.client, {
              taskQueue: config.temporalTaskQueue,
              everyMinutes: every,
            });
            console.log(`schedule export-housekeeping ${outcome}`);
          }
          if (values.run) {
            const report = await runHousekeeping(temporal.client, {
              taskQueue: config.temporalTaskQueue,
              minAgeSeconds: minAge,
              lostAfterSeconds: lostAfter,
            });
            console.log(JSON.stringify(report));
          }
        } finally {
          await temporal.close();
        }
        return 0;
      }
      case "export":
        return await exportCommand(rest, { config, sql });
      case "queue": {
        const { values } = parseArgs({ args: rest, options: { json: { type: "boolean" } } });
        const queue = await listQueue(sql, config.exportMaxRunning);
        if (values.json) {
          console.log(JSON.stringify(queue));
          return 0;
        }
        const { perUser, perProject } = config.exportMaxRunning;
        console.log(
          `${queue.length} waiting; running caps (this process's environment): ` +
            `${perUser || "unlimited"} per user, ${perProject || "unlimited"} per project`,
        );
        for (const q of queue) {
          const user = q.user ? q.user.email ?? `user ${q.user.id}` : "nobody";
          console.log(
            `${String(q.position).padStart(4)}  export ${q.export_id}  ${user}  project ` +
              `${q.project.id}  ${q.format}  waited ${q.waited_seconds} s` +
              (q.admissible ? "  (admitted at its next poll)" : ""),
          );
        }
        return 0;
      }
      case "temporal-setup": {
        parseArgs({ args: rest, options: {} }); // no options: an unknown one is refused
        const temporal = await connectTemporal(config);
        try {
          const { added, present } = await ensureSearchAttributes(
            temporal.client,
            config.temporalNamespace,
          );
          console.log(
            `namespace ${config.temporalNamespace}: search attributes ` +
              `added [${added.join(", ")}], already present [${present.join(", ")}]`,
          );
        } finally {
          await temporal.close();
        }
        return 0;
      }
      default:
        console.error(USAGE);
        return 2;
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    // an option parseArgs refuses is bad usage (2), as every other argument error
    const usage = (error as { code?: unknown })?.code?.toString().startsWith("ERR_PARSE_ARGS");
    Deno.exit(usage ? 2 : 1);
  }
}
