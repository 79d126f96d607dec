/**
 * The operator CLI's arguments, run as a user runs them (`deno run -A cli/main.ts …`): help
 * changes nothing, a missing or malformed argument is named with exit code 2, an unknown
 * command or option is refused. The database URL points at a port nothing listens on, so a
 * command that reached the database would fail otherwise than asserted.
 */
import { fileURLToPath } from "node:url";
import { assert, assertEquals } from "./assert.ts";

const CLI = fileURLToPath(new URL("../cli/main.ts", import.meta.url));

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const result = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    env: { DATABASE_URL: "postgres://nobody@127.0.0.1:1/nothing", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: result.code, out: text(result.stdout), err: text(result.stderr) };
}

Deno.test("cli: --help prints the usage and runs nothing, for every command", async () => {
  for (
    const args of [["--help"], ["migrate", "--help"], ["queue", "-h"], ["seed-demo", "--help"]]
  ) {
    const { code, out } = await cli(...args);
    assertEquals(code, 0, args.join(" "));
    assert(out.startsWith("usage: deno task cli"), `${args.join(" ")}: ${out}`);
  }
});

Deno.test("cli: unknown commands and options, missing and malformed arguments are named", async () => {
  const cases: [string[], number, RegExp][] = [
    [["frobnicate"], 2, /^unknown command: frobnicate\n/],
    [["create-token"], 2, /^create-token needs --user ID\n$/],
    [["revoke-token"], 2, /^revoke-token needs --token TOKEN\n$/],
    [["housekeeping", "--run", "--min-age", "abc"], 2, /^--min-age must be a number of seconds/],
    [["housekeeping", "--install", "--every", "0"], 2, /^--every must be a number of minutes/],
    [["migrate", "--bogus"], 2, /Unknown option '--bogus'/],
    [["queue", "--jsn"], 2, /Unknown option '--jsn'/],
  ];
  for (const [args, code, error] of cases) {
    const result = await cli(...args);
    assertEquals(result.code, code, `${args.join(" ")}: ${result.err}`);
    assert(error.test(result.err), `${args.join(" ")}: ${result.err}`);
  }
});
