/**
 * The email a user gets when an export ends (docs/email.md), against the real services: the API
 * app and a worker, PostgreSQL, Temporal, and a local SMTP server (aiosmtpd, tests/smtp_sink.py)
 * that writes every message it accepts to a file. A SUCCESS, a FAILURE and a REVOKED export each
 * send exactly one message to the user, with the subject and, for SUCCESS, a signed link that opens
 * the file without a token (302, sha256 equal to the export's checksum); a tampered or expired
 * link is a 403, an EXPIRED export a 410. A worker killed after the SMTP server accepted the
 * message and before it recorded `sent` leads to one resend with the same Message-ID: the
 * documented at-least-once contract, one distinct message for a receiver that deduplicates.
 */
import { dirname } from "node:path";
import { findOrInstallTool, freePort } from "../cli/dev_services.ts";
import { seedDemo, type SeedResult } from "../db/seed_demo.ts";
import { signedDownloadUrl } from "../domain/download_link.ts";
import { assert, assertEquals } from "./assert.ts";
import { type Harness, startHarness } from "./harness.ts";
import { holdLockUntilBlocked } from "./lock_holder.ts";
import { serviceTest, sha256Hex } from "./support.ts";
import { startWorkerProcess } from "./worker_process.ts";

const SINK = new URL("./smtp_sink.py", import.meta.url).pathname;

/** A message as tests/smtp_sink.py records it. */
interface Mail {
  mail_from: string;
  rcpt_tos: string[];
  from: string;
  to: string;
  subject: string;
  message_id: string;
  body: string;
}

/** A running SMTP sink and the messages it has written so far. */
interface Sink {
  url: string;
  messages(): Promise<Mail[]>;
  stop(): Promise<void>;
}

/** Starts tests/smtp_sink.py on a free port; it answers 250 `delaySeconds` after each DATA. */
async function startSink(delaySeconds: number): Promise<Sink> {
  const python = `${dirname(await findOrInstallTool("aiosmtpd"))}/python`;
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "ami-exports-smtp-" });
  const child = new Deno.Command(python, {
    args: [SINK, String(port), dir, String(delaySeconds)],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("smtp sink ready")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`smtp sink exited before it was ready: ${seen}`);
    seen += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return {
    url: `smtp://user:secret@127.0.0.1:${port}`,
    async messages() {
      const names: string[] = [];
      for await (const entry of Deno.readDir(dir)) {
        if (entry.name.endsWith(".json")) names.push(entry.name);
      }
      names.sort();
      return await Promise.all(
        names.map(async (n) => JSON.parse(await Deno.readTextFile(`${dir}/${n}`)) as Mail),
      );
    },
    async stop() {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Polls `probe` until it returns true; throws after `timeoutMs`. */
async function waitFor(
  what: string,
  probe: () => Promise<boolean> | boolean,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
}

type Json = Record<string, unknown>;

async function createExport(h: Harness, seed: SeedResult, extra: Json = {}): Promise<number> {
  const res = await h.api("POST", "/api/v2/exports/", {
    token: seed.token,
    body: { project: seed.project_id, format: "occurrences_simple_csv", force: true, ...extra },
  });
  const json = await res.json();
  assertEquals(res.status, 201, JSON.stringify(json));
  return json.id as number;
}

/** The messages about export `id` (its id is in the subject line's body text). */
function about(messages: Mail[], id: number): Mail[] {
  return messages.filter((m) => m.body.includes(`(export ${id})`));
}

async function userEmail(h: Harness, userId: number): Promise<string> {
  const [row] = await h.sql<{ email: string }[]>`select email from users where id = ${userId}`;
  return row.email;
}

const FAST = {
  EMAIL_RETRY_INITIAL_SECONDS: "1",
  EMAIL_RETRY_MAX_INTERVAL_SECONDS: "2",
  SMTP_TIMEOUT_SECONDS: "10",
};

Deno.test({
  name:
    "email: one message per ended export (SUCCESS with a signed link that downloads without a token, FAILURE with its error, REVOKED); bad links 403, EXPIRED 410",
  ...serviceTest,
  async fn() {
    const sink = await startSink(0);
    const h = await startHarness({
      storage: "fs",
      worker: false,
      env: { ...FAST, SMTP_URL: sink.url, EMAIL_FROM: "Moth exports <exports@ami.test>" },
    });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 30, seed: 3101 });
      const to = await userEmail(h, seed.user_id);
      const [project] = await h.sql<{ name: string }[]>`
        select name from projects where id = ${seed.project_id}`;
      // FAILURE: the capture set its filters name is deleted before any worker runs
      const [set] = await h.sql<{ id: number }[]>`
        insert into source_image_collections (project_id, name) values (${seed.project_id}, 'gone')
        returning id`;
      const failing = await createExport(h, seed, { filters: { collection_id: set.id } });
      await h.sql`delete from source_image_collections where id = ${set.id}`;
      const succeeding = await createExport(h, seed);
      // REVOKED: cancelled before any worker runs
      const cancelled = await createExport(h, seed);
      const cancel = await h.api("POST", `/api/v2/exports/${cancelled}/cancel/`, {
        token: seed.token,
      });
      assertEquals(cancel.status, 202);
      await h.startWorker();
      const ok = await h.waitForExport(succeeding, seed.token);
      assertEquals(ok.status, "SUCCESS");
      const failed = await h.waitForExport(failing, seed.token);
      assertEquals(failed.status, "FAILURE");
      assertEquals((await h.waitForExport(cancelled, seed.token)).status, "REVOKED");
      await waitFor("three emails", async () => (await sink.messages()).length >= 3, 30_000);
      await sleep(2000); // nothing more may arrive
      const messages = await sink.messages();
      assertEquals(messages.length, 3, JSON.stringify(messages.map((m) => m.subject)));

      const [ready] = about(messages, succeeding);
      assertEquals(ready.rcpt_tos, [to]);
      assertEquals(ready.to, to);
      assertEquals(ready.from, "Moth exports <exports@ami.test>");
      assertEquals(
        ready.subject,
        `Your export "${project.name} – occurrences_simple_csv" is ready`,
      );
      assert(ready.body.includes(`Records: ${ok.record_count}`), ready.body);
      // the size as the export object (and the data card) shows it, and exact
      const bytes = (ok.file_size as number).toLocaleString("en-US");
      const size = (ok.file_size as number) < 1024
        ? `Size: ${bytes} bytes`
        : `Size: ${ok.file_size_display} (${bytes} bytes)`;
      assert(ready.body.includes(size), `${size} in ${ready.body}`);
      assert(/^<export-email-[0-9a-f-]{36}@ami\.test>$/.test(ready.message_id), ready.message_id);
      // an operator finds the email's delivery with the export: ExportId in the Temporal UI
      const query = `ExportId = ${succeeding} AND WorkflowType = "emailDeliveryWorkflow"`;
      let found: string[] = [];
      await waitFor("the email's delivery in Temporal's visibility", async () => {
        found = [];
        for await (const run of h.temporal.client.workflow.list({ query })) {
          found.push(run.workflowId);
        }
        return found.length > 0;
      }, 30_000);
      assertEquals(found, [ready.message_id.slice(1, -"@ami.test>".length)]);
      const [failure] = about(messages, failing);
      assertEquals(failure.rcpt_tos, [to]);
      assertEquals(
        failure.subject,
        `Your export "${project.name} – occurrences_simple_csv" failed`,
      );
      assert(
        failure.body.includes(`Error (in ${failed.error_stage}): ${failed.error}`),
        failure.body,
      );
      assert(!failure.body.includes("/download/"), failure.body);
      const [revoked] = about(messages, cancelled);
      assertEquals(revoked.rcpt_tos, [to]);
      assertEquals(
        revoked.subject,
        `Your export "${project.name} – occurrences_simple_csv" was cancelled`,
      );
      // one row per end, each sent at the first attempt, each with its own Message-ID
      const states = await h.sql<{ type: string; state: string; attempts: number }[]>`
        select type, state, attempts from email_events
        where export_id in (${succeeding}, ${failing}, ${cancelled}) order by export_id`;
      assertEquals(states.map((s) => [s.type, s.state, s.attempts]), [
        ["export.failed", "sent", 1],
        ["export.succeeded", "sent", 1],
        ["export.revoked", "sent", 1],
      ]);
      assertEquals(new Set(messages.map((m) => m.message_id)).size, 3);

      // the link, opened without a token: 302 to a short-lived URL of the file
      const link = /(http:\/\/api\.test\/api\/v2\/exports\/\d+\/download\/\?\S+)/.exec(ready.body)
        ?.[1];
      assert(link, ready.body);
      const path = link.slice(h.config.publicBaseUrl.length);
      const redirect = await h.app.request(path);
      assertEquals(redirect.status, 302, await redirect.clone().text());
      const file = await h.download(redirect.headers.get("location")!);
      assertEquals(`sha256:${await sha256Hex(file)}`, ok.checksum);
      const expires = Number(new URL(link).searchParams.get("expires"));
      const [row] = await h.sql<{ expires_at: Date }[]>`
        select expires_at from data_exports where id = ${succeeding}`;
      assertEquals(expires, Math.floor(row.expires_at.getTime() / 1000));
      // without signature parameters the route still wants a token
      assertEquals((await h.app.request(`/api/v2/exports/${succeeding}/download/`)).status, 401);
      const withToken = await h.api("GET", `/api/v2/exports/${succeeding}/download/`, {
        token: seed.token,
      });
      assertEquals(withToken.status, 302);

      // tampered and expired links: 403 with a readable message
      const signature = new URL(link).searchParams.get("signature")!;
      const flipped = signature.replace(/^./, (c) => c === "0" ? "1" : "0");
      const tampered = await h.app.request(path.replace(signature, flipped));
      assertEquals(tampered.status, 403);
      assertEquals(
        (await tampered.json()).error,
        "invalid download link: the signature does not match",
      );
      const otherExport = await h.app.request(path.replace(`/${succeeding}/`, `/${failing}/`));
      assertEquals(otherExport.status, 403);
      const past = signedDownloadUrl("", succeeding, {
        secret: h.config.signingSecret,
        expiresAt: new Date(Date.now() - 1000),
      });
      const expired = await h.app.request(past);
      assertEquals(expired.status, 403);
      assert((await expired.json()).error.startsWith("download link expired on "));

      // an EXPIRED export (its file deleted when its retention ended): 410
      await h.sql`update data_exports set status = 'EXPIRED' where id = ${succeeding}`;
      assertEquals((await h.app.request(path)).status, 410);
    } finally {
      await h.close();
      await sink.stop();
    }
  },
});

Deno.test({
  name:
    "email: a worker killed after the SMTP server accepted and before it recorded sent → one resend, same Message-ID",
  ...serviceTest,
  async fn() {
    // the sink writes a message 2 s before its 250: time to hold the row the worker records in
    const sink = await startSink(2);
    const h = await startHarness({
      storage: "fs",
      worker: false,
      env: { ...FAST, SMTP_URL: sink.url },
    });
    let worker = await startWorkerProcess(h.env, { name: "email-kill" });
    try {
      const seed = await seedDemo(h.sql, { occurrences: 20, seed: 3102 });
      const id = await createExport(h, seed);
      await waitFor("the message at the server", async () => {
        return about(await sink.messages(), id).length === 1;
      }, 60_000);
      // hold the email row: the worker's `sent` update waits on it after the 250
      await holdLockUntilBlocked(h.sql, {
        lock: (holder) => holder`select id from email_events where export_id = ${id} for update`,
        label: `the email row of export ${id}`,
        waiter: { queryContains: "update email_events set state = 'sent'" },
        async action(waiting) {
          await worker.kill();
          // the dead worker's session would still commit its update once the lock is free
          await h.sql`select pg_terminate_backend(${waiting.pid})`;
        },
        timeoutMs: 10_000,
      });
      const [before] = await h.sql<{ state: string; attempts: number }[]>`
        select state, attempts from email_events where export_id = ${id}`;
      assertEquals([before.state, before.attempts], ["pending", 1]);

      // a new worker: the send's heartbeat times out and Temporal retries it
      worker = await startWorkerProcess(h.env, { name: "email-kill-2" });
      await waitFor("the email recorded sent", async () => {
        const [row] = await h.sql<{ state: string }[]>`
          select state from email_events where export_id = ${id}`;
        return row.state === "sent";
      }, 45_000);
      await sleep(1000);
      const copies = about(await sink.messages(), id);
      assertEquals(copies.length, 2, "at least once: the in-doubt send is repeated");
      assertEquals(new Set(copies.map((m) => m.message_id)).size, 1);
      assertEquals(new Set(copies.map((m) => m.body)).size, 1);
      const [after] = await h.sql<{ attempts: number }[]>`
        select attempts from email_events where export_id = ${id}`;
      assertEquals(after.attempts, 2);
      assertEquals(
        (await h.sql`select 1 from email_events where export_id = ${id}`).length,
        1,
        "one email per export end",
      );
    } finally {
      await worker.stop();
      await h.close();
      await sink.stop();
    }
  },
});
