/**
 * Starting the delivery workflows of a transactional outbox (db/outbox.ts): what the email
 * outbox (activities/email_outbox.ts) and the webhook outbox (activities/webhook_outbox.ts)
 * share. Each declares a {@link DeliveryOutbox}; the start, the record of it, the log events
 * and the two moments a start is tried (right after an export's end, the housekeeping sweep)
 * are here.
 */
import { type Client, WorkflowExecutionAlreadyStartedError } from "@temporalio/client";
import type { Config } from "../config/mod.ts";
import type { Sql } from "../db/client.ts";
import type { OutboxRow, UnstartedOptions } from "../db/outbox.ts";
import { logEvent } from "../domain/log.ts";
import { EXPORT_ID } from "../workflows/search_attributes.ts";

/** One outbox: its rows, its delivery workflow and the names its log events and summaries use. */
export interface DeliveryOutbox {
  /** The log stage, and the first word of its log events and run summaries: `email`, `webhook`. */
  stage: "email" | "webhook";
  /** What a row is called in a run's summary: `email`, `event`. */
  rowName: string;
  /** The delivery workflow's type name (`emailDeliveryWorkflow`). */
  workflowType: string;
  /** The delivery workflow id of row `id` (`export-email-<uuid>`). */
  workflowId(id: string): string;
  /** The delivery workflow's arguments for row `id`. */
  args(id: string, config: Config): unknown[];
  /** The rows whose delivery workflow was never started (db/outbox.ts `unstartedOutboxRows`). */
  unstarted(sql: Sql, options: UnstartedOptions): Promise<OutboxRow[]>;
  /** Notes that row `id`'s delivery workflow runs (db/outbox.ts `markOutboxStarted`). */
  markStarted(sql: Sql, id: string): Promise<void>;
}

/** Where a start of deliveries runs: the database, the configuration and Temporal. */
export interface OutboxDeps {
  sql: Sql;
  config: Config;
  temporal: Client;
}

/** The same, when Temporal may be absent (then nothing is started). */
export type OptionalTemporalDeps = Omit<OutboxDeps, "temporal"> & { temporal?: Client };

/** What an outbox's module exports, bound to its {@link DeliveryOutbox}. */
export interface OutboxStarter {
  /**
   * Starts the delivery workflow of each row (reuse policy REJECT_DUPLICATE: "already started"
   * means it runs or ran, which is success) and records it as started. The run carries its
   * export's `ExportId` search attribute and its summary says which row of which export it
   * delivers (`webhook export.succeeded of export 12 (event <uuid>)`), so that `ExportId = 12`
   * in the Temporal UI finds it beside the export's run. Returns the ids started or found
   * started; a failed start is logged (`<stage> delivery not started`, warning) and left for the
   * housekeeping sweep. Throws only when recording a start fails.
   */
  start(deps: OutboxDeps, rows: readonly OutboxRow[]): Promise<string[]>;
  /**
   * Right after an export's end committed: starts the deliveries of its rows not started yet.
   * Never throws (the transition has committed; the sweep starts what is left): a failure is
   * logged (`<stage> deliveries not started`, warning). Without Temporal, nothing.
   */
  startForExport(deps: OptionalTemporalDeps, exportId: number): Promise<void>;
  /**
   * The housekeeping part: starts every row whose workflow was never started (a worker that
   * died between the transition's commit and the start) and that is at least `minAgeSeconds`
   * old. Returns the ids it started; without Temporal, none.
   */
  sweep(deps: OptionalTemporalDeps, options: { minAgeSeconds: number }): Promise<string[]>;
}

/** The starter of `outbox`'s deliveries ({@link OutboxStarter}). */
export function outboxStarter(outbox: DeliveryOutbox): OutboxStarter {
  async function start(deps: OutboxDeps, rows: readonly OutboxRow[]): Promise<string[]> {
    const started: string[] = [];
    for (const { id, exportId, type } of rows) {
      try {
        await deps.temporal.workflow.start(outbox.workflowType, {
          taskQueue: deps.config.temporalTaskQueue,
          workflowId: outbox.workflowId(id),
          args: outbox.args(id, deps.config),
          workflowIdReusePolicy: "REJECT_DUPLICATE",
          typedSearchAttributes: [{ key: EXPORT_ID, value: exportId }],
          staticSummary: `${outbox.stage} ${type} of export ${exportId} (${outbox.rowName} ${id})`,
        });
      } catch (error) {
        if (!(error instanceof WorkflowExecutionAlreadyStartedError)) {
          logEvent(`${outbox.stage} delivery not started`, {
            event_id: id,
            error: String(error),
            stage: outbox.stage,
          }, "warning");
          continue;
        }
      }
      await outbox.markStarted(deps.sql, id);
      started.push(id);
    }
    return started;
  }

  async function startForExport(deps: OptionalTemporalDeps, exportId: number): Promise<void> {
    if (!deps.temporal) return;
    try {
      const rows = await outbox.unstarted(deps.sql, { exportId });
      if (rows.length > 0) await start({ ...deps, temporal: deps.temporal }, rows);
    } catch (error) {
      logEvent(`${outbox.stage} deliveries not started`, {
        export_id: exportId,
        error: String(error),
        stage: outbox.stage,
      }, "warning");
    }
  }

  async function sweep(
    deps: OptionalTemporalDeps,
    options: { minAgeSeconds: number },
  ): Promise<string[]> {
    if (!deps.temporal) return [];
    const rows = await outbox.unstarted(deps.sql, { minAgeSeconds: options.minAgeSeconds });
    return rows.length === 0 ? [] : await start({ ...deps, temporal: deps.temporal }, rows);
  }

  return { start, startForExport, sweep };
}
