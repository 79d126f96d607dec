/**
 * Who may do what, through the API with real tokens: every role × action pair on a public and a
 * draft project (allowed and denied), reading and listing rules, downloads (presigned and public
 * base URL mode), `user_permissions`, and the token commands of the operator CLI.
 */
import { hashToken } from "../domain/users.ts";
import {
  createProject,
  createUser,
  type Role,
  ROLES,
  type TestProject,
} from "./fixtures/access.ts";
import { createApp } from "../api/mod.ts";
import { type ExportIdentity, exportWorkflowId, insertExport } from "../db/exports.ts";
import { assert, assertEquals } from "./assert.ts";
import { type Harness, startHarness } from "./harness.ts";
import { requireEnv, serviceTest } from "./support.ts";

type Action = "create" | "delete" | "cancel" | "retry";

/** The issue's table, written out independently of domain/permissions.ts. */
const EXPECTED: Record<Role, Action[]> = {
  superuser: ["create", "delete", "cancel", "retry"],
  owner: ["create", "delete", "cancel", "retry"],
  project_manager: ["create", "delete", "cancel", "retry"],
  researcher: ["create", "delete"],
  ml_data_manager: ["cancel", "retry"],
  basic_member: [],
  non_member: [],
};

function mayRead(role: Role, draft: boolean): boolean {
  return !draft || role !== "non_member";
}

/** The status a denied mutation gets: 404 when the caller may not even see the export. */
function deniedStatus(role: Role, draft: boolean): number {
  return mayRead(role, draft) ? 403 : 404;
}

/** An export row in `status`, without a workflow. */
async function exportRow(
  h: Harness,
  p: TestProject,
  status: string,
  fileKey?: string,
): Promise<number> {
  const created = await insertExport(h.sql, {
    userId: p.userIds.owner,
    projectId: p.projectId,
    format: "occurrences_simple_csv",
    filters: {},
    filtersDisplay: {},
  });
  // the size of the file at fileKey: a download checks storage holds the file as written
  const size = fileKey ? (await h.storage.headObject(fileKey))?.size ?? 0 : 0;
  await h.sql`update data_exports set status = ${status}, file_key = ${fileKey ?? null},
    file_size = ${size}
    where id = ${created.id}`;
  return created.id;
}

/** A PENDING export whose workflow waits on `taskQueue`, which no worker polls. */
async function runningExport(
  h: Harness,
  p: TestProject,
  taskQueue: string,
): Promise<ExportIdentity> {
  const id = await exportRow(h, p, "PENDING");
  const [created] = await h.sql<ExportIdentity[]>`
    select id, file_uuid::text from data_exports where id = ${id}`;
  await h.temporal.client.workflow.start("exportWorkflow", {
    taskQueue,
    workflowId: exportWorkflowId(created),
    args: [{ exportId: created.id }],
  });
  return created;
}

async function statusOf(h: Harness, id: number): Promise<string | undefined> {
  const [row] = await h.sql<{ status: string }[]>`
    select status from data_exports where id = ${id}`;
  return row?.status;
}

Deno.test({
  name: "permissions: every role × action, reading, listing and downloads",
  ...serviceTest,
  async fn(t) {
    const h = await startHarness({
      storage: "s3",
      env: { DOWNLOAD_URL_EXPIRY_SECONDS: "120" },
    });
    const idleQueue = `idle-${crypto.randomUUID().slice(0, 8)}`;
    const idleWorkflows: string[] = [];
    try {
      const projects = [
        await createProject(h.sql, { draft: false }),
        await createProject(h.sql, { draft: true }),
      ];

      for (const p of projects) {
        const kind = p.draft ? "draft" : "public";
        const fileKey = `exports/${p.slug}_export-file.csv`;
        const content = new TextEncoder().encode("id\n1\n");
        const upload = await h.storage.beginUpload(fileKey, "text/csv");
        await h.storage.completeUpload(await h.storage.appendPart(upload, content));
        const withFile = await exportRow(h, p, "SUCCESS", fileKey);

        await t.step(`${kind} project: read, list and download by role`, async () => {
          for (const role of ROLES) {
            const token = p.tokens[role];
            const readable = mayRead(role, p.draft);
            const res = await h.api("GET", `/api/v2/exports/${withFile}/`, { token });
            const body = await res.json();
            assertEquals(res.status, readable ? 200 : 404, `${role}: ${JSON.stringify(body)}`);
            if (readable) {
              assertEquals(body.user_permissions, EXPECTED[role], `${role} user_permissions`);
            } else {
              assert(String(body.error).includes("not found"), body.error);
            }

            const list = await h.api("GET", `/api/v2/exports/?project_id=${p.projectId}`, {
              token,
            });
            const listed = await list.json();
            assertEquals(list.status, readable ? 200 : 404, `${role} list`);
            if (readable) {
              assert(listed.results.some((r: { id: number }) => r.id === withFile));
              for (const r of listed.results) assertEquals(r.user_permissions, EXPECTED[role]);
            }

            const download = await h.api("GET", `/api/v2/exports/${withFile}/download/`, {
              token,
            });
            assertEquals(download.status, readable ? 302 : 404, `${role} download`);
            if (readable) {
              const location = download.headers.get("location")!;
              assert(location.includes("X-Amz-Expires=120"), location);
              assertEquals(new Uint8Array(await (await fetch(location)).arrayBuffer()), content);
            } else {
              await download.body?.cancel();
            }
          }
        });

        await t.step(`${kind} project: create by role`, async () => {
          for (const role of ROLES) {
            const res = await h.api("POST", "/api/v2/exports/", {
              token: p.tokens[role],
              body: { project: p.projectId, format: "occurrences_simple_csv", force: true },
            });
            const body = await res.json();
            const allowed = EXPECTED[role].includes("create");
            const denied = mayRead(role, p.draft) ? 403 : 400;
            assertEquals(res.status, allowed ? 201 : denied, `${role}: ${JSON.stringify(body)}`);
            if (allowed) {
              assertEquals(body.user.id, p.userIds[role]);
              assertEquals(body.user_permissions, EXPECTED[role]);
            } else {
              assertEquals(typeof body.error, "string");
            }
          }
        });

        await t.step(`${kind} project: delete by role`, async () => {
          for (const role of ROLES) {
            const id = await exportRow(h, p, "SUCCESS");
            const res = await h.api("DELETE", `/api/v2/exports/${id}/`, { token: p.tokens[role] });
            const allowed = EXPECTED[role].includes("delete");
            assertEquals(res.status, allowed ? 204 : deniedStatus(role, p.draft), role);
            await res.body?.cancel();
            assertEquals(await statusOf(h, id), allowed ? undefined : "SUCCESS", `${role} row`);
          }
        });

        await t.step(`${kind} project: cancel by role`, async () => {
          for (const role of ROLES) {
            const running = await runningExport(h, p, idleQueue);
            const id = running.id;
            idleWorkflows.push(exportWorkflowId(running));
            const res = await h.api("POST", `/api/v2/exports/${id}/cancel/`, {
              token: p.tokens[role],
            });
            const allowed = EXPECTED[role].includes("cancel");
            assertEquals(res.status, allowed ? 202 : deniedStatus(role, p.draft), role);
            await res.body?.cancel();
            const history = await h.temporal.client.workflow.getHandle(exportWorkflowId(running))
              .fetchHistory();
            const requested = history.events!.some((e) =>
              e.workflowExecutionCancelRequestedEventAttributes
            );
            assertEquals(requested, allowed, `${role}: cancel requested in Temporal`);
          }
        });

        await t.step(`${kind} project: cancel and retry take no field`, async () => {
          // a key is a 400 naming it, a body that is not JSON a 415: nothing changes either way
          const running = await runningExport(h, p, idleQueue);
          idleWorkflows.push(exportWorkflowId(running));
          const failed = await exportRow(h, p, "FAILURE");
          for (
            const [id, action, before] of [
              [running.id, "cancel", "PENDING"],
              [failed, "retry", "FAILURE"],
            ] as const
          ) {
            const keyed = await h.api("POST", `/api/v2/exports/${id}/${action}/`, {
              token: p.tokens.owner,
              body: { reason: "no longer needed" },
            });
            const body = await keyed.json();
            assertEquals(keyed.status, 400, JSON.stringify(body));
            assertEquals(body.fields, { reason: ["is not accepted by this request"] });
            const text = await h.app.request(`/api/v2/exports/${id}/${action}/`, {
              method: "POST",
              headers: { Authorization: `Token ${p.tokens.owner}`, "Content-Type": "text/plain" },
              body: "now",
            });
            assertEquals(text.status, 415, action);
            await text.body?.cancel();
            assertEquals(await statusOf(h, id), before, action);
          }
          const handle = h.temporal.client.workflow.getHandle(exportWorkflowId(running));
          const requested = async () =>
            (await handle.fetchHistory()).events!.some((e) =>
              e.workflowExecutionCancelRequestedEventAttributes
            );
          assert(!(await requested()), "no cancel requested in Temporal");
          // a JSON content type with no byte (curl -X POST -H 'Content-Type: application/json')
          // is no body: the cancel goes through
          const empty = await h.app.request(`/api/v2/exports/${running.id}/cancel/`, {
            method: "POST",
            headers: {
              Authorization: `Token ${p.tokens.owner}`,
              "Content-Type": "application/json",
            },
          });
          assertEquals(empty.status, 202, await empty.text());
          assert(await requested(), "cancel requested in Temporal");
        });

        await t.step(`${kind} project: retry by role`, async () => {
          for (const role of ROLES) {
            const id = await exportRow(h, p, "FAILURE");
            const res = await h.api("POST", `/api/v2/exports/${id}/retry/`, {
              token: p.tokens[role],
            });
            const allowed = EXPECTED[role].includes("retry");
            assertEquals(res.status, allowed ? 202 : deniedStatus(role, p.draft), role);
            await res.body?.cancel();
            if (allowed) {
              const done = await h.waitForExport(id, p.tokens.owner);
              assertEquals(done.status, "SUCCESS", JSON.stringify(done));
            } else {
              assertEquals(await statusOf(h, id), "FAILURE");
            }
          }
        });
      }

      await t.step("listing without project_id shows only readable exports", async () => {
        const [pub, draft] = projects;
        const ours = async (token: string): Promise<Set<number>> => {
          const mine = new Set<number>();
          let url: string | null = "/api/v2/exports/?limit=100";
          while (url) {
            const res: Response = await h.api("GET", url, { token });
            assertEquals(res.status, 200);
            const page: { next: string | null; results: { id: number; project: number }[] } =
              await res.json();
            for (const r of page.results) {
              if (r.project === pub.projectId || r.project === draft.projectId) {
                mine.add(r.project);
              }
            }
            url = page.next && new URL(page.next).pathname + new URL(page.next).search;
          }
          return mine;
        };
        // the draft project's non-member is a stranger to both projects
        assertEquals(await ours(draft.tokens.non_member), new Set([pub.projectId]));
        assertEquals(
          await ours(draft.tokens.basic_member),
          new Set([pub.projectId, draft.projectId]),
        );
        assertEquals(await ours(draft.tokens.superuser), new Set([pub.projectId, draft.projectId]));
      });

      await t.step("no token, bad token: 401 with a message", async () => {
        for (const token of [undefined, "not-a-token"]) {
          const res = await h.api("GET", "/api/v2/exports/", { token });
          assertEquals(res.status, 401);
          assert(String((await res.json()).error).length > 0);
        }
      });

      await t.step("public base URL mode: file_url and download use base + key", async () => {
        const p = projects[1];
        const [{ id }] = await h.sql<{ id: number }[]>`
          select id from data_exports
          where project_id = ${p.projectId} and file_key = ${`exports/${p.slug}_export-file.csv`}`;
        const app = createApp({
          sql: h.sql,
          storage: h.storage,
          temporal: h.temporal.client,
          config: { ...h.config, publicFilesBaseUrl: "https://files.example.org/bucket" },
        });
        const get = (path: string, token: string) =>
          app.request(path, { headers: { Authorization: `Token ${token}` } });
        const expected = `https://files.example.org/bucket/exports/${p.slug}_export-file.csv`;
        const body = await (await get(`/api/v2/exports/${id}/`, p.tokens.basic_member)).json();
        assertEquals(body.file_url, expected);
        const res = await get(`/api/v2/exports/${id}/download/`, p.tokens.basic_member);
        assertEquals(res.status, 302);
        assertEquals(res.headers.get("location"), expected);
        const stranger = await get(`/api/v2/exports/${id}/download/`, p.tokens.non_member);
        assertEquals(stranger.status, 404);
        await stranger.body?.cancel();
      });
    } finally {
      for (const workflowId of idleWorkflows) {
        await h.temporal.client.workflow.getHandle(workflowId).terminate("test done").catch(
          () => {},
        );
      }
      await h.close();
    }
  },
});

Deno.test({
  name: "operator CLI: create-token gives a working token, revoke-token disables it",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "s3" });
    try {
      const [userId] = await createUser(h.sql, "cli-user");
      const cli = async (...args: string[]): Promise<{ code: number; stdout: string }> => {
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "cli/main.ts", ...args],
          env: { DATABASE_URL: requireEnv("TEST_DATABASE_URL") },
          stdout: "piped",
          stderr: "piped",
        }).output();
        return { code: out.code, stdout: new TextDecoder().decode(out.stdout).trim() };
      };
      const created = await cli("create-token", "--user", String(userId), "--name", "laptop");
      assertEquals(created.code, 0);
      const token = created.stdout.split("\n").pop()!;
      const [stored] = await h.sql`select token_hash, name from api_tokens where user_id = ${userId}
        and name = 'laptop'`;
      assertEquals(stored.token_hash, await hashToken(token));
      assertEquals((await h.api("GET", "/api/v2/exports/", { token })).status, 200);
      assertEquals((await cli("revoke-token", "--token", token)).code, 0);
      assertEquals((await h.api("GET", "/api/v2/exports/", { token })).status, 401);
      assertEquals((await cli("revoke-token", "--token", token)).code, 2);
      assertEquals((await cli("create-token", "--user", "999999999")).code, 2);
    } finally {
      await h.close();
    }
  },
});
