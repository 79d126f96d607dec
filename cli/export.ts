/**
 * `deno task cli export --project P --format F [--filters JSON] [--wait]`: starts an export the
 * way `POST /api/v2/exports/` does (same checks, same code: {@link requestExport}), as the owner
 * of `--token` / `AMI_EXPORTS_TOKEN`, or as `--user ID` for operators with database access.
 * With `--wait` it shows a progress bar (records, rate, ETA) and prints the file URL at the end;
 * the exit code is 0 only when the export succeeded.
 */
// @ts-types="@types/cli-progress"
import cliProgress from "cli-progress";
import { parseArgs } from "node:util";
import process from "node:process";
import { type CurrentUser, findUserById, findUserByToken } from "../domain/users.ts";
import { requestExport } from "../api/request_export.ts";
import { exportFileUrl, formatFileSize } from "../api/serialize.ts";
import type { Config } from "../config/mod.ts";
import type { Sql } from "../db/client.ts";
import { type ExportRow, findExport, STAGES } from "../db/exports.ts";
import { createStorage } from "../storage/mod.ts";
import { connectTemporal } from "./temporal.ts";
import { captureLogs, pendingPayload, recordsProgress, say, tell } from "./terminal.ts";

/** Usage lines of the command, for the CLI's help. */
export const EXPORT_USAGE =
  `  export --project P --format F [--filters JSON] [--wait] [--force] [--token T | --user ID]
                                           start an export as the API would; --wait shows progress
                                           and prints the file URL (token also from AMI_EXPORTS_TOKEN);
                                           an identical export of unchanged data is reused unless --force`;

/** Runs `export`; returns the exit code (0 success, 1 export failed, 2 bad usage or refused). */
export async function exportCommand(
  args: string[],
  deps: { config: Config; sql: Sql },
): Promise<number> {
  const { config, sql } = deps;
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        project: { type: "string" },
        format: { type: "string" },
        filters: { type: "string" },
        wait: { type: "boolean", default: false },
        force: { type: "boolean", default: false },
        token: { type: "string" },
        user: { type: "string" },
      },
    }));
  } catch (error) {
    console.error(`invalid arguments: ${(error as Error).message}`);
    return 2;
  }
  const project = Number(values.project);
  if (!Number.isInteger(project) || project < 1) {
    console.error(`--project must be a project id, got ${values.project}`);
    return 2;
  }
  if (!values.format) {
    console.error("--format is required (see GET /api/v2/exports/formats/)");
    return 2;
  }
  let filters: Record<string, unknown> = {};
  if (values.filters) {
    try {
      filters = JSON.parse(values.filters);
    } catch (error) {
      console.error(`--filters must be a JSON object: ${(error as Error).message}`);
      return 2;
    }
    if (typeof filters !== "object" || filters === null || Array.isArray(filters)) {
      console.error(`--filters must be a JSON object, got ${values.filters}`);
      return 2;
    }
  }
  const user = await resolveUser(
    sql,
    values.token ?? Deno.env.get("AMI_EXPORTS_TOKEN"),
    values.user,
  );
  if ("error" in user) {
    console.error(user.error);
    return 2;
  }

  // The JSON log lines (export requested, SDK warnings) go to stderr, or to a file while the
  // bar is drawn on a terminal; stdout carries only the id or the URL.
  const logs = captureLogs(
    ".data/cli-export.log",
    values.wait && Deno.stderr.isTerminal() && ensureDataDir(),
  );
  const temporal = await connectTemporal(config);
  try {
    const result = await requestExport({
      sql,
      config,
      temporal: temporal.client,
      storage: createStorage(config),
    }, {
      user,
      project,
      format: values.format,
      filters,
      force: values.force,
    });
    if (!result.ok) {
      tell(`export refused (${result.status}): ${result.message}`);
      return result.status === 503 ? 1 : 2;
    }
    tell(
      result.reused
        ? `export ${result.exportId} reused: identical request, data unchanged (--force exports anyway)`
        : `export ${result.exportId} started (workflow ${result.workflowId})`,
    );
    if (logs.file) tell(`logs: ${logs.file}`);
    if (!values.wait) {
      say(String(result.exportId));
      return 0;
    }
    const row = await waitWithProgress(sql, result.exportId);
    if (row.status !== "SUCCESS") {
      tell(
        `export ${row.id} ended ${row.status}${row.error_stage ? ` in ${row.error_stage}` : ""}${
          row.error ? `: ${row.error}` : ""
        }`,
      );
      return 1;
    }
    tell(
      `export ${row.id}: ${row.record_count} records, ${row.file_size} bytes (${
        formatFileSize(row.file_size)
      })`,
    );
    say(await exportFileUrl(row, { storage: createStorage(config), config }));
    return 0;
  } finally {
    await temporal.close();
    logs.restore();
  }
}

/** Creates `.data/` for the log file; true. */
function ensureDataDir(): boolean {
  Deno.mkdirSync(".data", { recursive: true });
  return true;
}

async function resolveUser(
  sql: Sql,
  token: string | undefined,
  userId: string | undefined,
): Promise<CurrentUser | { error: string }> {
  if (token) {
    return await findUserByToken(sql, token) ?? { error: "invalid or revoked token" };
  }
  if (userId) {
    const id = Number(userId);
    const user = Number.isInteger(id) ? await findUserById(sql, id) : undefined;
    return user ?? { error: `user does not exist: ${userId}` };
  }
  return { error: "who is exporting? pass --token, set AMI_EXPORTS_TOKEN, or pass --user ID" };
}

/**
 * Polls the export until it ends, drawing records / total, rate and ETA on stderr (the rate from
 * the first record seen, the ETA from it: `–` while unknown, never Infinity).
 */
async function waitWithProgress(sql: Sql, exportId: number): Promise<ExportRow> {
  const bar = new cliProgress.SingleBar({
    format: `export ${exportId} |{bar}| {percentage}% | {records} | {rate} records/s | ` +
      `ETA {left} | {status}`,
    stream: process.stderr,
    noTTYOutput: !Deno.stderr.isTerminal(),
    notTTYSchedule: 1000,
    hideCursor: true,
  }, cliProgress.Presets.shades_classic);
  bar.start(1, 0, pendingPayload());
  const draw = recordsProgress(bar);
  try {
    while (true) {
      const row = await findExport(sql, exportId);
      if (!row) throw new Error(`export ${exportId} was deleted while running`);
      const stage = row.job_progress.stages.find((s) => s.key === STAGES.export.key);
      draw(
        { status: row.status, recordCount: row.record_count, params: stage?.params ?? [] },
        row.status,
      );
      if (!["PENDING", "STARTED"].includes(row.status)) return row;
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    bar.stop();
  }
}
