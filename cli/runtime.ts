import { DefaultLogger, type LogEntry, type LogLevel, Runtime } from "@temporalio/worker";

let installed = false;

/**
 * One SDK log line through `console.error` at call time (so that the demo and the CLI can send
 * it to their log file while bars are drawn: cli/terminal.ts). The control-queue worker's
 * "No workflows registered" warning is expected (it runs activities only) and dropped.
 */
function writeLogEntry(entry: LogEntry): void {
  if (entry.message.startsWith("No workflows registered")) return;
  const time = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
  const meta = entry.meta && Object.keys(entry.meta).length > 0
    ? ` ${Deno.inspect(entry.meta, { breakLength: Infinity })}`
    : "";
  console.error(`${time} [${entry.level}] ${entry.message}${meta}`);
}

/**
 * Installs the Temporal SDK's core runtime once per process, with a logger at
 * `TEMPORAL_LOG_LEVEL` (default WARN) so the workflow bundler and worker state changes do not
 * flood the output. Later calls do nothing; a runtime installed by someone else is kept.
 */
export function installRuntime(): void {
  if (installed) return;
  installed = true;
  const level = (Deno.env.get("TEMPORAL_LOG_LEVEL") ?? "WARN").toUpperCase() as LogLevel;
  try {
    Runtime.install({ logger: new DefaultLogger(level, writeLogEntry) });
  } catch {
    // a runtime was installed already (e.g. by another module): keep it
  }
}
