import { Client, type ConnectionLike } from "@temporalio/client";
import { NativeConnection } from "@temporalio/worker";
import type { Config } from "../config/mod.ts";
import { retryForever } from "./backoff.ts";
import { installRuntime } from "./runtime.ts";

/** A Temporal client with the connection to close when done. */
export interface TemporalHandle {
  client: Client;
  /** True once a connection is established (always true for {@link connectTemporal}). */
  connected(): boolean;
  close(): Promise<void>;
}

/** Thrown by a {@link connectTemporalInBackground} client while Temporal has not answered yet. */
export class TemporalUnavailableError extends Error {
  constructor(address: string) {
    super(`Temporal is not reachable at ${address} (still retrying)`);
    this.name = "TemporalUnavailableError";
  }
}

/**
 * Opens a `NativeConnection` (the SDK's Rust core gRPC, tonic/h2), never `@temporalio/client`'s
 * `Connection` (grpc-js over `node:http2`): under Deno 2.9 a server GOAWAY on a `node:http2`
 * session crashes the process inside nghttp2 (denoland/deno#36788; docs/architecture.md,
 * "Running Temporal's TS SDK under Deno"). Throws when Temporal does not answer.
 */
export async function openNativeConnection(address: string): Promise<NativeConnection> {
  installRuntime();
  return await NativeConnection.connect({ address });
}

/**
 * Closes `connection`; one the SDK's runtime already closed (it does on SIGINT/SIGTERM, before
 * our own shutdown runs) is left alone instead of throwing `IllegalStateError: Client already
 * closed`.
 */
export async function closeNativeConnection(connection: NativeConnection): Promise<void> {
  try {
    await connection.close();
  } catch (error) {
    if (!(error instanceof Error && /already closed/i.test(error.message))) throw error;
  }
}

/**
 * Connects a Temporal client to the configured address and namespace (see
 * {@link openNativeConnection}). Throws when Temporal does not answer: for one-shot commands.
 */
export async function connectTemporal(
  config: Pick<Config, "temporalAddress" | "temporalNamespace">,
): Promise<TemporalHandle> {
  const connection = await openNativeConnection(config.temporalAddress);
  const client = new Client({ connection, namespace: config.temporalNamespace });
  return { client, connected: () => true, close: () => closeNativeConnection(connection) };
}

/**
 * A Temporal client that exists at once and connects in the background, retrying with backoff
 * (1 s doubling to 30 s) and logging each failure, for long-running processes that must start
 * while Temporal is down. Until the first connection succeeds, every call rejects with
 * {@link TemporalUnavailableError}; afterwards the native connection reconnects by itself.
 */
export function connectTemporalInBackground(
  config: Pick<Config, "temporalAddress" | "temporalNamespace">,
): TemporalHandle {
  const connection = new DeferredConnection(config.temporalAddress);
  const stop = new AbortController();
  retryForever(
    "Temporal",
    config.temporalAddress,
    () => openNativeConnection(config.temporalAddress),
    stop.signal,
  ).then((native) => {
    if (!native) return;
    // a connection that arrives after close() would keep the process alive: close it too
    if (stop.signal.aborted) return void closeNativeConnection(native).catch(() => {});
    connection.current = native;
  });
  const client = new Client({ connection, namespace: config.temporalNamespace });
  return {
    client,
    connected: () => connection.current !== undefined,
    close: async () => {
      stop.abort();
      await connection.close();
    },
  };
}

/** A `ConnectionLike` whose native connection arrives later. */
class DeferredConnection implements ConnectionLike {
  readonly plugins = [];
  current?: NativeConnection;

  constructor(private readonly address: string) {}

  #require(): NativeConnection {
    if (!this.current) throw new TemporalUnavailableError(this.address);
    return this.current;
  }

  get workflowService(): ConnectionLike["workflowService"] {
    return this.#require().workflowService;
  }

  get operatorService(): ConnectionLike["operatorService"] {
    return this.#require().operatorService;
  }

  async ensureConnected(): Promise<void> {
    await this.#require().ensureConnected();
  }

  withDeadline<R>(deadline: number | Date, fn: () => Promise<R>): Promise<R> {
    return this.#require().withDeadline(deadline, fn);
  }

  withMetadata<R>(
    metadata: Parameters<ConnectionLike["withMetadata"]>[0],
    fn: () => Promise<R>,
  ): Promise<R> {
    return this.#require().withMetadata(metadata, fn);
  }

  withAbortSignal<R>(signal: AbortSignal, fn: () => Promise<R>): Promise<R> {
    return this.#require().withAbortSignal(signal, fn);
  }

  async close(): Promise<void> {
    if (this.current) await closeNativeConnection(this.current);
  }
}
