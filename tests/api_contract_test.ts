/**
 * The API's contract: the OpenAPI 3.1 document covers every route and every response of these
 * tests validates against its documented schema; the docs page and `GET /` redirecting to it;
 * listing (ordering, filters, pagination, bad values); `/healthz` up and down.
 */
import { contractViolation } from "../api/contract.ts";
import { createApp } from "../api/mod.ts";
import { connectDatabase } from "../db/client.ts";
import { insertExport } from "../db/exports.ts";
import { createStorage } from "../storage/mod.ts";
import { assert, assertEquals } from "./assert.ts";
import { createProject } from "./fixtures/access.ts";
import { startHarness } from "./harness.ts";
import { callDocumented } from "./openapi_support.ts";
import { serviceTest } from "./support.ts";

/** Calls `app` and checks the response against the document. */
const call = callDocumented;

function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

Deno.test({
  name: "API contract: OpenAPI document, docs page and its redirect, listing, healthz",
  ...serviceTest,
  async fn(t) {
    const h = await startHarness({ storage: "s3" });
    const deps = { sql: h.sql, storage: h.storage, config: h.config, temporal: h.temporal.client };
    const app = createApp(deps);
    try {
      const p = await createProject(h.sql, { draft: false });
      const owner = p.tokens.owner;

      await t.step("document: OpenAPI 3.1, public, every route documented", async () => {
        const res = await app.request("/api/v2/openapi.json");
        assertEquals(res.status, 200);
        const doc = await res.json();
        assertEquals(doc.openapi, "3.1.0");
        assert(doc.components.schemas.Export, "Export schema");
        assert(doc.components.securitySchemes.TokenAuth, "token auth scheme");
        const paths = Object.fromEntries(
          Object.entries(doc.paths as Record<string, unknown>).map((
            [k, v],
          ) => [k.replace(/\/+$/, ""), v as Record<string, unknown>]),
        );
        const served = app.routes.filter((r) =>
          r.method !== "ALL" && (r.path.startsWith("/api/v2/") || r.path === "/healthz") &&
          r.path !== "/api/v2/openapi.json" && !r.path.startsWith("/api/v2/docs")
        );
        assert(served.length >= 9, `routes: ${served.map((r) => r.path)}`);
        for (const route of served) {
          const path = route.path.replace(/:(\w+)/g, "{$1}").replace(/\/+$/, "");
          assert(paths[path], `route not in the document: ${route.method} ${route.path}`);
          assert(
            paths[path][route.method.toLowerCase()],
            `method not in the document: ${route.method} ${route.path}`,
          );
        }
        const create = paths["/api/v2/exports"].post as {
          requestBody: { content: Record<string, { schema: unknown }> };
        };
        assert(create.requestBody.content["application/json"].schema, "create body schema");
      });

      await t.step("a body past 1 MiB: 413, documented on every route that reads one", async () => {
        const path = "/api/v2/exports/";
        const res = await app.request(path, {
          method: "POST",
          headers: { Authorization: `Token ${owner}`, "Content-Type": "application/json" },
          body: JSON.stringify({ project: p.projectId, format: "x".repeat(2 * 1024 * 1024) }),
        });
        assertEquals(res.status, 413);
        assertEquals(await contractViolation(app, "POST", path, res.clone()), undefined);
        assert(((await res.json()).error as string).startsWith("request body larger than"));
        const doc = await (await app.request("/api/v2/openapi.json")).json();
        const withBody = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
          .flatMap(([route, ops]) =>
            Object.entries(ops).filter(([, op]) => (op as { requestBody?: unknown }).requestBody)
              .map(([method, op]) => ({ route, method, op: op as { responses: object } }))
          );
        assert(withBody.length >= 5, JSON.stringify(withBody.map((o) => o.route)));
        for (const { route, method, op } of withBody) {
          assert("413" in op.responses, `413 not documented: ${method} ${route}`);
        }
      });

      await t.step("contract check: catches undocumented statuses and wrong bodies", async () => {
        const path = "/api/v2/exports/formats/";
        const good = await app.request(path, { headers: { Authorization: `Token ${owner}` } });
        assertEquals(await contractViolation(app, "GET", path, good), undefined);
        const wrong = Response.json({ count: "many", results: [] });
        assert((await contractViolation(app, "GET", path, wrong))?.includes("does not match"));
        const teapot = Response.json({ error: "tea" }, { status: 418 });
        assert((await contractViolation(app, "GET", path, teapot))?.includes("not documented"));
        assertEquals(Deno.env.get("API_VALIDATE_RESPONSES"), "1", "the runner turns checks on");
      });

      await t.step("docs page: Swagger UI served with its own assets", async () => {
        const page = await app.request("/api/v2/docs");
        assertEquals(page.status, 200);
        const html = await page.text();
        assert(html.includes("/api/v2/openapi.json") && html.includes("SwaggerUIBundle"));
        for (const asset of ["swagger-ui-bundle.js", "swagger-ui.css"]) {
          assert(html.includes(`/api/v2/docs/assets/${asset}`), asset);
          const res = await app.request(`/api/v2/docs/assets/${asset}`);
          assertEquals(res.status, 200);
          assert((await res.arrayBuffer()).byteLength > 10_000, `${asset} size`);
        }
        const missing = await app.request("/api/v2/docs/assets/nope.js");
        assertEquals(missing.status, 404);
        await missing.body?.cancel();
      });

      await t.step("discovery: GET / redirects a browser to the reference page", async () => {
        for (const method of ["GET", "HEAD"]) {
          const res = await app.request("/", { method, headers: { Accept: "text/html" } });
          assertEquals(res.status, 302, method);
          assertEquals(res.headers.get("Location"), "/api/v2/docs", method);
          await res.body?.cancel();
        }
        const page = await app.request("/api/v2/docs"); // where the redirect points
        assertEquals(page.status, 200);
        assert(
          (await page.text()).includes("SwaggerUIBundle"),
          "the redirect's target is the page",
        );
        const post = await app.request("/", { method: "POST" });
        assertEquals(post.status, 405);
        assertEquals(post.headers.get("Allow"), "GET, HEAD");
        await post.body?.cancel();
      });

      await t.step("listing: ordering, status and format filters, pagination", async () => {
        const specs = [
          { format: "occurrences_simple_csv", status: "SUCCESS", size: 300, age: 1 },
          { format: "occurrences_api_json", status: "FAILURE", size: 100, age: 5 },
          { format: "occurrences_simple_csv", status: "FAILURE", size: 500, age: 3 },
          { format: "occurrences_api_json", status: "SUCCESS", size: 200, age: 4 },
          { format: "occurrences_simple_csv", status: "PENDING", size: 400, age: 2 },
        ];
        const ids: number[] = [];
        for (const s of specs) {
          const { id } = await insertExport(h.sql, {
            userId: p.userIds.owner,
            projectId: p.projectId,
            format: s.format,
            filters: {},
            filtersDisplay: {},
          });
          // (updated within the last minute: a PENDING row unchanged for longer, with no
          // workflow, is a lost export, which a list ends: activities/lost_exports.ts)
          await h.sql`update data_exports set status = ${s.status}, file_size = ${s.size},
            created_at = now() - make_interval(hours => ${s.age}),
            updated_at = now() - make_interval(secs => ${s.size / 10})
            where id = ${id}`;
          ids.push(id);
        }
        const list = async (query: string): Promise<number[]> => {
          const res = await call(
            app,
            "GET",
            `/api/v2/exports/?project_id=${p.projectId}&${query}`,
            { token: owner },
          );
          assertEquals(res.status, 200, JSON.stringify(res.body));
          return res.body.results.map((r: { id: number }) => r.id);
        };
        const [a, b, c, d, e] = ids;
        assertEquals(await list(""), [e, d, c, b, a]);
        assertEquals(await list("ordering=id"), [a, b, c, d, e]);
        assertEquals(await list("ordering=file_size"), [b, d, a, e, c]);
        assertEquals(await list("ordering=-file_size"), [c, e, a, d, b]);
        assertEquals(await list("ordering=format"), [b, d, a, c, e]);
        assertEquals(await list("ordering=-format"), [e, c, a, d, b]);
        assertEquals(await list("ordering=created_at"), [b, d, c, e, a]);
        assertEquals(await list("ordering=-updated_at"), [b, d, a, e, c]);
        assertEquals(await list("status=FAILURE"), [c, b]);
        assertEquals(await list("format=occurrences_api_json"), [d, b]);
        assertEquals(await list("status=SUCCESS&format=occurrences_simple_csv"), [a]);

        const page = await call(
          app,
          "GET",
          `/api/v2/exports/?project_id=${p.projectId}&limit=2&offset=2&ordering=id`,
          { token: owner },
        );
        assertEquals(page.body.count, 5);
        assertEquals(page.body.results.map((r: { id: number }) => r.id), [c, d]);
        const next = new URL(page.body.next);
        assertEquals(next.searchParams.get("offset"), "4");
        assertEquals(next.searchParams.get("ordering"), "id");
        assertEquals(new URL(page.body.previous).searchParams.get("offset"), "0");
        const last = await call(
          app,
          "GET",
          `/api/v2/exports/?project_id=${p.projectId}&limit=2&offset=4`,
          { token: owner },
        );
        assertEquals(last.body.next, null);
        const all = await call(app, "GET", `/api/v2/exports/?project_id=${p.projectId}`, {
          token: owner,
        });
        assertEquals(all.body.results.length, 5, "default page size 10 holds all 5");
      });

      await t.step("listing: bad values are 400 naming the parameter", async () => {
        const range = (field: string, min: number, max: number): string =>
          `${field} must be an integer from ${min} to ${max}`;
        for (
          const [query, field, error] of [
            ["ordering=name", "ordering", "ordering must be one of: id, -id, "],
            ["ordering=--id", "ordering", "ordering must be one of: "],
            ["status=DONE", "status", "status must be one of: PENDING, STARTED, "],
            ["format=xlsx", "format", "format must be one of: "],
            // zod said "expected number, received string" for every one of these
            ["limit=-1", "limit", range("limit", 1, 100)],
            ["limit=0", "limit", range("limit", 1, 100)],
            ["limit=101", "limit", range("limit", 1, 100)],
            ["limit=2.5", "limit", range("limit", 1, 100)],
            ["offset=-1", "offset", range("offset", 0, Number.MAX_SAFE_INTEGER)],
            ["project_id=abc", "project_id", range("project_id", 1, Number.MAX_SAFE_INTEGER)],
          ]
        ) {
          const res = await call(app, "GET", `/api/v2/exports/?${query}`, { token: owner });
          assertEquals(res.status, 400, query);
          assert(res.body.error.startsWith(error), `${query}: ${res.body.error}`);
          assertEquals(Object.keys(res.body.fields), [field], `${query}: fields`);
          // the error is the fields' messages after their names
          assertEquals(`${field} ${res.body.fields[field].join(", and ")}`, res.body.error);
        }
        // two bad parameters: both named, in one message
        const two = await call(app, "GET", "/api/v2/exports/?limit=-1&offset=x", { token: owner });
        assertEquals(two.status, 400);
        assertEquals(Object.keys(two.body.fields).sort(), ["limit", "offset"]);
        assert(two.body.error.includes(range("limit", 1, 100)), two.body.error);
        // a well-formed project_id of no readable project: 404, and the parameter is named
        for (const path of ["/api/v2/exports/", "/api/v2/export-schedules/"]) {
          const none = await call(app, "GET", `${path}?project_id=999999999`, { token: owner });
          assertEquals(none.status, 404, path);
          assertEquals(none.body.error, "project not found: 999999999", path);
          assertEquals(none.body.fields, { project_id: ["project not found: 999999999"] }, path);
        }
      });

      await t.step("create: every 400 names the bad part of the request under fields", async () => {
        const create = (body: Record<string, unknown>) =>
          call(app, "POST", "/api/v2/exports/", {
            token: owner,
            body: { project: p.projectId, format: "occurrences_simple_csv", ...body },
          });
        for (
          const [body, field] of [
            // these had no `fields` (filters, project, format) or named the option without its
            // place in the body
            [{ filters: { taxon_id: 999_999_999 } }, "filters.taxon_id"],
            [{ filters: { nope: 1 } }, "filters.nope"],
            [{ filters: { date_start: "2024-02-02", date_end: "2024-02-01" } }, "filters.date_end"],
            [{ project: 999_999_999 }, "project"],
            [{ format: "xlsx" }, "format"],
            [{ format: "crops_by_taxon", options: { jpeg_quality: 0 } }, "options.jpeg_quality"],
            [{ options: { split_seed: "a" } }, "options.split_seed"],
            [{ excel_compatible: "yes" }, "excel_compatible"],
            [{ columns: ["nope"] }, "columns"],
            [{ bogus: 1 }, "bogus"],
          ] as [Record<string, unknown>, string][]
        ) {
          const res = await create(body);
          const text = JSON.stringify(res.body);
          assertEquals(res.status, 400, text);
          assertEquals(Object.keys(res.body.fields), [field], text);
          assert(
            res.body.fields[field].every((m: unknown) => typeof m === "string" && m.length > 0),
            text,
          );
          assert(!/expected \w+, received/.test(text), text);
        }
      });

      await t.step("every export route answers as documented", async () => {
        const formats = await call(app, "GET", "/api/v2/exports/formats/", { token: owner });
        assertEquals(formats.status, 200);
        const created = await call(app, "POST", "/api/v2/exports/", {
          token: owner,
          body: { project: p.projectId, format: "occurrences_simple_csv", force: true },
        });
        assertEquals(created.status, 201);
        const id = created.body.id;
        await h.waitForExport(id, owner);
        const got = await call(app, "GET", `/api/v2/exports/${id}/?logs=true`, { token: owner });
        assertEquals(got.body.status, "SUCCESS");
        assert(got.body.logs.length > 0, "log lines");
        const download = await call(app, "GET", `/api/v2/exports/${id}/download/`, {
          token: owner,
        });
        assertEquals(download.status, 302);
        assertEquals(
          (await call(app, "POST", `/api/v2/exports/${id}/cancel/`, { token: owner }))
            .status,
          409,
        );
        assertEquals(
          (await call(app, "POST", `/api/v2/exports/${id}/retry/`, { token: owner }))
            .status,
          409,
        );
        const forbidden = await call(app, "POST", "/api/v2/exports/", {
          token: p.tokens.basic_member,
          body: { project: p.projectId, format: "occurrences_simple_csv" },
        });
        assertEquals(forbidden.status, 403);
        const bad = await call(app, "POST", "/api/v2/exports/", {
          token: owner,
          body: { project: p.projectId, format: "xlsx" },
        });
        assertEquals(bad.status, 400);
        assertEquals(
          (await call(app, "GET", "/api/v2/exports/abc/", { token: owner })).status,
          400,
        );
        assertEquals((await call(app, "GET", "/api/v2/exports/", {})).status, 401);
        assertEquals(
          (await call(app, "DELETE", `/api/v2/exports/${id}/`, { token: owner })).status,
          204,
        );
        const gone = await call(app, "GET", `/api/v2/exports/${id}/`, { token: owner });
        assertEquals(gone.status, 404);
      });

      await t.step("healthz: 200 when every dependency answers", async () => {
        const res = await call(app, "GET", "/healthz");
        assertEquals(res.status, 200, JSON.stringify(res.body));
        assertEquals(res.body, {
          status: "ok",
          checks: { database: "ok", temporal: "ok", storage: "ok", workers: "ok" },
        });
      });

      await t.step("healthz: 503 naming the dependencies that are down", async () => {
        const port = closedPort();
        const deadSql = connectDatabase(`postgres://postgres@127.0.0.1:${port}/none`, { max: 1 });
        const deadStorage = createStorage({
          ...h.config,
          s3: { ...h.config.s3, endpoint: `http://127.0.0.1:${port}` },
        });
        try {
          const broken = createApp({ ...deps, sql: deadSql, storage: deadStorage });
          const res = await call(broken, "GET", "/healthz");
          assertEquals(res.status, 503);
          assertEquals(res.body.status, "unavailable");
          assertEquals(res.body.checks.temporal, "ok");
          assert(res.body.checks.database !== "ok", "database reported down");
          assert(res.body.checks.storage !== "ok", "storage reported down");
          const onlyStorage = createApp({ ...deps, storage: deadStorage });
          const res2 = await call(onlyStorage, "GET", "/healthz");
          assertEquals(res2.status, 503);
          assertEquals(res2.body.checks.database, "ok");
        } finally {
          await deadSql.end({ timeout: 1 });
        }
      });
    } finally {
      await h.close();
    }
  },
});
