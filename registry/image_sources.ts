/**
 * Source images of the image formats, fetched over HTTP(S) from an allowlist of hosts
 * (`SOURCE_IMAGE_HOSTS`): a bounded number of requests at once, a timeout per request, a maximum
 * size, retries with backoff for 5xx, 429 and timeouts, and redirects followed only to hosts on
 * the list. A failure is never thrown: it is a {@link FetchedImage} with the reason the image is
 * left out (`HTTP 404`, `host not allowed`, `timeout after 3 attempts`, `too large`).
 *
 * A listed IP address is reached whatever its range (moto on loopback in the tests); a listed host
 * name is resolved first and refused when an address is loopback, link-local, private or otherwise
 * not public, so that a name on the list cannot be pointed at the inside of the network.
 */
import type { ImageSourceSettings } from "../config/mod.ts";
import { addressProblem } from "../domain/webhook_url.ts";
import type { ExportQueryContext } from "./types.ts";

export type { ImageSourceSettings };

/** The settings when nothing is configured: no host allowed. */
export const defaultImageSourceSettings: ImageSourceSettings = {
  hosts: [],
  concurrency: 8,
  timeoutMs: 20_000,
  maxBytes: 50 * 1024 * 1024,
  attempts: 3,
  backoffMs: 250,
};

/** The image's bytes, or why it is left out. */
export type FetchedImage = { ok: true; bytes: Uint8Array } | { ok: false; reason: string };

const MAX_REDIRECTS = 3;

/** Addresses of a host name (A and AAAA). */
export type HostResolver = (host: string) => Promise<string[]>;

async function resolveHost(host: string): Promise<string[]> {
  const found = await Promise.allSettled([
    Deno.resolveDns(host, "A"),
    Deno.resolveDns(host, "AAAA"),
  ]);
  return found.flatMap((r) => (r.status === "fulfilled" ? r.value : []));
}

/**
 * `text` parsed as an http(s) URL, or why it is none: `not a URL` (the URL parser refuses it),
 * `scheme not allowed` (any scheme but `http:` and `https:`).
 */
export function httpUrl(text: string): URL | "not a URL" | "scheme not allowed" {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return "not a URL";
  }
  return url.protocol === "http:" || url.protocol === "https:" ? url : "scheme not allowed";
}

/**
 * Whether the host of `url` (an http(s) URL) is on the list: an entry `host` (any port) or
 * `host:port`, the port filled in from the scheme (80, 443) when the URL has none.
 */
export function hostListed(url: URL, hosts: readonly string[]): boolean {
  const host = url.hostname.toLowerCase();
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return hosts.some((entry) => entry === host || entry === `${host}:${port}`);
}

function isIpLiteral(host: string): boolean {
  return /^[0-9.]+$/.test(host) || host.startsWith("[");
}

/**
 * Why `url` may not be fetched (undefined: it may): a scheme other than http(s), a host[:port]
 * not on the list, a listed name resolving to a non-public address.
 */
export async function sourceProblem(
  url: string,
  hosts: readonly string[],
  resolve: HostResolver = resolveHost,
): Promise<string | undefined> {
  const parsed = httpUrl(url);
  if (typeof parsed === "string") return parsed;
  const host = parsed.hostname.toLowerCase();
  if (!hostListed(parsed, hosts)) return "host not allowed";
  if (isIpLiteral(host)) return undefined;
  const addresses = await resolve(host);
  if (addresses.length === 0) return "host does not resolve";
  const problem = addresses.map(addressProblem).find((p) => p !== undefined);
  return problem ? `host not allowed: resolves to a ${problem} address` : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The body of `response`, or null when it passes `maxBytes`. */
async function readCapped(response: Response, maxBytes: number): Promise<Uint8Array | null> {
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > maxBytes) {
    await response.body?.cancel();
    return null;
  }
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const part of response.body ?? []) {
    size += part.length;
    if (size > maxBytes) return null; // leaving the loop cancels the body
    parts.push(part);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * A request or body read that threw `error`, as a failure worth retrying: `timeout` when
 * `AbortSignal.timeout` ended it, else `connection failed`.
 */
function connectionFailure(error: unknown): { ok: false; reason: string; retry: true } {
  const timeout = error instanceof DOMException && error.name === "TimeoutError";
  return { ok: false, reason: timeout ? "timeout" : "connection failed", retry: true };
}

/** One attempt: the image, a final failure, or a failure worth retrying. */
async function attempt(
  url: string,
  settings: ImageSourceSettings,
  resolve: HostResolver,
): Promise<FetchedImage & { retry?: boolean }> {
  let at = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const problem = await sourceProblem(at, settings.hosts, resolve);
    if (problem) return { ok: false, reason: hop === 0 ? problem : `redirect: ${problem}` };
    let response: Response;
    try {
      response = await fetch(at, {
        redirect: "manual",
        signal: AbortSignal.timeout(settings.timeoutMs),
      });
    } catch (error) {
      return connectionFailure(error);
    }
    if (response.status >= 300 && response.status < 400 && response.headers.has("location")) {
      await response.body?.cancel();
      at = new URL(response.headers.get("location")!, at).href;
      continue;
    }
    if (!response.ok) {
      await response.body?.cancel();
      const retry = response.status >= 500 || response.status === 429;
      return { ok: false, reason: `HTTP ${response.status}`, retry };
    }
    try {
      const bytes = await readCapped(response, settings.maxBytes);
      return bytes ? { ok: true, bytes } : { ok: false, reason: "too large" };
    } catch (error) {
      return connectionFailure(error);
    }
  }
  return { ok: false, reason: "too many redirects" };
}

/** Fetches `url` within `settings`, retrying 5xx, 429 and timeouts with backoff. */
export async function fetchSourceImage(
  url: string,
  settings: ImageSourceSettings,
  resolve: HostResolver = resolveHost,
): Promise<FetchedImage> {
  for (let n = 1;; n++) {
    const result = await attempt(url, settings, resolve);
    if (result.ok || !result.retry) {
      return result.ok ? result : { ok: false, reason: result.reason };
    }
    if (n >= settings.attempts) {
      return { ok: false, reason: `${result.reason} after ${n} attempts` };
    }
    await sleep(settings.backoffMs * 2 ** (n - 1));
  }
}

/** `work` over `items`, at most `limit` at once; results in the items' order. */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]);
    }
  });
  await Promise.all(lanes);
  return out;
}

/**
 * `work(item, image)` for each of `items`, its source image fetched once from `urlOf(item)`
 * (null: `no source URL`) within the export's image settings (`ctx.settings.images`, else
 * {@link defaultImageSourceSettings}), at most `concurrency` at once; results in the items' order.
 */
export function eachSourceImage<T, R>(
  ctx: ExportQueryContext,
  items: readonly T[],
  urlOf: (item: T) => string | null,
  work: (item: T, image: FetchedImage) => Promise<R>,
): Promise<R[]> {
  const settings = ctx.settings?.images ?? defaultImageSourceSettings;
  return mapBounded(items, settings.concurrency, async (item) => {
    const url = urlOf(item);
    const image: FetchedImage = url === null
      ? { ok: false, reason: "no source URL" }
      : await fetchSourceImage(url, settings);
    return await work(item, image);
  });
}
