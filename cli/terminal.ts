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
