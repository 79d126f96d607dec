/**
 * `deno task ui-screenshot [--ui URL] [--namespace NS] [--query Q] [--out FILE]`: the Temporal
 * Web UI's workflow list, filtered by an export search attribute query, rendered by headless
 * Chromium into a PNG, so that an operator (or a reviewer) can see what the UI shows: the
 * `data-export-…` workflows with their summary and the `ExportFormat`/`ExportStatus` columns.
 * Needs a running UI (`deno task demo` serves one on http://127.0.0.1:8233) and Chromium
 * (Debian: `apt-get install chromium`). Exit code 1 when either is missing or the page is blank.
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    ui: { type: "string", default: "http://127.0.0.1:8233" },
    namespace: { type: "string", default: "default" },
    query: { type: "string", default: 'ExportStatus = "SUCCESS"' },
    out: { type: "string", default: ".data/temporal-ui.png" },
  },
});

/** The first Chromium binary on PATH, or undefined. */
async function findChromium(): Promise<string | undefined> {
  for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
    const found = await new Deno.Command("sh", { args: ["-c", `command -v ${name}`] }).output();
    if (found.success) return new TextDecoder().decode(found.stdout).trim();
  }
  return undefined;
}

/** True when the UI answers at `ui`. */
async function uiAnswers(ui: string): Promise<boolean> {
  try {
    const res = await fetch(ui);
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  const chromium = await findChromium();
  if (!chromium) {
    console.error("Chromium is missing: install it (Debian: apt-get install chromium)");
    Deno.exit(1);
  }
  if (!(await uiAnswers(values.ui))) {
    console.error(`no Temporal UI at ${values.ui}: start one (deno task demo) or pass --ui URL`);
    Deno.exit(1);
  }
  const url = `${values.ui}/namespaces/${encodeURIComponent(values.namespace)}/workflows?query=${
    encodeURIComponent(values.query)
  }`;
  await Deno.mkdir(values.out.replace(/\/[^/]*$/, "") || ".", { recursive: true });
  const out = await new Deno.Command(chromium, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--hide-scrollbars",
      "--window-size=1600,1000",
      // the UI is a single-page app: give its scripts time to fetch and draw the list
      "--virtual-time-budget=15000",
      `--screenshot=${values.out}`,
      url,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const size = (await Deno.stat(values.out).catch(() => null))?.size ?? 0;
  // a blank 1600×1000 PNG is a few KB; a drawn workflow list is far larger
  if (!out.success || size < 20_000) {
    console.error(`no usable screenshot (${size} bytes): ${new TextDecoder().decode(out.stderr)}`);
    Deno.exit(1);
  }
  console.log(JSON.stringify({ screenshot: values.out, bytes: size, url }));
}
