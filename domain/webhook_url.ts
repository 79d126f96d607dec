/**
 * Which URLs a webhook may send to (docs/webhooks.md, "Which URLs are accepted"): http or https,
 * no credentials in the URL, and a host none of whose addresses is loopback, link-local, private,
 * unique-local, unspecified, multicast, CGNAT or otherwise reserved, unless private addresses
 * are allowed (`WEBHOOK_ALLOW_PRIVATE=true`). The same check runs when a webhook is created and
 * before every delivery attempt (DNS may have changed). Source of the rule: the OWASP SSRF
 * Prevention Cheat Sheet ("block private, loopback, link-local addresses after resolution"),
 * with the ranges of the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890).
 *
 * Pure apart from the resolver, which callers pass (`Deno.resolveDns` in production, a map in
 * unit tests).
 */

/** Longest URL accepted (bytes of the string as given). */
export const MAX_WEBHOOK_URL_LENGTH = 2048;

/** Why an address is refused, or undefined when it is a public unicast address. */
export type AddressProblem =
  | "loopback"
  | "link-local"
  | "private"
  | "unspecified"
  | "multicast"
  | "CGNAT"
  | "reserved";

/** Parses dotted-quad IPv4 (`192.0.2.1`) into its four octets; undefined when it is not one. */
function parseIpv4(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const octets = parts.map((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) ? Number(p) : NaN);
  return octets.every((o) => o >= 0 && o <= 255) ? octets : undefined;
}

/**
 * Parses an IPv6 address (RFC 4291 §2.2 text forms: `::1`, `fe80::1%eth0`, `::ffff:10.0.0.1`)
 * into its eight 16-bit groups; undefined when it is not one.
 */
function parseIpv6(text: string): number[] | undefined {
  let rest = text.replace(/^\[|\]$/g, "").replace(/%.*$/, "").toLowerCase();
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(rest);
  if (v4) {
    const octets = parseIpv4(v4[1]);
    if (!octets) return undefined;
    tail.push((octets[0] << 8) | octets[1], (octets[2] << 8) | octets[3]);
    rest = rest.slice(0, -v4[1].length);
    if (rest.endsWith(":") && !rest.endsWith("::")) rest = rest.slice(0, -1);
  }
  const halves = rest.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string): number[] | undefined => {
    if (half === "") return [];
    const parts = half.split(":");
    if (!parts.every((p) => /^[0-9a-f]{1,4}$/.test(p))) return undefined;
    return parts.map((p) => parseInt(p, 16));
  };
  const head = groups(halves[0]);
  const last = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !last) return undefined;
  const known = head.length + last.length + tail.length;
  if (halves.length === 1) return known === 8 ? [...head, ...tail] : undefined;
  if (known > 7) return undefined;
  return [...head, ...new Array(8 - known).fill(0), ...last, ...tail];
}

/** Why an IPv4 address (four octets) is refused, by the IANA IPv4 Special-Purpose Registry. */
function ipv4Problem([a, b]: number[]): AddressProblem | undefined {
  if (a === 0) return "unspecified"; // 0.0.0.0/8 "this network"
  if (a === 127) return "loopback";
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) {
    return "private"; // RFC 1918
  }
  if (a === 169 && b === 254) return "link-local";
  if (a === 100 && b >= 64 && b <= 127) return "CGNAT"; // RFC 6598
  if (a >= 224 && a <= 239) return "multicast";
  if (a >= 240) return "reserved"; // 240.0.0.0/4 and the broadcast address
  if (a === 198 && (b === 18 || b === 19)) return "reserved"; // benchmarking, RFC 2544
  return undefined;
}

/**
 * Why `address` (IPv4 or IPv6 text, as `Deno.resolveDns` returns it or as a URL names it) is
 * refused as a webhook destination, undefined for a public unicast address. Text that is no
 * address at all is "reserved" (refused).
 */
export function addressProblem(address: string): AddressProblem | undefined {
  const v4 = parseIpv4(address);
  if (v4) return ipv4Problem(v4);
  const g = parseIpv6(address);
  if (!g) return "reserved";
  const zeroUpTo = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeroUpTo(8)) return "unspecified"; // ::
  if (zeroUpTo(7) && g[7] === 1) return "loopback"; // ::1
  const embedded = [g[6] >> 8, g[6] & 0xff, g[7] >> 8, g[7] & 0xff];
  if (zeroUpTo(5) && g[5] === 0xffff) return ipv4Problem(embedded); // ::ffff:0:0/96 mapped
  if (zeroUpTo(6)) return ipv4Problem(embedded) ?? "reserved"; // deprecated compatible ::/96
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) {
    return ipv4Problem(embedded); // 64:ff9b::/96 NAT64 (RFC 6052)
  }
  if ((g[0] & 0xffc0) === 0xfe80) return "link-local"; // fe80::/10
  if ((g[0] & 0xfe00) === 0xfc00) return "private"; // fc00::/7 unique local (RFC 4193)
  if ((g[0] & 0xff00) === 0xff00) return "multicast"; // ff00::/8
  if ((g[0] & 0xffc0) === 0xfec0) return "reserved"; // fec0::/10 old site-local
  return undefined;
}

/** Resolves a host name to its addresses (A and AAAA); throws when it has none. */
export type Resolver = (host: string) => Promise<string[]>;

/** The outcome of {@link checkWebhookUrl}: the normalized URL, or the reason for refusing it. */
export type WebhookUrlCheck = { ok: true; url: string } | { ok: false; reason: string };

/**
 * Checks `text` as a webhook destination. Refuses (with a reason naming the rule): an unparsable
 * URL, a scheme other than http/https, credentials in the URL, a URL longer than
 * {@link MAX_WEBHOOK_URL_LENGTH}, and, unless `allowPrivate`, a host that does not resolve or
 * one of whose addresses {@link addressProblem} refuses (`localhost` and `*.localhost` are
 * loopback without asking DNS, RFC 6761 §6.3). With `allowPrivate` no DNS lookup is made.
 */
export async function checkWebhookUrl(
  text: string,
  options: { allowPrivate: boolean; resolve: Resolver },
): Promise<WebhookUrlCheck> {
  if (text.length > MAX_WEBHOOK_URL_LENGTH) {
    return { ok: false, reason: `longer than ${MAX_WEBHOOK_URL_LENGTH} characters` };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, reason: "not an absolute URL" };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return { ok: false, reason: `scheme ${url.protocol.replace(/:$/, "")} (only http and https)` };
  }
  if (url.username || url.password) return { ok: false, reason: "credentials in the URL" };
  if (options.allowPrivate) return { ok: true, url: url.href };
  const host = url.hostname.replace(/^\[|\]$/g, "");
  let addresses: string[];
  if (parseIpv4(host) || parseIpv6(host)) {
    addresses = [host];
  } else if (host === "localhost" || host.endsWith(".localhost")) {
    return { ok: false, reason: `${host} is a loopback address` };
  } else {
    try {
      addresses = await options.resolve(host);
    } catch (error) {
      return { ok: false, reason: `host ${host} does not resolve: ${describe(error)}` };
    }
    if (addresses.length === 0) return { ok: false, reason: `host ${host} has no address` };
  }
  for (const address of addresses) {
    const problem = addressProblem(address);
    if (problem) {
      const via = address === host ? "" : ` (${host} resolves to ${address})`;
      return { ok: false, reason: `${problem} address${via || ` ${address}`}` };
    }
  }
  return { ok: true, url: url.href };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The resolver of production: `Deno.resolveDns` A and AAAA records, each lookup bounded by
 * `timeoutMs`; a name with neither throws.
 */
export function dnsResolver(timeoutMs = 5000): Resolver {
  return async (host) => {
    const lookups = (["A", "AAAA"] as const).map((type) =>
      Deno.resolveDns(host, type, { signal: AbortSignal.timeout(timeoutMs) })
    );
    const results = await Promise.allSettled(lookups);
    const addresses = results.flatMap((r) => r.status === "fulfilled" ? r.value : []);
    if (addresses.length === 0) {
      const failed = results.filter((r) => r.status === "rejected").map((r) => r.reason);
      // NotFound (NXDOMAIN, no records) says it plainly; other errors (timeouts) say theirs
      const other = failed.find((e) => !(e instanceof Deno.errors.NotFound));
      throw other ?? new Error("no A or AAAA record");
    }
    return addresses;
  };
}

/** The error message prefix of a refused webhook or notify URL (a 400 of the API). */
export const URL_REFUSED = "webhook URL refused";

/**
 * Checks a webhook or `notify_url` destination of a request with the configured rule
 * (`WEBHOOK_ALLOW_PRIVATE`) and DNS: the normalized URL, or the 400 message
 * `webhook URL refused: <field>: <reason>`.
 */
export async function checkDestination(
  settings: { allowPrivate: boolean },
  field: string,
  url: string,
): Promise<{ ok: true; url: string } | { ok: false; message: string }> {
  const check = await checkWebhookUrl(url, {
    allowPrivate: settings.allowPrivate,
    resolve: dnsResolver(),
  });
  return check.ok ? check : { ok: false, message: `${URL_REFUSED}: ${field}: ${check.reason}` };
}
