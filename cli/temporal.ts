import { Client, Connection } from "@temporalio/client";
import type { Config } from "../config/mod.ts";

/** A Temporal client with the connection to close when done. */
export interface TemporalHandle {
  client: Client;
  close(): Promise<void>;
}

/** Connects a Temporal client (gRPC) to the configured address and namespace. */
export async function connectTemporal(
  config: Pick<Config, "temporalAddress" | "temporalNamespace">,
): Promise<TemporalHandle> {
  const connection = await Connection.connect({ address: config.temporalAddress });
  const client = new Client({ connection, namespace: config.temporalNamespace });
  return { client, close: () => connection.close() };
}
