/**
 * The admission queue of exports (docs/fair-scheduling.md), derived from `data_exports` alone: a
 * PENDING export waits, a STARTED one runs. Admission is the PENDING → STARTED transition, made
 * by the waiting export's own workflow (activity `awaitAdmission`) in one transaction under an
 * advisory lock, so two admissions never decide on the same counts; the counts come from the
 * export statuses, so an ended export frees its slot in the very transaction that ends it and no
 * counter can drift. The order itself is the pure `admissionPlan` (domain/admission.ts).
 */
import {
  type AdmissionCaps,
  type AdmissionPlan,
  admissionPlan,
  type RunningExport,
  type WaitingExport,
} from "../domain/admission.ts";
import type { Sql } from "./client.ts";
import { applyJobProgress, insertJobLog, type Transaction } from "./job_progress.ts";
import { inTransaction } from "./transaction.ts";

/** Advisory lock of admission decisions (one at a time across every worker). */
const ADMISSION_LOCK = 727_003;

/**
 * Seconds within which an admitted export's run must take its slot (`slot_untaken_since`: its
 * first stage, `resolveExporter`, follows the admission within a second) before an admission
 * decision returns it to PENDING, and within which a waiting export's own workflow must have
 * polled (`admission_seen_at`) to be planned. Its own poll comes about every second
 * (activities/admission.ts) and records itself at most every {@link SEEN_EVERY_SECONDS}; a
 * worker's crash delays it by the heartbeat timeout (20 s by default). Source: a run terminated
 * while its export waited was admitted (by its own poll still in flight, or another's) and held
 * a slot nobody released (docs/fair-scheduling.md, "The rule").
 */
export const ADMISSION_LIVE_SECONDS = 30;

/** An export's own poll writes `admission_seen_at` when it is older than this (seconds). */
const SEEN_EVERY_SECONDS = 5;

/** An export that waits or runs, as admission reads it. */
interface ActiveRow {
  id: number;
  user_id: number | null;
  project_id: number;
  status: "PENDING" | "STARTED";
}

/**
 * The exports that wait (PENDING, oldest request first: `created_at, id`; a retried export
 * keeps its place) and run (STARTED),
 * and their admission plan under `caps`. With `liveFor` (an admission decision), a waiting export
 * whose own workflow has polled but not in the last {@link ADMISSION_LIVE_SECONDS} (or whose
 * untaken admission was withdrawn) is left out, unless it is export `liveFor`: one whose run is
 * gone neither takes a slot nor holds a place before the others. One that has not polled yet
 * (its run is starting) keeps its place.
 */
async function planQueue(
  sql: Sql | Transaction,
  caps: AdmissionCaps,
  liveFor?: number,
): Promise<{ plan: AdmissionPlan; waiting: Map<number, ActiveRow> }> {
  const live = liveFor === undefined ? sql`` : sql`
    and (status = 'STARTED' or id = ${liveFor} or admission_seen_at is null
      or admission_seen_at > now() - make_interval(secs => ${ADMISSION_LIVE_SECONDS}))`;
  const rows = await sql<ActiveRow[]>`
    select id, user_id, project_id, status from data_exports
    where status in ('PENDING', 'STARTED') ${live}
    order by created_at, id`;
  const waiting: WaitingExport[] = [];
  const running: RunningExport[] = [];
  const byId = new Map<number, ActiveRow>();
  for (const row of rows) {
    const entry = { id: Number(row.id), userId: row.user_id, projectId: Number(row.project_id) };
    if (row.status === "PENDING") {
      waiting.push(entry);
      byId.set(entry.id, row);
    } else {
      running.push(entry);
    }
  }
  return { plan: admissionPlan(waiting, running, caps), waiting: byId };
}

/**
 * The 1-based `queue_position` of every waiting export: `Map<exportId, position>` (an export
 * that is not waiting is absent).
 */
export async function queuePositions(
  sql: Sql,
  caps: AdmissionCaps,
): Promise<Map<number, number>> {
  const { plan } = await planQueue(sql, caps);
  return new Map(plan.order.map((id, i) => [id, i + 1]));
}

/** One line of the operators' queue listing. */
export interface QueuedExport {
  /** 1-based place in the admission order. */
  position: number;
  export_id: number;
  user: { id: number; name: string | null; email: string | null } | null;
  project: { id: number; name: string };
  format: string;
  created_at: Date;
  /** Seconds since the export was requested. */
  waited_seconds: number;
  /** True when a slot is free for it now: its workflow admits it at its next poll. */
  admissible: boolean;
}

/** Every waiting export in admission order, for `GET /api/v2/exports/queue/` and the CLI. */
export async function listQueue(sql: Sql, caps: AdmissionCaps): Promise<QueuedExport[]> {
  const { plan } = await planQueue(sql, caps);
  if (plan.order.length === 0) return [];
  const rows = await sql<{
    id: number;
    user_id: number | null;
    user_name: string | null;
    user_email: string | null;
    project_id: number;
    project_name: string;
    format: string;
    created_at: Date;
    waited: number;
  }[]>`
    select e.id, e.user_id, u.name as user_name, u.email as user_email, e.project_id,
      p.name as project_name, e.format, e.created_at,
      extract(epoch from now() - e.queued_at)::float8 as waited
    from data_exports e join projects p on p.id = e.project_id
    left join users u on u.id = e.user_id
    where e.id = any(${plan.order}::bigint[])`;
  const byId = new Map(rows.map((r) => [Number(r.id), r]));
  const admissible = new Set(plan.admit);
  const listed: QueuedExport[] = [];
  plan.order.forEach((id, i) => {
    const row = byId.get(id);
    if (!row) return; // ended between the two reads
    listed.push({
      position: i + 1,
      export_id: id,
      user: row.user_id === null
        ? null
        : { id: Number(row.user_id), name: row.user_name, email: row.user_email },
      project: { id: Number(row.project_id), name: row.project_name },
      format: row.format,
      created_at: row.created_at,
      waited_seconds: Math.max(0, Math.round(row.waited)),
      admissible: admissible.has(id),
    });
  });
  return listed;
}

/** What {@link admitExport} found. */
export type AdmissionOutcome =
  /** Admitted now, or earlier (not PENDING any more: STARTED, or ended, which the next stage reports). */
  | { state: "admitted"; waitedSeconds?: number }
  /** Still waiting: its 1-based position among `waiting` exports. */
  | { state: "waiting"; position: number; waiting: number }
  /** No such export (deleted): the next stage reports it. */
  | { state: "missing" };

/**
 * Returns to PENDING every export admitted more than {@link ADMISSION_LIVE_SECONDS} ago whose run
 * has not taken the slot (`slot_untaken_since`: its workflow was terminated after its last poll,
 * or its admission came from a poll still in flight when it was), its job PENDING again with a
 * log line, and marks it not polling (`admission_seen_at` '-infinity': no admission decision
 * plans it again until its own workflow polls). Under the admission lock, before a plan.
 */
async function withdrawUntakenAdmissions(tx: Transaction): Promise<void> {
  const withdrawn = await tx<{ id: number }[]>`
    update data_exports set status = 'PENDING', slot_untaken_since = null, started_at = null,
      admission_seen_at = '-infinity', updated_at = now()
    where status = 'STARTED'
      and slot_untaken_since < now() - make_interval(secs => ${ADMISSION_LIVE_SECONDS})
    returning id`;
  for (const { id } of withdrawn) {
    await applyJobProgress(tx, Number(id), () => {}, "PENDING");
    await insertJobLog(
      tx,
      Number(id),
      `admission withdrawn: its run did not take the slot within ${ADMISSION_LIVE_SECONDS} s ` +
        "(its workflow is gone, or its worker is down); waiting again",
      "warning",
    );
  }
}

/**
 * Admits every export whose turn has come, and says where export `exportId` stands: in one
 * transaction under the admission lock, returns to PENDING the admitted exports whose run never
 * took the slot ({@link withdrawUntakenAdmissions}), records this poll (`admission_seen_at`),
 * reads every running export and every waiting one whose workflow polls or is starting, plans
 * (domain/admission.ts) and moves each export the plan admits PENDING → STARTED
 * (`slot_untaken_since` until its run's first stage takes the slot, db/export_transitions.ts
 * `markExportStarted`), with its job STARTED and a log line ("admitted after waiting N s for a
 * slot"); `exportId` records its own run. Admitting the whole plan at once (not only the
 * caller) keeps FIFO within a user when several slots free together, whatever order the waiting
 * exports poll in; their own polls then find them admitted and record their run (`run_id`, else
 * null or a previous run's: a cancel of the run would not be final, `markExportStarted`).
 * Idempotent: an export that is not PENDING is reported admitted without another change, so a
 * retried attempt after a crash never admits twice; one whose admission was withdrawn
 * meanwhile waits again.
 */
export async function admitExport(
  sql: Sql,
  exportId: number,
  options: { caps: AdmissionCaps; runId: string | null; workflowId: string | null },
): Promise<AdmissionOutcome> {
  // cheap check first: most polls of an admitted or gone export need no lock
  const [now] = await sql<{ status: string; run_id: string | null }[]>`
    select status, run_id from data_exports where id = ${exportId}`;
  if (!now) return { state: "missing" };
  if (now.status === "STARTED" && options.runId !== null && now.run_id !== options.runId) {
    // admitted by a peer's poll, which records only its own run: record this one, so that a
    // late attempt of this run after its cancel finds the run it ended (markExportStarted);
    // none when its admission was withdrawn meanwhile (PENDING again: it waits)
    const recorded = await sql`
      update data_exports set run_id = ${options.runId},
        workflow_id = coalesce(${options.workflowId}, workflow_id)
      where id = ${exportId} and status = 'STARTED'`;
    if (recorded.count === 0) return await admitExport(sql, exportId, options);
  }
  if (now.status !== "PENDING") return { state: "admitted" };
  return await inTransaction(sql, async (tx) => {
    // admission is the PENDING → STARTED transition (db/export_transitions.ts names each one)
    await tx`select set_config('application_name', 'ami-exports transition STARTED', true)`;
    await tx`select pg_advisory_xact_lock(${ADMISSION_LOCK})`;
    await withdrawUntakenAdmissions(tx);
    // this export's workflow polls: another's poll may admit it (ADMISSION_LIVE_SECONDS)
    await tx`
      update data_exports set admission_seen_at = now()
      where id = ${exportId} and status = 'PENDING' and (admission_seen_at is null
        or admission_seen_at < now() - make_interval(secs => ${SEEN_EVERY_SECONDS}))`;
    const { plan } = await planQueue(tx, options.caps, exportId);
    const admitted = plan.admit.length === 0 ? [] : await tx<{ id: number; waited: number }[]>`
      update data_exports set status = 'STARTED', started_at = coalesce(started_at, now()),
        updated_at = now(), slot_untaken_since = now()
      where id = any(${plan.admit}::bigint[]) and status = 'PENDING'
      returning id, extract(epoch from now() - queued_at)::float8 as waited`;
    let outcome: AdmissionOutcome | undefined;
    for (const row of admitted) {
      const id = Number(row.id);
      const waitedSeconds = Math.max(0, Math.round(row.waited));
      await applyJobProgress(tx, id, () => {}, "STARTED");
      await insertJobLog(tx, id, `admitted after waiting ${waitedSeconds} s for a slot`, "info");
      if (id === exportId) {
        await tx`
          update data_exports set run_id = ${options.runId},
            workflow_id = coalesce(${options.workflowId}, workflow_id)
          where id = ${id}`;
        outcome = { state: "admitted", waitedSeconds };
      }
    }
    if (outcome) return outcome;
    const position = plan.order.indexOf(exportId) + 1;
    if (position > 0) return { state: "waiting", position, waiting: plan.order.length };
    // ended or deleted since the first check
    const [row] = await tx<{ status: string }[]>`
      select status from data_exports where id = ${exportId}`;
    return row ? { state: "admitted" } : { state: "missing" };
  });
}
