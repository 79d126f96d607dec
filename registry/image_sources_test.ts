import { assert, assertEquals } from "../tests/assert.ts";
import {
  defaultImageSourceSettings,
  fetchSourceImage,
  mapBounded,
  sourceProblem,
} from "./image_sources.ts";

/** A local server answering by path; counts requests per path. */
function server(handler: (path: string, n: number) => Response | Promise<Response>) {
  const counts = new Map<string, number>();
  const s = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const path = new URL(request.url).pathname;
    const n = (counts.get(path) ?? 0) + 1;
    counts.set(path, n);
    return handler(path, n);
  });
  return {
    base: `http://127.0.0.1:${s.addr.port}`,
    host: `127.0.0.1:${s.addr.port}`,
    count: (path: string) => counts.get(path) ?? 0,
    close: () => s.shutdown(),
  };
}

const fast = { ...defaultImageSourceSettings, attempts: 3, backoffMs: 5, timeoutMs: 300 };

Deno.test("image sources: the allowlist, schemes and names resolving inside", async () => {
  const publicDns = () => Promise.resolve(["93.184.216.34"]);
  const insideDns = () => Promise.resolve(["10.0.0.7"]);
  const cases: [string, string[], () => Promise<string[]>, string | undefined][] = [
    ["ftp://a.org/x.jpg", ["a.org"], publicDns, "scheme not allowed"],
    ["file:///etc/passwd", ["a.org"], publicDns, "scheme not allowed"],
    ["https://b.org/x.jpg", ["a.org"], publicDns, "host not allowed"],
    ["https://a.org/x.jpg", ["a.org"], publicDns, undefined],
    ["https://a.org:8443/x", ["a.org:443"], publicDns, "host not allowed"],
    ["https://a.org/x", ["a.org:443"], publicDns, undefined],
    [
      "https://a.org/x.jpg",
      ["a.org"],
      insideDns,
      "host not allowed: resolves to a private address",
    ],
    ["http://127.0.0.1:9/x", ["a.org"], publicDns, "host not allowed"],
    ["http://127.0.0.1:9/x", ["127.0.0.1:9"], insideDns, undefined],
    ["http://169.254.169.254/latest", [], publicDns, "host not allowed"],
  ];
  for (const [url, hosts, dns, expected] of cases) {
    assertEquals(await sourceProblem(url, hosts, dns), expected, url);
  }
});

Deno.test("image sources: 5xx retried with backoff, 404 not, timeouts, size, redirects", async () => {
  const off = server(() => new Response("secret"));
  const s = server(async (path, n) => {
    if (path === "/flaky") {
      return n < 3 ? new Response("busy", { status: 503 }) : new Response("ok");
    }
    if (path === "/down") return new Response("busy", { status: 502 });
    if (path === "/missing") return new Response("no", { status: 404 });
    if (path === "/slow") {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      return new Response("late");
    }
    if (path === "/big") return new Response(new Uint8Array(2048));
    if (path === "/away") return Response.redirect(`${off.base}/x`, 302);
    if (path === "/here") return Response.redirect(`${s.base}/flaky`, 302);
    return new Response("?", { status: 400 });
  });
  try {
    const settings = { ...fast, hosts: [s.host] };
    const ok = await fetchSourceImage(`${s.base}/flaky`, settings);
    assert(ok.ok && new TextDecoder().decode(ok.bytes) === "ok", JSON.stringify(ok));
    assertEquals(s.count("/flaky"), 3);
    assertEquals(await fetchSourceImage(`${s.base}/down`, settings), {
      ok: false,
      reason: "HTTP 502 after 3 attempts",
    });
    assertEquals(await fetchSourceImage(`${s.base}/missing`, settings), {
      ok: false,
      reason: "HTTP 404",
    });
    assertEquals(s.count("/missing"), 1);
    assertEquals(await fetchSourceImage(`${s.base}/slow`, { ...settings, attempts: 2 }), {
      ok: false,
      reason: "timeout after 2 attempts",
    });
    assertEquals(await fetchSourceImage(`${s.base}/big`, { ...settings, maxBytes: 1024 }), {
      ok: false,
      reason: "too large",
    });
    assertEquals(await fetchSourceImage(`${s.base}/away`, settings), {
      ok: false,
      reason: "redirect: host not allowed",
    });
    assertEquals(off.count("/x"), 0);
    const followed = await fetchSourceImage(`${s.base}/here`, settings);
    assert(followed.ok, JSON.stringify(followed));
    assertEquals(await fetchSourceImage(`${off.base}/x`, settings), {
      ok: false,
      reason: "host not allowed",
    });
    assertEquals(off.count("/x"), 0);
  } finally {
    await Promise.all([s.close(), off.close()]);
  }
});

Deno.test("image sources: at most `limit` at once, results in order", async () => {
  let running = 0;
  let most = 0;
  const out = await mapBounded([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
    running++;
    most = Math.max(most, running);
    await new Promise((resolve) => setTimeout(resolve, 5 * (8 - n)));
    running--;
    return n * 2;
  });
  assertEquals(out, [2, 4, 6, 8, 10, 12, 14]);
  assertEquals(most, 3);
});
