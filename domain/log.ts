/** Structured logs: one JSON object a line on stdout (export id, workflow id, stage, …). */

/** Fields of a log line; `export_id`, `workflow_id` and `stage` where they apply. */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/** Writes `{"time", "level", "msg", ...fields}` as one line. */
export function logEvent(msg: string, fields: LogFields = {}, level = "info"): void {
  if (Deno.env.get("LOG_LEVEL") === "silent") return;
  const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields });
  if (level === "error") console.error(line);
  else console.log(line);
}
