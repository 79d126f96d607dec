/**
 * Webhooks when an export ends (issue 20, part 1; docs/webhooks.md), against the real services:
 * the API app and a worker in process, PostgreSQL, Temporal, and local HTTP receivers on
 * 127.0.0.1 (`WEBHOOK_ALLOW_PRIVATE=true`) that check the signature, the event id and the body
 * of every event. A receiver answering 500 twice gets one successful delivery after three
 * attempts; a receiver down for 30 s still gets its events; failed and revoked exports send
 * theirs; a redirect is never followed; the outbox sweep starts an event nobody started; private
 * addresses are refused when not allowed; a secret appears only in its creation answer.
 */
import type { Sql } from "../db/client.ts";
import { insertEndEvents, recordAttempt } from "../db/webhooks.ts";
import { inTransaction } from "../db/transaction.ts";
import { seedDemo, type SeedResult } from "../db/seed_demo.ts";
import { sweepWebhookOutbox } from "../activities/webhook_outbox.ts";
import { verifyWebhookSignature } from "../domain/webhook_signature.ts";
import { assert, assertEquals } from "./assert.ts";
import { createProject } from "./fixtures/access.ts";
import { type Harness, startHarness } from "./harness.ts";
import { serviceTest } from "./support.ts";
import type { housekeepingWorkflow } from "../workflows/housekeeping_workflow.ts";

/** One request a receiver got, and what it answered. */
interface Received {
  webhookId: string | null;
  timestamp: string | null;
  signature: string | null;
  contentType: string | null;
  body: string;
  answered: number;
}

/** A local HTTP receiver; `answer(n)` gives the n-th request's (0-based) response. */
interface Receiver {
  url: string;
  port: number;
  received: Received[];
  close(): Promise<void>;
}

function startReceiver(
  answer: (n: number) => Response = () => new Response("ok"),
  port = 0,
): Receiver {
  const received: Received[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port, onListen() {} },
    async (request) => {
      const body = await request.text();
      const response = answer(received.length);
      received.push({
        webhookId: request.headers.get("webhook-id"),
        timestamp: request.headers.get("webhook-timestamp"),
        signature: request.headers.get("webhook-signature"),
        contentType: request.headers.get("content-type"),
        body,
        answered: response.status,
      });
      return response;
    },
  );
  return {
    url: `http://127.0.0.1:${server.addr.port}/hook`,
    port: server.addr.port,
    received,
    close: () => server.shutdown(),
  };
}

/** A loopback port nothing listens on (for a receiver that is down). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Polls `probe` until it returns true; throws after `timeoutMs`. */
async function waitFor(what: string, probe: () => Promise<boolean> | boolean, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await sleep(200);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
}

type Json = Record<string, unknown>;

async function apiJson(
  h: Harness,
  method: string,
  path: string,
  token: string,
  body?: unknown,
): Promise<{ status: number; json: Json }> {
  const res = await h.api(method, path, { token, body });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : {} };
}

/** The export object without what depends on the caller or on the time of the call. */
function comparable(exportJson: Json): Json {
  const { file_url: _url, user_permissions: _perms, ...rest } = exportJson;
  return rest;
}

/**
 * Checks every request `receiver` got: JSON, signed with `secret` over `<timestamp>.<body>`, the
 * `Webhook-Id` header equal to the body's `id`, the type expected, and `data` equal to the export
 * as `GET /api/v2/exports/<id>/` serializes it now (minus the caller's permissions and the
 * short-lived file URL). Returns the parsed bodies.
 */
async function checkDeliveries(
  h: Harness,
  token: string,
  received: Received[],
  expected: { secret: string; type: string; exportId: number },
): Promise<Json[]> {
  const current = await apiJson(h, "GET", `/api/v2/exports/${expected.exportId}/`, token);
  const bodies: Json[] = [];
  for (const r of received) {
    assertEquals(r.contentType, "application/json");
    assert(
      await verifyWebhookSignature(expected.secret, r),
      `signature of ${r.webhookId}: ${r.signature}`,
    );
    const body = JSON.parse(r.body) as Json;
    assertEquals(body.id, r.webhookId);
    assertEquals(body.type, expected.type);
    assert(typeof body.created_at === "string" && !isNaN(Date.parse(body.created_at)));
    assertEquals(comparable(body.data as Json), comparable(current.json));
    assertEquals((body.data as Json).user_permissions, []);
    bodies.push(body);
  }
  return bodies;
}

async function createExport(
  h: Harness,
  seed: SeedResult,
  extra: Json = {},
): Promise<Json & { id: number }> {
  const { status, json } = await apiJson(h, "POST", "/api/v2/exports/", seed.token, {
    project: seed.project_id,
    format: "occurrences_simple_csv",
    force: true,
    ...extra,
  });
  assertEquals(status, 201, JSON.stringify(json));
  return json as Json & { id: number };
}

interface DeliveryEvent {
  id: string;
  type: string;
  webhook_id: number | null;
  url: string | null;
  state: string;
  attempts: {
    attempt: number;
    status_code: number | null;
    error: string | null;
    next_try_at: string | null;
  }[];
}

async function deliveries(h: Harness, token: string, exportId: number): Promise<DeliveryEvent[]> {
  const { status, json } = await apiJson(
    h,
    "GET",
    `/api/v2/exports/${exportId}/deliveries/`,
    token,
  );
  assertEquals(status, 200, JSON.stringify(json));
  return json.results as DeliveryEvent[];
}

/** A capture set of the project holding every capture (an export filter that can be deleted). */
async function createCaptureSet(sql: Sql, projectId: number): Promise<number> {
  const [set] = await sql<{ id: number }[]>`
    insert into source_image_collections (project_id, name) values (${projectId}, 'doomed')
    returning id`;
  await sql`
    insert into source_image_collection_images (collection_id, source_image_id)
    select ${set.id}, id from source_images where project_id = ${projectId}`;
  return set.id;
}

const FAST_RETRIES = {
  WEBHOOK_ALLOW_PRIVATE: "true",
  WEBHOOK_RETRY_INITIAL_SECONDS: "1",
  WEBHOOK_RETRY_MAX_INTERVAL_SECONDS: "4",
  WEBHOOK_RETRY_TOTAL_SECONDS: "120",
};

Deno.test({
  name: "webhooks: 500, 500, 200 → one delivery, three attempts; the secret is shown once",
  ...serviceTest,
  async fn() {
    // kept 12 s (docs/retention.md): long enough for the checks below, then EXPIRED
    const h = await startHarness({
      storage: "fs",
      env: { ...FAST_RETRIES, EXPORT_RETENTION_SECONDS: "12" },
    });
    const receiver = startReceiver((n) => new Response(null, { status: n < 2 ? 500 : 200 }));
    try {
      const seed = await seedDemo(h.sql, { occurrences: 30, seed: 2001 });
      const created = await apiJson(
        h,
        "POST",
        `/api/v2/projects/${seed.project_id}/webhooks/`,
        seed.token,
        { url: receiver.url },
      );
      assertEquals(created.status, 201, JSON.stringify(created.json));
      const secret = created.json.secret as string;
      assert(/^whsec_[0-9a-f]{64}$/.test(secret), secret);
      assertEquals(created.json.events, [
        "export.succeeded",
        "export.failed",
        "export.revoked",
        "export.expired",
      ]);

      const exported = await createExport(h, seed);
      const final = await h.waitForExport(exported.id, seed.token);
      assertEquals(final.status, "SUCCESS");
      await waitFor(
        "a 200 answer",
        () => receiver.received.some((r) => r.answered === 200),
        60_000,
      );
      await sleep(3000); // nothing more may arrive
      assertEquals(receiver.received.map((r) => r.answered), [500, 500, 200]);
      const bodies = await checkDeliveries(h, seed.token, receiver.received, {
        secret,
        type: "export.succeeded",
        exportId: exported.id,
      });
      // one event, sent three times with the same id and the same bytes
      assertEquals(new Set(receiver.received.map((r) => r.webhookId)).size, 1);
      assertEquals(new Set(receiver.received.map((r) => r.body)).size, 1);
      assertEquals((bodies[0].data as Json).status, "SUCCESS");

      const [event, ...others] = await deliveries(h, seed.token, exported.id);
      assertEquals(others, []);
      assertEquals(event.id, receiver.received[0].webhookId);
      assertEquals(event.type, "export.succeeded");
      assertEquals(event.state, "delivered");
      assertEquals(event.url, receiver.url);
      assertEquals(event.webhook_id, created.json.id);
      assertEquals(event.attempts.map((a) => [a.attempt, a.status_code]), [[1, 500], [2, 500], [
        3,
        200,
      ]]);
      assert(event.attempts[0].next_try_at && event.attempts[1].next_try_at, "next tries");
      assertEquals(event.attempts[2].next_try_at, null);
      assertEquals(event.attempts[0].error, "answered 500");

      // an operator finds the delivery with the export: ExportId in the Temporal UI
      const query = `ExportId = ${exported.id} AND WorkflowType = "webhookDeliveryWorkflow"`;
      let found: string[] = [];
      await waitFor("the delivery in Temporal's visibility", async () => {
        found = [];
        for await (const run of h.temporal.client.workflow.list({ query })) {
          found.push(run.workflowId);
        }
        return found.length > 0;
      }, 30_000);
      assertEquals(found, [`webhook-delivery-${event.id}`]);

      // the secret only in the creation answer
      const list = await h.api("GET", `/api/v2/projects/${seed.project_id}/webhooks/`, {
        token: seed.token,
      });
      assertEquals(list.status, 200);
      const listText = await list.text();
      assert(!listText.includes(secret) && !listText.includes("secret"), listText);
      assertEquals(JSON.parse(listText).count, 1);
      for (
        const path of [
          `/api/v2/exports/${exported.id}/deliveries/`,
          `/api/v2/exports/${exported.id}/`,
          `/api/v2/exports/?project_id=${seed.project_id}`,
        ]
      ) {
        const text = await (await h.api("GET", path, { token: seed.token })).text();
        assert(!text.includes(secret), path);
      }
      // an export without notify_url has no notify_secret in its 201
      assertEquals("notify_secret" in exported, false);

      // the file's retention ends: housekeeping (its Schedule's workflow) marks the export
      // EXPIRED, and export.expired is sent, by the outbox of that transition
      await waitFor("the retention to end", async () => {
        const [row] = await h.sql<{ due: boolean }[]>`
          select expires_at <= now() as due from data_exports where id = ${exported.id}`;
        return row.due;
      }, 30_000);
      await h.temporal.client.workflow.execute<typeof housekeepingWorkflow>(
        "housekeepingWorkflow",
        {
          taskQueue: h.config.temporalTaskQueue,
          workflowId: `webhooks-housekeeping-${crypto.randomUUID()}`,
          args: [{ minAgeSeconds: 3600 }],
        },
      );
      await waitFor("export.expired", () => receiver.received.length >= 4, 30_000);
      const [expired] = await checkDeliveries(h, seed.token, receiver.received.slice(3), {
        secret,
        type: "export.expired",
        exportId: exported.id,
      });
      assertEquals((expired.data as Json).status, "EXPIRED");

      // delete one, then none is left
      const removed = await h.api(
        "DELETE",
        `/api/v2/projects/${seed.project_id}/webhooks/${created.json.id}/`,
        { token: seed.token },
      );
      assertEquals(removed.status, 204);
      const again = await h.api(
        "DELETE",
        `/api/v2/projects/${seed.project_id}/webhooks/${created.json.id}/`,
        { token: seed.token },
      );
      assertEquals(again.status, 404);
    } finally {
      await receiver.close();
      await h.close();
    }
  },
});

Deno.test({
  name:
    "webhooks: failed and revoked exports notify, a receiver down for 30 s still gets its events, no redirect is followed, the sweep starts what nobody started",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "fs", env: FAST_RETRIES, worker: false });
    const downPort = freePort();
    const downUrl = `http://127.0.0.1:${downPort}/hook`;
    const target = startReceiver(); // where the redirect points: must never be called
    const redirecting = startReceiver(() =>
      new Response(null, { status: 302, headers: { Location: target.url } })
    );
    let late: Receiver | undefined;
    try {
      const seed = await seedDemo(h.sql, { occurrences: 30, seed: 2002 });
      const hook = await apiJson(
        h,
        "POST",
        `/api/v2/projects/${seed.project_id}/webhooks/`,
        seed.token,
        { url: redirecting.url, events: ["export.revoked"] },
      );
      assertEquals(hook.status, 201, JSON.stringify(hook.json));
      // FAILURE: the capture set its filters name is deleted before any worker runs
      const doomed = await createCaptureSet(h.sql, seed.project_id);
      const failing = await createExport(h, seed, {
        filters: { collection_id: doomed },
        notify_url: downUrl,
      });
      await h.sql`delete from source_image_collections where id = ${doomed}`;
      // REVOKED: cancelled before it starts
      const revoked = await createExport(h, seed, { notify_url: downUrl });
      const cancel = await h.api("POST", `/api/v2/exports/${revoked.id}/cancel/`, {
        token: seed.token,
      });
      assertEquals(cancel.status, 202);
      const failingSecret = failing.notify_secret as string;
      const revokedSecret = revoked.notify_secret as string;
      assert(failingSecret && revokedSecret && failingSecret !== revokedSecret, "notify secrets");

      await h.startWorker();
      assertEquals((await h.waitForExport(failing.id, seed.token)).status, "FAILURE");
      assertEquals((await h.waitForExport(revoked.id, seed.token)).status, "REVOKED");
      const endedAt = Date.now();
      // the notify receiver is down: attempts fail and are retried
      await waitFor("two failed attempts", async () => {
        const [event] = await deliveries(h, seed.token, failing.id);
        return (event?.attempts.length ?? 0) >= 2;
      }, 30_000);
      const [pending] = await deliveries(h, seed.token, failing.id);
      assertEquals(pending.state, "pending");
      assertEquals(pending.attempts[0].status_code, null);
      // the cause, not only fetch's "TypeError: fetch failed"
      assert(
        /Connection refused/i.test(pending.attempts[0].error ?? ""),
        `the connection error and its cause are recorded: ${pending.attempts[0].error}`,
      );
      assert(pending.attempts[0].next_try_at, "a next try is due");

      await sleep(Math.max(0, 30_000 - (Date.now() - endedAt)));
      late = startReceiver(() => new Response("ok"), downPort);
      await waitFor("both notify events", () => late!.received.length >= 2, 30_000);
      await sleep(2000);
      const byExport = new Map<number, Received[]>();
      for (const r of late.received) {
        const id = (JSON.parse(r.body).data as Json).id as number;
        byExport.set(id, [...(byExport.get(id) ?? []), r]);
      }
      assertEquals(byExport.get(failing.id)?.length, 1);
      assertEquals(byExport.get(revoked.id)?.length, 1);
      const [failed] = await checkDeliveries(h, seed.token, byExport.get(failing.id)!, {
        secret: failingSecret,
        type: "export.failed",
        exportId: failing.id,
      });
      assertEquals((failed.data as Json).status, "FAILURE");
      await checkDeliveries(h, seed.token, byExport.get(revoked.id)!, {
        secret: revokedSecret,
        type: "export.revoked",
        exportId: revoked.id,
      });
      const [delivered] = await deliveries(h, seed.token, failing.id);
      assertEquals(delivered.state, "delivered");
      assertEquals(delivered.webhook_id, null);
      assertEquals(delivered.attempts.at(-1)?.status_code, 200);
      assert(delivered.attempts.length >= 3, `attempts: ${delivered.attempts.length}`);

      // the project webhook (export.revoked only) got a 302, never followed, and retries
      await waitFor("a second redirect attempt", () => redirecting.received.length >= 2, 20_000);
      assertEquals(target.received.length, 0);
      assertEquals(redirecting.received.length >= 2, true);
      assertEquals(JSON.parse(redirecting.received[0].body).type, "export.revoked");
      const revokedEvents = await deliveries(h, seed.token, revoked.id);
      const viaHook = revokedEvents.find((e) => e.webhook_id === hook.json.id)!;
      assertEquals(viaHook.attempts[0].status_code, 302);
      assert(viaHook.attempts[0].error?.startsWith("redirect not followed: 302"));
      // the failed export sent nothing to the webhook, which wants export.revoked only
      assertEquals((await deliveries(h, seed.token, failing.id)).length, 1);

      // a transition that committed without its workflow start (a crash): the sweep starts it
      const [orphan] = await inTransaction(
        h.sql,
        (tx) => insertEndEvents(tx, failing.id, "FAILURE"),
      );
      const before = late.received.length;
      const swept = await sweepWebhookOutbox(
        { sql: h.sql, config: h.config, temporal: h.temporal.client },
        { minAgeSeconds: 0 },
      );
      assert(swept.includes(orphan), `swept ${swept}`);
      await waitFor("the swept event", () => late!.received.length > before, 20_000);
      assertEquals(late.received.at(-1)?.webhookId, orphan);
      // started twice (its start not recorded, the sweep again): "already started" is success,
      // and the workflow id keeps it one delivery
      await h.sql`update webhook_events set workflow_started_at = null where id = ${orphan}`;
      const sweptAgain = await sweepWebhookOutbox(
        { sql: h.sql, config: h.config, temporal: h.temporal.client },
        { minAgeSeconds: 0 },
      );
      assertEquals(sweptAgain, [orphan]);
      const [{ started }] = await h.sql<{ started: boolean }[]>`
        select workflow_started_at is not null as started from webhook_events
        where id = ${orphan}`;
      assertEquals(started, true);
      await sleep(2000);
      assertEquals(late.received.filter((r) => r.webhookId === orphan).length, 1);
    } finally {
      await late?.close();
      await redirecting.close();
      await target.close();
      await h.close();
    }
  },
});

Deno.test({
  name: "webhooks: private addresses refused without WEBHOOK_ALLOW_PRIVATE; who may manage them",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "fs", worker: false });
    try {
      const p = await createProject(h.sql, { draft: false });
      const path = `/api/v2/projects/${p.projectId}/webhooks/`;
      const refused: [string, string][] = [
        ["http://127.0.0.1:9/hook", "loopback address 127.0.0.1"],
        ["http://[::1]/hook", "loopback address ::1"],
        ["http://localhost/hook", "localhost is a loopback address"],
        ["http://10.1.2.3/hook", "private address 10.1.2.3"],
        ["http://169.254.169.254/latest", "link-local address 169.254.169.254"],
        ["http://100.64.0.1/", "CGNAT address 100.64.0.1"],
      ];
      for (const [url, reason] of refused) {
        const { status, json } = await apiJson(h, "POST", path, p.tokens.owner, { url });
        assertEquals(status, 400, url);
        assertEquals(json.error, `webhook URL refused: url: ${reason}`);
      }
      const scheme = await apiJson(h, "POST", path, p.tokens.owner, { url: "ftp://x.org/" });
      assertEquals(scheme.status, 400);
      const events = await apiJson(h, "POST", path, p.tokens.owner, {
        url: "http://10.1.2.3/",
        events: ["export.started"],
      });
      assertEquals(events.status, 400);
      assertEquals((await apiJson(h, "GET", path, p.tokens.owner)).json.count, 0);

      // notify_url: the same rule, and nothing is created
      const [{ n: before }] = await h.sql<{ n: number }[]>`
        select count(*)::int as n from data_exports`;
      const notify = await apiJson(h, "POST", "/api/v2/exports/", p.tokens.owner, {
        project: p.projectId,
        format: "occurrences_simple_csv",
        notify_url: "http://192.168.0.10/hook",
      });
      assertEquals(notify.status, 400);
      assertEquals(
        notify.json.error,
        "webhook URL refused: notify_url: private address 192.168.0.10",
      );
      // not a URL: the same words as a webhook's url, not the pattern
      const notURL = await apiJson(h, "POST", "/api/v2/exports/", p.tokens.owner, {
        project: p.projectId,
        format: "occurrences_simple_csv",
        notify_url: "ftp://example.org/hook",
      });
      assertEquals(notURL.status, 400);
      assertEquals(notURL.json.fields, { notify_url: ["must be an http or https URL"] });
      const [{ n: after }] = await h.sql<{ n: number }[]>`
        select count(*)::int as n from data_exports`;
      assertEquals(after, before);

      // permissions: manage = the right to create exports (docs/http-api.md, "Who may do what")
      const body = { url: "http://10.9.9.9/" }; // refused after the permission check
      assertEquals((await h.api("POST", path, { token: p.tokens.basic_member, body })).status, 403);
      assertEquals((await h.api("GET", path, { token: p.tokens.ml_data_manager })).status, 403);
      assertEquals((await h.api("POST", path, { token: p.tokens.researcher, body })).status, 400);
      const draft = await createProject(h.sql, { draft: true });
      const draftPath = `/api/v2/projects/${draft.projectId}/webhooks/`;
      assertEquals((await h.api("GET", draftPath, { token: p.tokens.non_member })).status, 404);
      assertEquals((await h.api("GET", draftPath, { token: draft.tokens.owner })).status, 200);
      assertEquals((await h.api("GET", path)).status, 401);
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name:
    "webhooks: deliveries show a webhook's URL to who may manage webhooks, a notify_url to its requester, neither (nor errors naming them) to other readers",
  ...serviceTest,
  async fn() {
    const h = await startHarness({
      storage: "fs",
      env: { WEBHOOK_ALLOW_PRIVATE: "true" },
      worker: false,
    });
    try {
      const p = await createProject(h.sql, { draft: false });
      // capability URLs, as Slack's and Teams' incoming webhooks are: the path is the secret
      const hookUrl = "http://127.0.0.1:9/services/T000/SECRET-PROJECT-HOOK";
      const notifyUrl = "http://127.0.0.1:9/notify/SECRET-NOTIFY-URL";
      const hook = await apiJson(
        h,
        "POST",
        `/api/v2/projects/${p.projectId}/webhooks/`,
        p.tokens.owner,
        {
          url: hookUrl,
        },
      );
      assertEquals(hook.status, 201, JSON.stringify(hook.json));
      const created = await apiJson(h, "POST", "/api/v2/exports/", p.tokens.researcher, {
        project: p.projectId,
        format: "occurrences_simple_csv",
        notify_url: notifyUrl,
      });
      assertEquals(created.status, 201, JSON.stringify(created.json));
      const exportId = created.json.id as number;
      // an end's events and two failed attempts each, recorded as the delivery activity does
      const events = await inTransaction(h.sql, (tx) => insertEndEvents(tx, exportId, "FAILURE"));
      assertEquals(events.length, 2);
      for (const eventId of events) {
        const [{ url }] = await h.sql<{ url: string }[]>`
          select coalesce(w.url, e.notify_url) as url from webhook_events v
          join data_exports e on e.id = v.export_id left join webhooks w on w.id = v.webhook_id
          where v.id = ${eventId}`;
        await recordAttempt(h.sql, {
          eventId,
          attempt: 1,
          statusCode: null,
          error: `TypeError: fetch failed: error sending request for url (${url}): connect error`,
          nextTryAt: new Date(Date.now() + 5000),
        });
        await recordAttempt(h.sql, {
          eventId,
          attempt: 2,
          statusCode: 302,
          error: `redirect not followed: 302 to ${url}/moved`,
          nextTryAt: null,
        });
      }
      const sees: Record<string, [boolean, boolean]> = { // [project hook, notify_url]
        superuser: [true, true],
        owner: [true, false],
        project_manager: [true, false],
        researcher: [true, true], // may manage webhooks, and requested the export
        ml_data_manager: [false, false],
        basic_member: [false, false],
        non_member: [false, false], // the project is public: it reads the export
      };
      for (const [role, [seesHook, seesNotify]] of Object.entries(sees)) {
        const token = p.tokens[role as keyof typeof p.tokens];
        const res = await h.api("GET", `/api/v2/exports/${exportId}/deliveries/`, { token });
        assertEquals(res.status, 200, role);
        const text = await res.text();
        assertEquals(text.includes("SECRET-PROJECT-HOOK"), seesHook, `${role}: ${text}`);
        assertEquals(text.includes("SECRET-NOTIFY-URL"), seesNotify, `${role}: ${text}`);
        const results = (JSON.parse(text) as { results: DeliveryEvent[] }).results;
        for (const event of results) {
          const visible = event.webhook_id === null ? seesNotify : seesHook;
          assertEquals(
            event.url,
            visible ? (event.webhook_id === null ? notifyUrl : hookUrl) : null,
          );
          if (!visible) {
            assertEquals(event.attempts.map((a) => [a.status_code, a.error]), [
              [null, "no answer (network error or timeout)"],
              [302, "redirect not followed: 302"],
            ], role);
          }
        }
      }
      // the list of webhooks says the same: 403 to who may not manage them
      const list = `/api/v2/projects/${p.projectId}/webhooks/`;
      assertEquals((await h.api("GET", list, { token: p.tokens.basic_member })).status, 403);
      assertEquals((await h.api("GET", list, { token: p.tokens.non_member })).status, 403);
    } finally {
      await h.close();
    }
  },
});
