import { DefaultLogger, type LogLevel, Runtime } from "@temporalio/worker";

let installed = false;

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
    Runtime.install({ logger: new DefaultLogger(level) });
  } catch {
    // a runtime was installed already (e.g. by another module): keep it
  }
}
