/**
 * Terminal output of the interactive commands (`deno task demo`, `cli export --wait`): progress
 * bars that log lines never break into, and ETAs that say something (issue 14: JSON log lines
 * printed into the bars, `ETA INFs`, `0/1 records`).
 */

const encoder = new TextEncoder();

/** Where {@link captureLogs} sent the log lines. */
export interface LogCapture {
  /** The file the log lines go to, or undefined when they go to stderr. */
  file?: string;
  /** Puts `console` back as it was. */
  restore(): void;
}

/**
 * Sends every `console.log/info/warn/error/debug` line (the JSON logs of the API, the worker,
 * the SDK) to `file` (appended) while a progress display is on a terminal, or to stderr when
 * `toFile` is false (not a TTY: nothing is redrawn, logs stay visible). What the command itself
 * tells the user goes through {@link say}, which writes to stdout directly.
 */
export function captureLogs(file: string, toFile: boolean): LogCapture {
  const saved = {
    log: console.log,
    info: console.info,
    warn: console.warn,
    error: console.error,
    debug: console.debug,
  };
  const handle = toFile ? Deno.openSync(file, { create: true, append: true, write: true }) : null;
  const write = (args: unknown[]) => {
    const text = args.map((a) => typeof a === "string" ? a : Deno.inspect(a)).join(" ") + "\n";
    const bytes = encoder.encode(text);
    try {
      if (handle) handle.writeSync(bytes);
      else Deno.stderr.writeSync(bytes);
    } catch { /* closed at exit */ }
  };
  console.log =
    console.info =
    console.warn =
    console.error =
    console.debug =
      (
        ...args: unknown[]
      ) => write(args);
  return {
    file: handle ? file : undefined,
    restore() {
      Object.assign(console, saved);
      handle?.close();
    },
  };
}

/** Writes `text` and a newline to stdout, whatever `console` does meanwhile. */
export function say(text = ""): void {
  Deno.stdout.writeSync(encoder.encode(`${text}\n`));
}

/** Writes `text` and a newline to stderr (messages to the user beside stdout's result). */
export function tell(text: string): void {
  Deno.stderr.writeSync(encoder.encode(`${text}\n`));
}

/**
 * A readable ETA: `12s`, `3m05s`, `1h02m`; `done` when nothing is left, `–` while the rate is
 * unknown (no record yet, or no total). `rate` is records per second.
 */
export function formatEta(done: number, total: number | null, rate: number): string {
  if (total === null) return "–";
  if (done >= total) return "done";
  if (!(rate > 0) || !Number.isFinite(rate)) return "–";
  const seconds = Math.ceil((total - done) / rate);
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) {
    return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`;
  }
  return `${Math.floor(seconds / 3600)}h${String(Math.floor(seconds / 60) % 60).padStart(2, "0")}m`;
}

/** `1,234/20,000 records`, or `counting records…` while the total is unknown. */
export function formatRecords(done: number, total: number | null): string {
  if (total === null) return "counting records…";
  return `${done.toLocaleString("en-US")}/${total.toLocaleString("en-US")} records`;
}

/** The part of a `cli-progress` bar that {@link recordsProgress} draws on. */
export interface RecordsBar {
  setTotal(total: number): void;
  update(value: number, payload: Record<string, unknown>): void;
}

/** One poll of an export, as the API or the database answers it. */
export interface ExportPoll {
  /** `PENDING`, `STARTED`, `SUCCESS`, … */
  status: string;
  /** The export's `record_count`: the total and the records done once it is `SUCCESS`. */
  recordCount: number;
  /** The params of its "Exporting data" stage (`total_records`, `records_exported`). */
  params: readonly { key: string; value: unknown }[];
}

/** The payload a records bar starts with: nothing counted, no rate, no ETA, `PENDING`. */
export function pendingPayload(): { records: string; rate: number; left: string; status: string } {
  return { records: formatRecords(0, null), rate: 0, left: "–", status: "PENDING" };
}

/**
 * Draws the polls of one export on `bar` (`deno task demo`, `cli export --wait`): the records
 * done of the total (null while they are counted), the rate in records per second from the
 * first record seen (0 for its first half second), the ETA and `status` (the text shown).
 * Returns the function to call with each poll; it answers the poll's total and records done.
 */
export function recordsProgress(
  bar: RecordsBar,
): (poll: ExportPoll, status: string) => { total: number | null; done: number } {
  let first: { at: number; done: number } | undefined;
  return (poll, status) => {
    const param = (key: string): number | null => {
      const value = poll.params.find((p) => p.key === key)?.value;
      return typeof value === "number" ? value : null;
    };
    const success = poll.status === "SUCCESS";
    const total = success ? poll.recordCount : param("total_records");
    const done = success ? poll.recordCount : param("records_exported") ?? 0;
    const now = performance.now();
    if (!first && done > 0) first = { at: now, done };
    const seconds = first ? (now - first.at) / 1000 : 0;
    const rate = first && seconds > 0.5 ? (done - first.done) / seconds : 0;
    bar.setTotal(Math.max(1, total ?? 1));
    bar.update(total === null ? 0 : done, {
      records: formatRecords(done, total),
      rate: Math.round(rate),
      left: formatEta(done, total, rate),
      status,
    });
    return { total, done };
  };
}
