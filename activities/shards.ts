/**
 * The sharded export (docs/architecture.md, Sharded exports): plan the shards, export each into its own object,
 * compose them into the file, discard them.
 */
import { ApplicationFailure } from "@temporalio/common";
import { createSHA256 } from "hash-wasm";
import {
  appendJobLog,
  applyJobProgress,
  exportOptions,
  type ExportRow,
  ownsExport,
  putSkippedCount,
  recordedSourceVersions,
  recordExportFile,
  setStage,
  STAGES,
  updateRunProgress,
} from "../db/exports.ts";
import { inTransaction } from "../db/transaction.ts";
import { withoutParallelWorkers } from "../db/client.ts";
import { readConsistently, readSnapshot, sameSourceVersions } from "../db/snapshot.ts";
import { exporterFor, getExporter, supportedFormats } from "../registry/mod.ts";
import { shardStream, withByteOrderMark } from "../registry/stream.ts";
import {
  type Exporter,
  type ExportQueryContext,
  ExportRefusedError,
  type ShardBound,
} from "../registry/types.ts";
import { currentRunId, type ExportAccess } from "./export_access.ts";
import { exportNotFound, unknownFormat } from "./failures.ts";
import { shardPrefix } from "./file_keys.ts";
import { endStatementsWithAttempt, keepAlive } from "./keep_alive.ts";
import { objectSideStore, sidePrefix } from "./side_store.ts";
import { streamToUpload } from "./stream_to_upload.ts";
import type { ExportedShard, ShardPlan, ShardSpec } from "./types.ts";

/**
 * At most this many shards per export, whatever `EXPORT_SHARD_RECORDS` says: each shard is a
 * handful of workflow history events and one object; 64 keep the history small and are more
 * parallel activities than a deployment runs at once.
 */
export const MAX_SHARDS = 64;

/** `planShards`, `exportShard`, `composeShards` and `discardShards`. */
// deno-lint-ignore explicit-function-return-type
export function createShardActivities(access: ExportAccess) {
  const {
    sql,
    readSql,
    storage,
    config,
    requireExport,
    queryContext,
    discardShardFiles,
    notRunning,
  } = access;

  /**
   * The exporter the export's options make (`exporterFor`: the variant of its options, over its
   * chosen `columns`), the one its unsharded run would stream; undefined for an unknown format.
   * COCO with `include_images` shards as a zip archive (`shardUnits`), not as the JSON file.
   */
  function exporterOf(row: ExportRow): Exporter | undefined {
    const found = getExporter(row.format);
    return found && exporterFor(found, exportOptions(row));
  }

  /**
   * Records one shard's records and images left out (null: a format without images), in one
   * transaction that holds the job row: `records_exported` and the export's `skipped_count` are
   * the sums over the shards. Only while run `runId` owns the export (db/job_progress.ts
   * `ownsExport`): a late report of an earlier run after a retry changes nothing.
   */
  async function reportShardProgress(
    exportId: number,
    runId: string | null,
    shard: number,
    report: { records: number; skipped: number | null },
  ): Promise<void> {
    const { records, skipped } = report;
    const [found] = await sql`select 1 from data_exports where id = ${exportId}`;
    if (!found) throw exportNotFound(exportId);
    await inTransaction(sql, async (tx) => {
      if (!(await ownsExport(tx, exportId, runId))) return;
      let skippedSum: number | null = null;
      await applyJobProgress(tx, exportId, (progress) => {
        const stage = progress.stages.find((s) => s.key === STAGES.export.key) as
          | { shard_records?: Record<string, number>; shard_skipped?: Record<string, number> }
          | undefined;
        if (!stage) return;
        const counts = stage.shard_records ??= {};
        counts[String(shard)] = records;
        const sum = Object.values(counts).reduce((a, b) => a + b, 0);
        const total = progress.stages.find((s) => s.key === STAGES.export.key)?.params
          .find((p) => p.key === "total_records")?.value;
        setStage(progress, STAGES.export.key, {
          status: "STARTED",
          progress: typeof total === "number" && total > 0 ? sum / total : 0,
          params: { records_exported: sum },
        });
        if (skipped === null && stage.shard_skipped === undefined) return;
        const lefts = stage.shard_skipped ??= {};
        if (skipped !== null) lefts[String(shard)] = skipped;
        skippedSum = Object.values(lefts).reduce((a, b) => a + b, 0);
        putSkippedCount(progress, skippedSum);
      });
      if (skippedSum !== null) {
        await tx`update data_exports set skipped_count = ${skippedSum} where id = ${exportId}`;
      }
    });
  }

  /**
   * `layout` (an archive's `shardLayout`: the heads and tables it reads, e.g. `crops_by_taxon`'s
   * manifest) in one read-only snapshot of the export read database, which must hold the data
   * the count read, as every shard's did: else it fails (`ShardSnapshotChanged`, not retried)
   * and the workflow exports the file unsharded, from one snapshot.
   */
  async function layoutInOneMoment<T>(
    row: ExportRow,
    layout: (ctx: ExportQueryContext) => Promise<T>,
  ): Promise<T> {
    const ctx = await queryContext(row);
    return await readConsistently(readSql, async (tx) => {
      if (
        !sameSourceVersions(recordedSourceVersions(row), await readSnapshot(tx, row.project_id))
      ) {
        await appendJobLog(
          sql,
          row.id,
          "the data changed since the count before the shards were composed: the file's parts " +
            "would not refer to each other, so it is exported unsharded, from one snapshot",
          "warning",
        );
        throw ApplicationFailure.nonRetryable(
          "the data changed since the count before the shards were composed",
          "ShardSnapshotChanged",
        );
      }
      return await layout({ ...ctx, sql: tx });
    });
  }

  /**
   * Records the file key (so a failure removes a composed file), then removes leftover shard
   * objects of an earlier run of the export, and logs the split; returns the plan. In that
   * order: the key is recorded only by the run that owns the export (`run_id`), so a late
   * planShards of an earlier run stops there, before it could remove a newer run's shards
   * under the same prefix.
   */
  async function recordPlan(
    row: ExportRow,
    prefix: string,
    fileKey: string,
    shards: ShardSpec[],
    every: number,
  ): Promise<ShardPlan> {
    // only on a running export of this run: one cancelled meanwhile has had its cleanup, one
    // retried meanwhile belongs to its new run
    if (
      !(await recordExportFile(sql, row.id, { fileKey, uploadId: null, runId: currentRunId() }))
    ) {
      throw await notRunning(row.id);
    }
    await discardShardFiles(prefix);
    const members = new Set(shards.map((s) => s.member)).size;
    await appendJobLog(
      sql,
      row.id,
      `export split into ${shards.length} shards of about ${every} records` +
        (shards[0].member === undefined ? "" : ` (${members} archive members)`),
    );
    return { prefix, shards };
  }

  return {
    /**
     * Decides whether the export is sharded (docs/architecture.md, Sharded exports): only formats with
     * `shardBounds` (stream formats: and `shard`; archives: `shardUnits` and `shard`, one shard
     * a unit), only above `EXPORT_SHARD_RECORDS` records
     * (0: never), at most {@link MAX_SHARDS} shards of about equal record counts (a bound that
     * would leave the last shard empty is dropped). Records the file key (so a failure
     * removes a composed file; only the run that owns the export can) and then removes leftover
     * shard objects of an earlier run of this export. An empty plan means: export unsharded.
     */
    async planShards(
      input: { exportId: number; fileKey: string; totalRecords: number },
    ): Promise<ShardPlan> {
      return await keepAlive(async () => {
        const row = await requireExport(input.exportId);
        const prefix = shardPrefix(config.storagePrefix, row.file_uuid);
        const exporter = exporterOf(row);
        const limit = config.exportShardRecords;
        const none: ShardPlan = { prefix, shards: [] };
        if (
          !exporter ||
          !(exporter.kind === "stream"
            ? exporter.shard && (exporter.shardBounds || exporter.shardUnits)
            : exporter.shardBounds) ||
          limit === 0 ||
          input.totalRecords <= limit
        ) {
          return none;
        }
        const wanted = Math.min(MAX_SHARDS, Math.ceil(input.totalRecords / limit));
        const every = Math.ceil(input.totalRecords / wanted);
        const context = await queryContext(row);
        // on the export read database, like the count (docs/replica.md), in one read-only
        // transaction whose statements end with the attempt (a retry never runs beside them)
        const reading = <T>(read: (query: ExportQueryContext) => Promise<T>): Promise<T> =>
          inTransaction(readSql, async (tx) => {
            await endStatementsWithAttempt(tx);
            await withoutParallelWorkers(tx);
            return await read({ ...context, sql: tx });
          }, { mode: "isolation level repeatable read read only" });
        if (exporter.kind === "stream" && exporter.shardUnits) {
          const shardUnits = exporter.shardUnits;
          const units = await reading((query) =>
            shardUnits(query, {
              every,
              wanted,
              totalRecords: input.totalRecords,
              maxRecords: config.exportBatchSize,
            })
          );
          if (units.length < 2) return none;
          let before = 0;
          const shards = units.map((unit, index): ShardSpec => {
            const spec: ShardSpec = {
              index,
              key: `${prefix}${String(index).padStart(4, "0")}.${exporter.extension}`,
              afterId: unit.afterId,
              untilId: unit.untilId,
              recordsBefore: before,
              records: unit.records,
              first: index === 0,
              last: index === units.length - 1,
              batchRecords: config.exportBatchSize,
              member: unit.member,
              ...(unit.reads ? { reads: unit.reads } : {}),
            };
            before += unit.records;
            return spec;
          });
          return await recordPlan(row, prefix, input.fileKey, shards, every);
        }
        if (!exporter.shardBounds) return none;
        // a record format's bound i closes (i+1)·every records, a stream format's says how
        // many it closes; a stream whose batch boundaries are in the file (Parquet) places its
        // bounds on them
        const batch = { maxRecords: config.exportBatchSize };
        const bounds: ShardBound[] = (exporter.kind === "stream"
          ? await reading((query) =>
            exporter.shardBounds!(query, every, batch)
          )
          : (await reading((query) => exporter.shardBounds!(query, every)))
            .map((id, i) => ({ id, records: (i + 1) * every })))
          .filter((bound) => bound.records < input.totalRecords).slice(0, wanted - 1);
        if (bounds.length === 0) return none;
        const shards: ShardSpec[] = [];
        for (let index = 0; index <= bounds.length; index++) {
          const last = index === bounds.length;
          const recordsBefore = index === 0 ? 0 : bounds[index - 1].records;
          shards.push({
            index,
            key: `${prefix}${String(index).padStart(4, "0")}.${exporter.extension}`,
            afterId: index === 0 ? null : bounds[index - 1].id,
            untilId: last ? null : bounds[index].id,
            recordsBefore,
            records: Math.max(
              0,
              (last ? input.totalRecords : bounds[index].records) - recordsBefore,
            ),
            first: index === 0,
            last,
            batchRecords: config.exportBatchSize,
          });
        }
        return await recordPlan(row, prefix, input.fileKey, shards, every);
      });
    },

    /**
     * Exports one shard (records `afterId` < id ≤ `untilId`) into its own object under the
     * export's `shards/` prefix, resuming from its own heartbeat checkpoint like
     * `exportRecords`; publishes the shard object and returns its key, size and records.
     */
    async exportShard(input: { exportId: number; shard: ShardSpec }): Promise<ExportedShard> {
      const row = await requireExport(input.exportId);
      const exporter = exporterOf(row);
      if (!exporter || (exporter.kind === "stream" && !exporter.shard)) {
        throw unknownFormat(row.format, supportedFormats());
      }
      const { shard } = input;
      const runId = currentRunId();
      const excel = exportOptions(row).excel_compatible === true &&
        (exporter.acceptedOptions ?? []).includes("excel_compatible");
      const shards = shardPrefix(config.storagePrefix, row.file_uuid);
      // a unit that starts from what earlier units left reads their side stores
      const earlier = (shard.reads ?? []).map((k) =>
        objectSideStore(storage, sidePrefix(shards, k))
      );
      const stream = exporter.kind === "stream"
        ? exporter.shard!(shard, earlier)
        : shardStream(exporter, shard);
      const side = stream.sideObjects
        ? objectSideStore(storage, sidePrefix(shards, shard.index))
        : undefined;
      const file = await streamToUpload(access, {
        row,
        stream: excel && shard.first ? withByteOrderMark(stream) : stream,
        side,
        query: await queryContext(row),
        key: shard.key,
        contentType: exporter.contentType,
        totalRecords: shard.records,
        label: `shard ${shard.index} `,
        owns: () => true, // the checkpoint is this activity's own, and so is its upload
        beforeBegin: () => Promise.resolve(),
        afterBegin: () => Promise.resolve(),
        async snapshotTaken(versions) {
          if (!sameSourceVersions(recordedSourceVersions(row), versions)) {
            if (exporter.kind === "stream" && exporter.shardsReferAcross) {
              // its shards' rows refer to each other's: they must all read the count's data
              await appendJobLog(
                sql,
                row.id,
                `shard ${shard.index} reads the data as changed since the count: the file's ` +
                  "parts would not refer to each other, so it is exported unsharded, from one " +
                  "snapshot",
                "warning",
              );
              throw ApplicationFailure.nonRetryable(
                `shard ${shard.index}: the data changed since the count`,
                "ShardSnapshotChanged",
              );
            }
            // each shard reads its own snapshot: records stay whole (no record refers to
            // another), the file as a whole spans the moments of its shards (docs/operations.md)
            await appendJobLog(
              sql,
              row.id,
              `shard ${shard.index} reads the data as changed since the count`,
              "warning",
            );
          }
          return shard.records;
        },
        progress: (records, _total, skipped) =>
          reportShardProgress(row.id, runId, shard.index, { records, skipped }),
      });
      const { size } = await keepAlive(() => storage.completeUpload(file.upload));
      return { index: shard.index, key: shard.key, bytes: size, records: file.records };
    },

    /**
     * Publishes the export's file as the concatenation of its shard objects
     * (`storage.composeObject`: server-side on S3), computes its SHA-256 by streaming the
     * composed object once (flat memory), then removes the shard objects. A format with a
     * `shardTail` (Parquet: the footer, made from the shards' side objects) gets it written as
     * the object `<prefix>tail.<extension>` and appended as the last piece. Idempotent: a retry
     * after the shards were removed finds the composed file of the expected size (with a tail:
     * larger than the shards by at least a footer; the attempt that removed them checked the
     * exact size first). When the export ended meanwhile (a cancel: no longer STARTED), removes
     * the composed file and the shard objects and fails, non-retryable (`ExportEnded`).
     */
    async composeShards(input: {
      exportId: number;
      fileKey: string;
      contentType: string;
      prefix: string;
      shards: ExportedShard[];
    }): Promise<{ size: number; checksum: string }> {
      return await keepAlive(async () => {
        const row = await requireExport(input.exportId);
        const exporter = exporterOf(row);
        const runId = currentRunId();
        await updateRunProgress(sql, input.exportId, { runId }, (progress) => {
          setStage(progress, STAGES.upload.key, { status: "STARTED" });
        });
        const ordered = [...input.shards].sort((a, b) => a.index - b.index);
        let total = ordered.reduce((n, s) => n + s.bytes, 0);
        const sources = ordered.map((s) => ({ key: s.key, size: s.bytes }));
        const present = await Promise.all(sources.map((s) => storage.headObject(s.key)));
        // the bytes after the last shard (Parquet's footer), or between and around the units
        // of an archive (`shardLayout`), when the format has any
        const shardTail = exporter?.kind === "stream" ? exporter.shardTail : undefined;
        const shardLayout = exporter?.kind === "stream" ? exporter.shardLayout : undefined;
        const made = shardTail ?? shardLayout;
        if (present.some((head) => head === null)) {
          // an earlier attempt composed the file and removed (some) shards
          const head = await storage.headObject(input.fileKey);
          // with a tail, that attempt checked the exact size before it removed anything
          if (made && head && head.size > total) total = head.size;
          if (head?.size !== total) {
            throw new Error(
              `shard objects are gone and the file has ${
                head?.size ?? "no"
              } bytes, expected ${total}: ${input.fileKey}`,
            );
          }
        } else {
          // a compose attempt killed mid-way left an upload under the file's own key
          for (const orphan of await storage.listIncompleteUploads(input.fileKey)) {
            if (orphan.key === input.fileKey) await storage.abortUpload(orphan);
          }
          const units = ordered.map((s) => ({
            bytes: s.bytes,
            side: objectSideStore(storage, sidePrefix(input.prefix, s.index)),
          }));
          const layout: (number | Uint8Array)[] = shardLayout
            ? await layoutInOneMoment(row, (ctx) => shardLayout(ctx, units)).catch((error) => {
              // the shards together cannot make the file (too many images left out)
              if (!(error instanceof ExportRefusedError)) throw error;
              throw ApplicationFailure.nonRetryable(error.message, "ExportRefused");
            })
            : shardTail
            ? [...ordered.keys(), await shardTail(units)]
            : [...ordered.keys()];
          const pieces: { key: string; size: number }[] = [];
          total = 0;
          for (const [n, piece] of layout.entries()) {
            if (typeof piece === "number") {
              pieces.push(sources[piece]);
              total += sources[piece].size;
              continue;
            }
            // bytes made here: stored as an object of their own, composed in their place
            const key = `${input.prefix}${shardLayout ? `glue-${n}` : "tail"}.${
              exporter!.extension
            }`;
            const upload = await storage.beginUpload(key, input.contentType);
            await storage.completeUpload(await storage.appendPart(upload, piece));
            pieces.push({ key, size: piece.length });
            total += piece.length;
          }
          await storage.composeObject(input.fileKey, input.contentType, pieces);
        }
        const recorded = await recordExportFile(sql, input.exportId, {
          fileKey: input.fileKey,
          uploadId: null,
          runId,
        });
        if (!recorded) {
          // ended by a cancel while this ran (its cleanup may have missed these): remove them
          await storage.deleteObject(input.fileKey);
          await discardShardFiles(input.prefix);
          throw await notRunning(input.exportId);
        }
        const hasher = await createSHA256();
        hasher.init();
        let size = 0;
        for await (const chunk of await storage.readObject(input.fileKey)) {
          hasher.update(chunk);
          size += chunk.byteLength;
        }
        if (size !== total) {
          throw new Error(`composed file has ${size} bytes, expected ${total}: ${input.fileKey}`);
        }
        await discardShardFiles(input.prefix);
        return { size, checksum: hasher.digest("hex") };
      });
    },

    /**
     * Removes every shard object and incomplete shard upload under `prefix` (an export's
     * `<file_uuid>/shards/`), and the file at `fileKey` when given (an export deleted mid-way).
     * Idempotent.
     */
    async discardShards(input: { prefix: string; fileKey?: string }): Promise<void> {
      await keepAlive(async () => {
        await discardShardFiles(input.prefix);
        if (input.fileKey) await storage.deleteObject(input.fileKey);
      });
    },
  };
}
