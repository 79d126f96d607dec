/**
 * Issue 23, "every request path answers 4xx or works, never 500": hostile input on every route
 * (malformed percent-escapes, invalid UTF-8, NUL bytes, lone surrogates, ids beyond 2^53 and
 * bigint, huge and odd-typed JSON, deep nesting, long headers and paths) answers a 4xx with a
 * JSON error, and every URL the API signs downloads, whatever the project's slug holds, on the
 * filesystem backend (`/files/`), on S3 (presigned) and in public files mode.
 */
import { exportFileKey } from "../activities/mod.ts";
import { insertExport } from "../db/exports.ts";
import { signedDownloadUrl } from "../domain/download_link.ts";
import { assert, assertEquals } from "./assert.ts";
import { createProject, type TestProject } from "./fixtures/access.ts";
import { type Harness, startHarness } from "./harness.ts";
import { serviceTest } from "./support.ts";

/** What a request got, for a readable failure. */
interface Outcome {
  label: string;
  status: number;
  body: string;
}

async function send(h: Harness, label: string, request: Request): Promise<Outcome> {
  const res = await h.app.request(request);
  return { label, status: res.status, body: await res.text() };
}

/** Asserts a 4xx with a JSON `{"error"}` body (and `status` when given). */
function assertClientError(outcome: Outcome, status?: number): void {
  const detail = `${outcome.label}: ${outcome.status} ${outcome.body.slice(0, 300)}`;
  assert(outcome.status >= 400 && outcome.status < 500, detail);
  if (status !== undefined) assertEquals(outcome.status, status, detail);
  const parsed = JSON.parse(outcome.body);
  assertEquals(typeof parsed.error, "string", detail);
  // every 400 names the bad parameters: {"fields": {name: [message, …]}} (docs/http-api.md)
  if (outcome.status === 400) {
    const fields = Object.entries(parsed.fields ?? {});
    assert(fields.length > 0, `${detail}: no fields`);
    for (const [, messages] of fields) {
      assert(
        Array.isArray(messages) && messages.length > 0 &&
          messages.every((m) => typeof m === "string" && m.length > 0),
        `${detail}: fields`,
      );
    }
  }
}

function get(path: string, token?: string, headers: Record<string, string> = {}): Request {
  return new Request(`http://api.test${path}`, {
    headers: token ? { Authorization: `Token ${token}`, ...headers } : headers,
  });
}

function post(path: string, token: string, body: string | Uint8Array, type?: string): Request {
  return new Request(`http://api.test${path}`, {
    method: "POST",
    headers: { Authorization: `Token ${token}`, "Content-Type": type ?? "application/json" },
    body: body as BodyInit,
  });
}

/** A JSON array nested `depth` levels deep, as text (JSON.stringify would overflow). */
function deepArray(depth: number): string {
  return `${"[".repeat(depth)}1${"]".repeat(depth)}`;
}

Deno.test({
  name: "request paths: hostile path params, query strings and headers answer 4xx",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "fs", worker: false });
    try {
      const p = await createProject(h.sql, { draft: false });
      const token = p.tokens.owner;
      const cases: [string, Request, number?][] = [
        ["malformed escape in /files/", get("/files/%E0%A4%A"), 400],
        ["invalid UTF-8 in /files/", get("/files/exports/%FF%FE.csv"), 400],
        ["lone % in /files/", get("/files/exports/100%.csv"), 400],
        ["NUL in /files/ key", get("/files/exports/a%00.csv?expires=1&signature=00"), 403],
        [
          "garbage signature and expiry",
          get(`/files/exports/a.csv?expires=%E0%A4%A&signature=${"z".repeat(64)}`),
          403,
        ],
        [
          "expiry beyond any number",
          get(`/files/exports/a.csv?expires=${"9".repeat(400)}&signature=${"0".repeat(64)}`),
          403,
        ],
        ["malformed escape as export id", get("/api/v2/exports/%E0%A4%A/", token), 400],
        ["invalid UTF-8 as export id", get("/api/v2/exports/%FF/", token), 400],
        ["NUL as export id", get("/api/v2/exports/%00/", token), 400],
        ["id beyond bigint", get(`/api/v2/exports/${"9".repeat(30)}/`, token), 400],
        ["id beyond 2^53", get("/api/v2/exports/9007199254740993/", token), 400],
        ["id 1e400", get("/api/v2/exports/1e400/", token), 400],
        ["negative id", get("/api/v2/exports/-1/download/", token), 400],
        [
          "fractional id",
          new Request("http://api.test/api/v2/exports/1.5/cancel/", {
            method: "POST",
            headers: { Authorization: `Token ${token}` },
          }),
          400,
        ],
        ["malformed escape as schedule id", get("/api/v2/export-schedules/%E0%A4%A/", token), 400],
        ["malformed escape in limit", get("/api/v2/exports/?limit=%E0%A4%A", token), 400],
        ["huge project_id", get(`/api/v2/exports/?project_id=${"9".repeat(400)}`, token), 400],
        ["NUL ordering", get("/api/v2/exports/?ordering=%00", token), 400],
        ["invalid UTF-8 status", get("/api/v2/exports/?status=%FF", token), 400],
        ["format with a lone surrogate", get("/api/v2/exports/?format=%ED%A0%80", token), 400],
        ["offset 1e309", get("/api/v2/export-schedules/?offset=1e309", token), 400],
        ["logs flag NUL", get("/api/v2/exports/1/?logs=%00", token), 400],
        [
          "Latin-1 token",
          get("/api/v2/exports/", undefined, { Authorization: "Token \xff\xfe" }),
          401,
        ],
        [
          "100 KB token",
          get("/api/v2/exports/", undefined, { Authorization: `Token ${"t".repeat(100_000)}` }),
          401,
        ],
        ["malformed escape in a docs asset", get("/api/v2/docs/assets/%E0%A4%A"), 404],
        ["malformed escape in an unknown path", get("/nowhere/%E0%A4%A/%FF"), 404],
        ["10,000-character path", get(`/${"p".repeat(10_000)}`), 404],
        [
          "unknown method",
          new Request("http://api.test/api/v2/exports/1/", { method: "PATCH" }),
          405,
        ],
      ];
      for (const [label, request, status] of cases) {
        assertClientError(await send(h, label, request), status);
      }
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "request paths: a JSON body naming a member twice is a 400 naming it, nothing created",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "s3", worker: false });
    try {
      const p = await createProject(h.sql, { draft: false });
      const token = p.tokens.owner;
      const head = `"project": ${p.projectId}`;
      const cases: [string, string, string][] = [
        // JSON.parse keeps the last: this was a crops_by_taxon export, silently
        [
          "/api/v2/exports/",
          `{${head}, "format": "occurrences_simple_csv", "format": "crops_by_taxon"}`,
          "format",
        ],
        [
          "/api/v2/exports/",
          `{${head}, "format": "crops_by_taxon", "options": {"split_seed": "a", "split_seed": "b"}}`,
          "options.split_seed",
        ],
        [
          "/api/v2/exports/",
          `{${head}, "format": "occurrences_simple_csv", "filters": {"taxon_id": 1, ` +
          `"\\u0074axon_id": 2}}`,
          "filters.taxon_id",
        ],
        [
          "/api/v2/export-schedules/",
          `{${head}, "format": "occurrences_simple_csv", "interval": 60, "interval": 3600}`,
          "interval",
        ],
      ];
      for (const [path, body, field] of cases) {
        const outcome = await send(h, field, post(path, token, body));
        assertClientError(outcome, 400);
        const parsed = JSON.parse(outcome.body);
        assertEquals(Object.keys(parsed.fields), [field], outcome.body);
        assert(parsed.error.startsWith(`${field}: named twice`), outcome.body);
      }
      const [{ count }] = await h.sql<{ count: number }[]>`
        select (select count(*) from data_exports where project_id = ${p.projectId})::int +
          (select count(*) from export_schedules where project_id = ${p.projectId})::int as count`;
      assertEquals(count, 0);
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name: "request paths: JSON bodies with odd types, huge numbers, NUL and bad UTF-8 answer 4xx",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "s3", worker: false });
    try {
      const p = await createProject(h.sql, { draft: false });
      const token = p.tokens.owner;
      const exportBody = (filters: string, extra = ""): string =>
        `{"project": ${p.projectId}, "format": "occurrences_simple_csv"${extra}, "filters": ${filters}}`;
      const scheduleBody = (fields: string): string =>
        `{"project": ${p.projectId}, "format": "occurrences_simple_csv", ${fields}}`;
      const invalidUtf8 = new Uint8Array([
        ...new TextEncoder().encode(`{"project": ${p.projectId}, "format": "`),
        0xff,
        0xfe,
        0xc3,
        ...new TextEncoder().encode('"}'),
      ]);
      const exports = "/api/v2/exports/";
      const schedules = "/api/v2/export-schedules/";
      const cases: [string, Request, number?][] = [
        ["invalid UTF-8 body", post(exports, token, invalidUtf8), 400],
        ["truncated JSON", post(exports, token, '{"project": 1, "form'), 400],
        ["JSON null", post(exports, token, "null"), 400],
        ["JSON array", post(exports, token, "[1, 2]"), 400],
        ["JSON string", post(exports, token, '"\\u0000"'), 400],
        ["text/plain body", post(exports, token, exportBody("{}"), "text/plain"), 415],
        ["project 1e400", post(exports, token, '{"project": 1e400, "format": "x"}'), 400],
        [
          "project beyond bigint",
          post(exports, token, `{"project": ${"9".repeat(40)}, "format": "x"}`),
          400,
        ],
        ["project as object", post(exports, token, '{"project": {"id": 1}, "format": "x"}'), 400],
        [
          "body past 1 MiB",
          post(exports, token, exportBody("{}", `, "pad": "${"x".repeat(1024 * 1024)}"`)),
          413,
        ],
        [
          "schedule body past 1 MiB",
          post(schedules, token, scheduleBody(`"interval": 60, "x": "${"y".repeat(2 ** 21)}"`)),
          413,
        ],
        [
          "project with a space",
          post(
            exports,
            token,
            `{"project": " ${p.projectId}", "format": "occurrences_simple_csv"}`,
          ),
          400,
        ],
        [
          "project as exponent text",
          post(
            exports,
            token,
            `{"project": "${p.projectId}e0", "format": "occurrences_simple_csv"}`,
          ),
          400,
        ],
        [
          "project as hex text",
          post(
            exports,
            token,
            `{"project": "0x${p.projectId.toString(16)}", "format": "occurrences_simple_csv"}`,
          ),
          400,
        ],
        [
          "project as decimal text with .0",
          post(
            exports,
            token,
            `{"project": "${p.projectId}.0", "format": "occurrences_simple_csv"}`,
          ),
          400,
        ],
        [
          "project as true",
          post(exports, token, `{"project": true, "format": "occurrences_simple_csv"}`),
          400,
        ],
        [
          "project in a list",
          post(exports, token, `{"project": [${p.projectId}], "format": "occurrences_simple_csv"}`),
          400,
        ],
        [
          "format with NUL",
          post(exports, token, `{"project": ${p.projectId}, "format": "csv\\u0000"}`),
          400,
        ],
        [
          "format with a lone surrogate",
          post(exports, token, `{"project": ${p.projectId}, "format": "\\ud800"}`),
          400,
        ],
        ["force as string", post(exports, token, exportBody("{}", ', "force": "yes"')), 400],
        ["filters as array", post(exports, token, exportBody("[1]")), 400],
        [
          "collection_id NUL",
          post(exports, token, exportBody('{"collection_id": "\\u0000"}')),
          400,
        ],
        [
          "collection_id with a leading zero",
          post(exports, token, exportBody('{"collection_id": "02"}')),
          400,
        ],
        [
          "event_ids with a leading zero",
          post(exports, token, exportBody('{"event_ids": ["007"]}')),
          400,
        ],
        [
          "collection_id beyond 2^53",
          post(exports, token, exportBody('{"collection_id": 9007199254740993}')),
          400,
        ],
        [
          "collection_id digits beyond bigint",
          post(exports, token, exportBody(`{"collection_id": "${"9".repeat(30)}"}`)),
          400,
        ],
        ["taxon_id -0", post(exports, token, exportBody('{"taxon_id": -0}')), 400],
        ["taxon_id 1e400", post(exports, token, exportBody('{"taxon_id": 1e400}')), 400],
        [
          "deployment_ids nested",
          post(exports, token, exportBody(`{"deployment_ids": ${deepArray(100_000)}}`)),
          400,
        ],
        ["event_ids as object", post(exports, token, exportBody('{"event_ids": {"0": 1}}')), 400],
        [
          "date_start Feb 30",
          post(exports, token, exportBody('{"date_start": "2024-02-30"}')),
          400,
        ],
        [
          "date_end with NUL",
          post(exports, token, exportBody('{"date_end": "2024-01-01\\u0000"}')),
          400,
        ],
        ["min_score NaN text", post(exports, token, exportBody('{"min_score": "NaN"}')), 400],
        ["min_score -1e400", post(exports, token, exportBody('{"min_score": -1e400}')), 400],
        ["verified as 1", post(exports, token, exportBody('{"verified": 1}')), 400],
        ["filter key with NUL", post(exports, token, exportBody('{"\\u0000": 1}')), 400],
        // z.record dropped this key (an assignment sets the prototype): the export was created
        ["filter key __proto__", post(exports, token, exportBody('{"__proto__": {"x": 1}}')), 400],
        [
          "schedule filter key __proto__",
          post(schedules, token, scheduleBody('"interval": 60, "filters": {"__proto__": []}')),
          400,
        ],
        ["cron with NUL", post(schedules, token, scheduleBody('"cron": "0 3 * * *\\u0000"')), 400],
        [
          "cron of NULs",
          post(schedules, token, scheduleBody('"cron": "\\u0000 \\u0000 \\u0000 \\u0000 \\u0000"')),
          400,
        ],
        [
          "cron with a lone surrogate",
          post(schedules, token, scheduleBody('"cron": "0 3 * * \\ud800"')),
          400,
        ],
        [
          "cron in full-width digits",
          post(schedules, token, scheduleBody('"cron": "０ ３ * * *"')),
          400,
        ],
        [
          "cron with a line break",
          post(schedules, token, scheduleBody('"cron": "0 3 * * *\\n0 4 * * *"')),
          400,
        ],
        [
          "timezone with NUL",
          post(schedules, token, scheduleBody('"interval": 60, "timezone": "UTC\\u0000"')),
          400,
        ],
        ["interval 1e400", post(schedules, token, scheduleBody('"interval": 1e400')), 400],
        // strings that reach jsonb columns unchecked by their schema (free text, keys)
        ...[
          ["split_seed with NUL", '{"split_seed": "a\\u0000"}'],
          ["split_seed a lone surrogate", '{"split_seed": "\\ud800"}'],
          ["split_seed a reversed surrogate pair", '{"split_seed": "\\udc00\\ud800"}'],
        ].map(([label, options]): [string, Request, number] => [
          label,
          post(
            exports,
            token,
            `{"project": ${p.projectId}, "format": "crops_by_taxon", "options": ${options}}`,
          ),
          400,
        ]),
        [
          "interval in days beyond bounds",
          post(schedules, token, scheduleBody('"interval": "99999999999d"')),
          400,
        ],
        [
          "keep_last as string",
          post(schedules, token, scheduleBody('"interval": 60, "keep_last": "1"')),
          400,
        ],
        [
          "schedule filters nested",
          post(
            schedules,
            token,
            scheduleBody(`"interval": 60, "filters": {"event_ids": ${deepArray(100_000)}}`),
          ),
          400,
        ],
      ];
      for (const [label, request, status] of cases) {
        assertClientError(await send(h, label, request), status);
      }
      // nothing was created by any of them
      const [{ count }] = await h.sql<{ count: number }[]>`
        select (select count(*) from data_exports where project_id = ${p.projectId})::int +
          (select count(*) from export_schedules where project_id = ${p.projectId})::int as count`;
      assertEquals(count, 0);
    } finally {
      await h.close();
    }
  },
});

Deno.test({
  name:
    "request paths: ids in paths are canonical digits only (0x17, 7.0, 1e0, ' 7' change nothing)",
  ...serviceTest,
  async fn() {
    const h = await startHarness({ storage: "fs", worker: false });
    try {
      const p = await createProject(h.sql, { draft: false });
      const token = p.tokens.owner;
      const { id } = await exportWithFile(h, p, new TextEncoder().encode("id\n1\n"));
      const forms = [
        `0x${id.toString(16)}`,
        `${id}.0`,
        `${id}e0`,
        `%20${id}`,
        `0${id}`.replace(/^0/, "+"),
        `${id}%00`,
      ];
      for (const form of forms) {
        for (const method of ["GET", "DELETE"] as const) {
          const res = await h.api(method, `/api/v2/exports/${form}/`, { token });
          const body = await res.text();
          assert(
            res.status === 400 || res.status === 404,
            `${method} ${form}: ${res.status} ${body}`,
          );
        }
      }
      // the export is untouched, and its canonical id still reads it
      const res = await h.api("GET", `/api/v2/exports/${id}/`, { token });
      assertEquals(res.status, 200, await res.text());
      const [{ count }] = await h.sql<{ count: number }[]>`
        select count(*)::int as count from data_exports where id = ${id}`;
      assertEquals(count, 1);
    } finally {
      await h.close();
    }
  },
});

/** Slugs that a URL, a header or a file name could choke on (all legal in `projects.slug`). */
const HOSTILE_SLUGS = [
  "Écaille été 2024",
  "夜の蛾 #1?x=y&z=%41",
  '100% moths; "quoted" +plus',
  "emoji 🦋‍⬛ (test) *star* 'apos'",
  "station/with/slashes",
  // past MAX_DISPLAY_CHARS, within the 255 bytes of a file name (a longer slug cannot be
  // stored on the filesystem backend at all: see exportFileKey)
  `long-${"x".repeat(215)}`,
];

/** An export of `p` in SUCCESS whose file (`bytes`) sits where the activities would put it. */
async function exportWithFile(
  h: Harness,
  p: TestProject,
  bytes: Uint8Array,
): Promise<{ id: number; key: string }> {
  const created = await insertExport(h.sql, {
    userId: p.userIds.owner,
    projectId: p.projectId,
    format: "occurrences_simple_csv",
    filters: {},
    filtersDisplay: {},
  });
  const [row] = await h.sql<{ file_uuid: string; slug: string }[]>`
    select e.file_uuid::text, p.slug from data_exports e join projects p on p.id = e.project_id
    where e.id = ${created.id}`;
  const key = exportFileKey({
    storagePrefix: h.config.storagePrefix,
    fileUuid: row.file_uuid,
    projectSlug: row.slug,
    exportId: created.id,
  }, "csv");
  const upload = await h.storage.beginUpload(key, "text/csv");
  await h.storage.completeUpload(await h.storage.appendPart(upload, bytes));
  await h.sql`update data_exports set status = 'SUCCESS', file_key = ${key},
    file_size = ${bytes.byteLength}, finished_at = now() where id = ${created.id}`;
  return { id: created.id, key };
}

/** The name a Content-Disposition value gives the file: `filename*` (RFC 6266 §4.3). */
function dispositionName(value: string): string {
  const match = /filename\*=UTF-8''([^;\s]+)/.exec(value);
  assert(match, `no filename* in ${value}`);
  return decodeURIComponent(match[1]);
}

/** Gives `p` the slug `<tag>-<slug>` (slugs are unique across the test database). */
async function renameProject(h: Harness, p: TestProject, slug: string): Promise<string> {
  const unique = `${crypto.randomUUID().slice(0, 8)}-${slug}`;
  await h.sql`update projects set slug = ${unique}, name = ${unique} where id = ${p.projectId}`;
  return unique;
}

for (const backend of ["fs", "s3"] as const) {
  Deno.test({
    name: `request paths: every signed URL downloads whatever the slug holds (${backend})`,
    ...serviceTest,
    async fn() {
      const h = await startHarness({ storage: backend, worker: false });
      try {
        const p = await createProject(h.sql, { draft: false });
        const token = p.tokens.basic_member;
        for (const [i, hostile] of HOSTILE_SLUGS.entries()) {
          const slug = await renameProject(h, p, hostile);
          const bytes = new TextEncoder().encode(`id,name\n${i},${slug}\n`);
          const { id, key } = await exportWithFile(h, p, bytes);
          const retrieved = await h.api("GET", `/api/v2/exports/${id}/`, { token });
          assertEquals(retrieved.status, 200, `${slug}: ${await retrieved.clone().text()}`);
          const { file_url } = await retrieved.json();
          const redirect = await h.api("GET", `/api/v2/exports/${id}/download/`, { token });
          assertEquals(redirect.status, 302, `${slug}: ${await redirect.text()}`);
          const location = redirect.headers.get("location")!;
          assert(/^[\x21-\x7e]+$/.test(location), `Location is not a plain URL: ${location}`);
          for (const url of [file_url as string, location]) {
            assertEquals(await h.download(url), bytes, `${slug}: ${url}`);
          }
          // the download is named after the key's last segment, which exportFileKey bounds
          const name = key.split("/").pop()!;
          assert(name.endsWith(`_export-${id}.csv`), name);
          assert(new TextEncoder().encode(name).length <= 255, name);
          if (backend === "fs") {
            const res = await h.app.request(location.slice(h.config.publicBaseUrl.length));
            assertEquals(res.status, 200, slug);
            await res.body?.cancel();
            const disposition = res.headers.get("content-disposition")!;
            assert(/^[\x20-\x7e]+$/.test(disposition), disposition);
            assertEquals(dispositionName(disposition), name);
          } else {
            // moto does not send response-content-disposition back; S3 does, as signed here
            const disposition = new URL(location).searchParams.get("response-content-disposition")!;
            assertEquals(dispositionName(disposition), name);
          }
        }
      } finally {
        await h.close();
      }
    },
  });
}

for (const backend of ["fs", "s3"] as const) {
  Deno.test({
    name: `request paths: a file URL serves one byte range, 206; past the end 416 (${backend})`,
    ...serviceTest,
    async fn() {
      const h = await startHarness({ storage: backend, worker: false });
      try {
        const p = await createProject(h.sql, { draft: false });
        const token = p.tokens.basic_member;
        // 200,000 bytes: ranges cross the 64 KiB reads of the filesystem slice
        const bytes = new Uint8Array(200_000).map((_, i) => 32 + (i * 7) % 90);
        const { id } = await exportWithFile(h, p, bytes);
        const size = bytes.byteLength;
        const { file_url } = await (await h.api("GET", `/api/v2/exports/${id}/`, { token })).json();
        const redirect = await h.api("GET", `/api/v2/exports/${id}/download/`, { token });
        assertEquals(redirect.status, 302);
        // the signed link of an email (docs/email.md) redirects to a URL that serves ranges too
        const link = signedDownloadUrl(h.config.publicBaseUrl, id, {
          secret: h.config.signingSecret,
          expiresAt: new Date(Date.now() + 3_600_000),
        });
        const signed = await h.app.request(link.slice(h.config.publicBaseUrl.length));
        assertEquals(signed.status, 302, await signed.clone().text());
        const urls = [
          file_url as string,
          redirect.headers.get("location")!,
          signed.headers.get("location")!,
        ];
        /** GET `url` with `headers`: the app for `/files/`, moto for presigned URLs. */
        const get = (url: string, headers: Record<string, string>): Promise<Response> =>
          url.startsWith(h.config.publicBaseUrl)
            ? Promise.resolve(h.app.request(url.slice(h.config.publicBaseUrl.length), { headers }))
            : fetch(url, { headers });
        for (const url of urls) {
          for (
            const [range, start, end] of [
              ["bytes=0-9", 0, 9],
              ["bytes=70000-170000", 70_000, 170_000],
              [`bytes=${size - 5}-`, size - 5, size - 1],
              ["bytes=-7", size - 7, size - 1],
              [`bytes=199990-${size * 2}`, 199_990, size - 1],
            ] as [string, number, number][]
          ) {
            const res = await get(url, { Range: range });
            const body = new Uint8Array(await res.arrayBuffer());
            assertEquals(res.status, 206, `${range} ${url}`);
            assertEquals(res.headers.get("content-range"), `bytes ${start}-${end}/${size}`, range);
            assertEquals(res.headers.get("content-length"), String(end - start + 1), range);
            assertEquals(body, bytes.subarray(start, end + 1), range);
          }
          const past = await get(url, { Range: `bytes=${size}-` });
          await past.body?.cancel();
          assertEquals(past.status, 416, url);
          if (backend === "fs") {
            // (moto's 416 has no Content-Range; S3's has)
            assertEquals(past.headers.get("content-range"), `bytes */${size}`);
            // S3 answers several ranges with the whole object as well, moto with the first one
            const several = await get(url, { Range: "bytes=0-1,5-6" });
            assertEquals(several.status, 200);
            assertEquals(new Uint8Array(await several.arrayBuffer()), bytes);
            assertEquals(several.headers.get("accept-ranges"), "bytes");
            // HEAD: the same headers, no body (the route closes the file itself)
            const head = await h.app.request(url.slice(h.config.publicBaseUrl.length), {
              method: "HEAD",
              headers: { Range: "bytes=0-9" },
            });
            assertEquals(head.status, 206);
            assertEquals(head.headers.get("content-range"), `bytes 0-9/${size}`);
            assertEquals(head.headers.get("content-length"), "10");
            assertEquals(head.body, null);
            const ifRange = await get(url, { Range: "bytes=0-1", "If-Range": '"x"' });
            assertEquals(ifRange.status, 200);
            assertEquals((await ifRange.arrayBuffer()).byteLength, size);
            // a resumed download sends back the file's ETag or Last-Modified: the range holds
            // while the file is the one those name (RFC 9110 §13.1.5)
            const etag = head.headers.get("etag") ?? "";
            const lastModified = head.headers.get("last-modified") ?? "";
            assert(etag.startsWith('"') && lastModified, `validators: ${etag} ${lastModified}`);
            for (const validator of [etag, lastModified]) {
              const resumed = await get(url, { Range: "bytes=10-19", "If-Range": validator });
              assertEquals(resumed.status, 206, validator);
              assertEquals(new Uint8Array(await resumed.arrayBuffer()), bytes.subarray(10, 20));
            }
            const weak = await get(url, { Range: "bytes=10-19", "If-Range": `W/${etag}` });
            assertEquals(weak.status, 200);
            await weak.body?.cancel();
          }
          const whole = await get(url, {});
          assertEquals(whole.status, 200);
          assertEquals(new Uint8Array(await whole.arrayBuffer()), bytes);
        }
      } finally {
        await h.close();
      }
    },
  });
}

Deno.test({
  name: "request paths: public files mode percent-encodes the key (RFC 3986 §2.1)",
  ...serviceTest,
  async fn() {
    const base = "https://cdn.example.org/exports-bucket";
    const h = await startHarness({
      storage: "s3",
      worker: false,
      env: { PUBLIC_FILES_BASE_URL: base },
    });
    try {
      const p = await createProject(h.sql, { draft: false });
      for (const hostile of HOSTILE_SLUGS) {
        const slug = await renameProject(h, p, hostile);
        const { id, key } = await exportWithFile(h, p, new TextEncoder().encode("id\n1\n"));
        const redirect = await h.api("GET", `/api/v2/exports/${id}/download/`, {
          token: p.tokens.owner,
        });
        assertEquals(redirect.status, 302, `${slug}: ${await redirect.text()}`);
        const location = redirect.headers.get("location")!;
        const url = new URL(location);
        assertEquals(url.search, "", location);
        assertEquals(url.hash, "", location);
        assertEquals(
          url.pathname.split("/").map(decodeURIComponent).join("/"),
          `/exports-bucket/${key}`,
        );
        const body = await (await h.api("GET", `/api/v2/exports/${id}/`, {
          token: p.tokens.owner,
        })).json();
        assertEquals(body.file_url, location);
      }
    } finally {
      await h.close();
    }
  },
});
