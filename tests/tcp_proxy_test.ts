/**
 * The outage proxy of `tests/tcp_proxy.ts` against a real TCP server: bytes pass unchanged with
 * half-closes, `stop()` cuts open connections and refuses new ones while the server keeps its
 * state, and `start()` serves again on the same port.
 */
import { assert, assertEquals } from "./assert.ts";
import { startTcpProxy } from "./tcp_proxy.ts";

/**
 * A server that reads each connection to EOF, answers `<bytes of this connection> <bytes of all
 * connections>` and closes; `total` counts bytes received, `ended` connections it saw end (EOF or
 * cut).
 */
function startCountingServer(): {
  port: number;
  total: () => number;
  ended: () => number;
  close: () => void;
} {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let total = 0;
  let ended = 0;
  (async () => {
    for await (const conn of listener) {
      (async () => {
        const buffer = new Uint8Array(64 * 1024);
        let mine = 0;
        try {
          while (true) {
            const n = await conn.read(buffer);
            if (n === null) break;
            mine += n;
            total += n;
          }
          await conn.write(new TextEncoder().encode(`${mine} ${total}`));
        } catch {
          /* cut */
        } finally {
          ended++;
          conn.close();
        }
      })();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    total: () => total,
    ended: () => ended,
    close: () => listener.close(),
  };
}

/** Sends `bytes`, half-closes, and returns the whole answer as text. */
async function roundTrip(port: number, bytes: Uint8Array): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    let written = 0;
    while (written < bytes.length) written += await conn.write(bytes.subarray(written));
    await conn.closeWrite();
    return await new Response(conn.readable).text();
  } finally {
    try {
      conn.close();
    } catch { /* closed by the readable */ }
  }
}

async function waitFor(what: string, probe: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("tcp proxy: passes bytes both ways, cuts and refuses while stopped, keeps the server's state", async () => {
  const server = startCountingServer();
  const proxy = startTcpProxy(server.port);
  try {
    // 3 MiB through the proxy, answered after the half-close
    const payload = crypto.getRandomValues(new Uint8Array(65536));
    const big = new Uint8Array(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i += payload.length) big.set(payload, i);
    assertEquals(await roundTrip(proxy.port, big), `${big.length} ${big.length}`);

    // an open connection is cut on both sides by stop(); new ones are refused
    const idle = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    await idle.write(new Uint8Array(10));
    await waitFor("the 10 bytes at the server", () => server.total() === big.length + 10);
    assertEquals(proxy.accepted, 2);
    const endedBefore = server.ended();
    await proxy.stop();
    assert(!proxy.listening);
    assertEquals(proxy.cut, 1);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const read = await Promise.race([
      idle.read(new Uint8Array(16)).catch((e: Error) => e),
      new Promise<string>((r) => timer = setTimeout(() => r("still open after 5 s"), 5000)),
    ]);
    clearTimeout(timer);
    assert(read === null || read instanceof Error, `read on a cut connection: ${read}`);
    idle.close();
    await waitFor("the server to see the cut", () => server.ended() === endedBefore + 1);
    const refused = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port }).then(
      (c) => (c.close(), undefined),
      (e: Error) => e,
    );
    assert(refused instanceof Deno.errors.ConnectionRefused, `connect while stopped: ${refused}`);

    // the server behind kept running with its state (10 bytes from the cut connection included)
    assertEquals(await roundTrip(server.port, new Uint8Array(5)), `5 ${big.length + 15}`);

    // back on the same port
    await proxy.start();
    assert(proxy.listening);
    assertEquals(await roundTrip(proxy.port, new Uint8Array(7)), `7 ${big.length + 22}`);
  } finally {
    await proxy.stop();
    server.close();
  }
});
