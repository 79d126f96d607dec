/**
 * Side objects of a stream (`SideStore`, registry/types.ts) as small objects in the export's
 * storage, under a prefix inside the export's `<file_uuid>/shards/`: so the cleanup of shard
 * objects (`discardShardFiles` after compose, on failure, cancel, delete; housekeeping once the
 * export ended) removes them too.
 */
import type { SideStore } from "../registry/types.ts";
import type { ObjectStorage } from "../storage/types.ts";

/**
 * The side store of one stream: object `<prefix><name>`. `put` is one single-part upload
 * (begin, append, complete; S3 accepts a last part under 5 MiB, the filesystem backend fsyncs
 * and renames), so an object is either whole or absent, and rewriting a name replaces it; a
 * crash mid-`put` leaves at most an incomplete upload under the prefix, which the shard cleanup
 * aborts. `get`: the object's bytes, or null when there is none.
 */
export function objectSideStore(storage: ObjectStorage, prefix: string): SideStore {
  return {
    async put(name: string, data: Uint8Array): Promise<void> {
      const upload = await storage.beginUpload(prefix + name, "application/json");
      await storage.completeUpload(await storage.appendPart(upload, data));
    },
    async get(name: string): Promise<Uint8Array | null> {
      const key = prefix + name;
      if ((await storage.headObject(key)) === null) return null;
      return new Uint8Array(await new Response(await storage.readObject(key)).arrayBuffer());
    },
  };
}

/**
 * The side objects' prefix of one shard (`<shards prefix>meta/<nnnn>/`) or of the unsharded
 * file (`<shards prefix>meta/file/`), inside the export's shard prefix.
 */
export function sidePrefix(shardsPrefix: string, shard: number | "file"): string {
  const name = shard === "file" ? "file" : String(shard).padStart(4, "0");
  return `${shardsPrefix}meta/${name}/`;
}
