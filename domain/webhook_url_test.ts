/** The webhook URL rule of domain/webhook_url.ts: schemes, credentials and refused addresses. */
import { assert, assertEquals } from "../tests/assert.ts";
import { addressProblem, checkWebhookUrl, type Resolver } from "./webhook_url.ts";

const dns: Record<string, string[]> = {
  "hooks.example.org": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
  "rebind.example.org": ["93.184.215.14", "10.1.2.3"],
  "inner.example.org": ["fd12:3456::1"],
};
const resolve: Resolver = (host) =>
  dns[host] ? Promise.resolve(dns[host]) : Promise.reject(new Error("NXDOMAIN"));

Deno.test("webhook URL: every refused address range, IPv4 and IPv6", () => {
  const cases: [string, string | undefined][] = [
    ["127.0.0.1", "loopback"],
    ["127.255.0.9", "loopback"],
    ["::1", "loopback"],
    ["0.0.0.0", "unspecified"],
    ["::", "unspecified"],
    ["10.0.0.1", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["fc00::1", "private"],
    ["fd12:3456::1", "private"],
    ["169.254.169.254", "link-local"],
    ["fe80::1", "link-local"],
    ["fe80::1%eth0", "link-local"],
    ["100.64.0.1", "CGNAT"],
    ["100.127.255.254", "CGNAT"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.250", "multicast"],
    ["ff02::1", "multicast"],
    ["255.255.255.255", "reserved"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["::ffff:10.0.0.1", "private"],
    ["64:ff9b::a9fe:a9fe", "link-local"],
    ["not-an-address", "reserved"],
    // public
    ["93.184.215.14", undefined],
    ["172.32.0.1", undefined],
    ["100.128.0.1", undefined],
    ["8.8.8.8", undefined],
    ["2606:2800:21f:cb07:6820:80da:af6b:8b2c", undefined],
    ["2001:4860:4860::8888", undefined],
    ["::ffff:8.8.8.8", undefined],
  ];
  for (const [address, expected] of cases) {
    assertEquals(addressProblem(address), expected, address);
  }
});

Deno.test("webhook URL: http and https to public hosts pass, normalized", async () => {
  for (
    const [given, normalized] of [
      ["https://hooks.example.org/in", "https://hooks.example.org/in"],
      ["HTTP://Hooks.Example.org:8080/a?b=1", "http://hooks.example.org:8080/a?b=1"],
      ["https://93.184.215.14/x", "https://93.184.215.14/x"],
      ["https://[2001:4860:4860::8888]/x", "https://[2001:4860:4860::8888]/x"],
    ]
  ) {
    assertEquals(await checkWebhookUrl(given, { allowPrivate: false, resolve }), {
      ok: true,
      url: normalized,
    });
  }
});

Deno.test("webhook URL: refusals name their reason", async () => {
  const cases: [string, string][] = [
    ["ftp://hooks.example.org/", "scheme ftp (only http and https)"],
    ["/relative", "not an absolute URL"],
    ["https://user:pw@hooks.example.org/", "credentials in the URL"],
    ["http://127.0.0.1:9000/", "loopback address 127.0.0.1"],
    ["http://[::1]/", "loopback address ::1"],
    ["http://localhost:8000/", "localhost is a loopback address"],
    ["http://api.localhost/", "api.localhost is a loopback address"],
    ["http://169.254.169.254/latest/meta-data/", "link-local address 169.254.169.254"],
    ["http://10.0.0.5/", "private address 10.0.0.5"],
    ["http://rebind.example.org/", "private address (rebind.example.org resolves to 10.1.2.3)"],
    ["http://inner.example.org/", "private address (inner.example.org resolves to fd12:3456::1)"],
    ["http://100.100.100.100/", "CGNAT address 100.100.100.100"],
    ["http://nowhere.invalid/", "host nowhere.invalid does not resolve: NXDOMAIN"],
    [`https://hooks.example.org/${"a".repeat(2100)}`, "longer than 2048 characters"],
  ];
  for (const [given, reason] of cases) {
    assertEquals(await checkWebhookUrl(given, { allowPrivate: false, resolve }), {
      ok: false,
      reason,
    }, given);
  }
});

Deno.test("webhook URL: WEBHOOK_ALLOW_PRIVATE lets private hosts through without DNS", async () => {
  const never: Resolver = () => {
    throw new Error("no lookup expected");
  };
  const check = await checkWebhookUrl("http://127.0.0.1:9000/hook", {
    allowPrivate: true,
    resolve: never,
  });
  assertEquals(check, { ok: true, url: "http://127.0.0.1:9000/hook" });
  const scheme = await checkWebhookUrl("file:///etc/passwd", { allowPrivate: true, resolve });
  assert(!scheme.ok);
});
