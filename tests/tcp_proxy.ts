/**
 * A loopback TCP proxy that fault tests put between a client and a real server to simulate a
 * network outage: `stop()` closes the listening socket and cuts every open connection (new ones
 * are refused, as by a server that is down), `start()` listens again on the same port. The server
 * behind it keeps running with its state, so an outage loses no data, as with real storage whose
 * network goes away (stopping moto itself would also erase its in-memory buckets).
 */

/** A started proxy; `port` stays the same across `stop()`/`start()`. */
export interface TcpProxy {
  /** The loopback port clients connect to. */
  readonly port: number;
  /** `http://127.0.0.1:<port>`: the endpoint to hand to an HTTP client (S3_ENDPOINT). */
  readonly endpoint: string;
  /** True between `start()` (or creation) and `stop()`. */
  readonly listening: boolean;
  /** Connections accepted since creation (both directions piped to the target). */
  readonly accepted: number;
  /** Connections cut by `stop()` since creation. */
  readonly cut: number;
  /**
   * Closes the listener and every open connection (client and target side) and waits until
   * their pipes have ended. Idempotent.
   */
  stop(): Promise<void>;
  /**
   * Listens on `port` again. Throws `Deno.errors.AddrInUse` when another process took the port
   * meanwhile (retried for up to 5 s first). No-op while listening.
   */
  start(): Promise<void>;
}

/**
 * Starts a proxy on `127.0.0.1:<options.port ?? a free port>` that forwards every connection to
 * `127.0.0.1:<targetPort>` byte for byte, in both directions, with half-closes passed on. A
 * connection whose target refuses it is closed at once.
 */
export function startTcpProxy(targetPort: number, options: { port?: number } = {}): TcpProxy {
  const open = new Set<Deno.Conn>();
  const pipes = new Set<Promise<void>>();
  let listener: Deno.Listener | undefined = Deno.listen({
    hostname: "127.0.0.1",
    port: options.port ?? 0,
  });
  const port = (listener.addr as Deno.NetAddr).port;
  let accepted = 0;
  let live = 0;
  let cut = 0;
  let acceptLoop: Promise<void> = accept(listener);

  async function accept(l: Deno.Listener): Promise<void> {
    while (true) {
      let client: Deno.Conn;
      try {
        client = await l.accept();
      } catch {
        return; // listener closed by stop()
      }
      accepted++;
      const pipe = serve(client);
      pipes.add(pipe);
      pipe.finally(() => pipes.delete(pipe));
    }
  }

  async function serve(client: Deno.Conn): Promise<void> {
    live++;
    open.add(client);
    let target: Deno.Conn | undefined;
    try {
      target = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
      open.add(target);
      await Promise.all([copy(client, target), copy(target, client)]);
    } catch {
      // a cut or reset connection: both sides are closed below
    } finally {
      live--;
      for (const conn of [client, target]) {
        if (!conn) continue;
        open.delete(conn);
        close(conn);
      }
    }
  }

  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    get listening() {
      return listener !== undefined;
    },
    get accepted() {
      return accepted;
    },
    get cut() {
      return cut;
    },
    async stop() {
      if (listener) {
        close(listener);
        listener = undefined;
      }
      await acceptLoop;
      cut += live;
      for (const conn of open) close(conn);
      open.clear();
      await Promise.all([...pipes]);
    },
    async start() {
      if (listener) return;
      const deadline = Date.now() + 5000;
      while (true) {
        try {
          listener = Deno.listen({ hostname: "127.0.0.1", port });
          break;
        } catch (error) {
          if (!(error instanceof Deno.errors.AddrInUse) || Date.now() > deadline) throw error;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      acceptLoop = accept(listener);
    },
  };
}

/** Copies `from` to `to` until EOF, then half-closes `to`; throws when either side fails. */
async function copy(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  while (true) {
    const n = await from.read(buffer);
    if (n === null) break;
    let written = 0;
    while (written < n) written += await to.write(buffer.subarray(written, n));
  }
  await to.closeWrite();
}

function close(resource: Deno.Conn | Deno.Listener): void {
  try {
    resource.close();
  } catch { /* already closed */ }
}
