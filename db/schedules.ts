/** Queries on `export_schedules`, shared by the API and the schedule activities. */
import type { Sql } from "./client.ts";
import type { ExportScope } from "./exports.ts";

/** An `export_schedules` row with its owner's name. */
export interface ScheduleRow {
  id: number;
  user_id: number;
  user_name: string | null;
  project_id: number;
  format: string;
  filters: Record<string, unknown>;
  filters_display: Record<string, unknown>;
  cron: string | null;
  interval_seconds: number | null;
  timezone: string;
  keep_last: number | null;
  paused: boolean;
  created_at: Date;
  updated_at: Date;
}

/** The Temporal Schedule id of a schedule row. */
export function scheduleTemporalId(scheduleId: number): string {
  return `export-schedule-${scheduleId}`;
}

/** One schedule, or undefined. */
export async function findSchedule(sql: Sql, id: number): Promise<ScheduleRow | undefined> {
  const [row] = await sql<ScheduleRow[]>`
    select s.*, u.name as user_name
    from export_schedules s left join users u on u.id = s.user_id
    where s.id = ${id}`;
  return row;
}

/** Creates a schedule row; returns its id. */
export async function insertSchedule(
  sql: Sql,
  input: ExportScope & {
    cron: string | null;
    intervalSeconds: number | null;
    timezone: string;
    keepLast: number | null;
  },
): Promise<number> {
  const [row] = await sql<{ id: number }[]>`
    insert into export_schedules (user_id, project_id, format, filters, filters_display, cron,
      interval_seconds, timezone, keep_last)
    values (${input.userId}, ${input.projectId}, ${input.format},
      ${sql.json(input.filters as never)}, ${sql.json(input.filtersDisplay as never)},
      ${input.cron}, ${input.intervalSeconds}, ${input.timezone}, ${input.keepLast})
    returning id`;
  return row.id;
}

/** A page of schedules (newest first) the user may read, optionally of one project. */
export async function listSchedules(
  sql: Sql,
  options: {
    projectId?: number;
    readableBy: { userId: number; superuser: boolean };
    limit: number;
    offset: number;
  },
): Promise<{ count: number; rows: ScheduleRow[] }> {
  const project = options.projectId === undefined
    ? sql``
    : sql`and s.project_id = ${options.projectId}`;
  const readable = options.readableBy.superuser ? sql`` : sql`
    and (not p.draft or p.owner_id = ${options.readableBy.userId} or exists (
      select 1 from project_memberships m
      where m.project_id = p.id and m.user_id = ${options.readableBy.userId}))`;
  const [{ n }] = await sql<{ n: number }[]>`
    select count(*)::bigint as n from export_schedules s join projects p on p.id = s.project_id
    where true ${project} ${readable}`;
  const rows = await sql<ScheduleRow[]>`
    select s.*, u.name as user_name
    from export_schedules s
    join projects p on p.id = s.project_id
    left join users u on u.id = s.user_id
    where true ${project} ${readable}
    order by s.id desc
    limit ${options.limit} offset ${options.offset}`;
  return { count: n, rows };
}

/** Records whether the schedule is paused. */
export async function setSchedulePaused(sql: Sql, id: number, paused: boolean): Promise<void> {
  await sql`update export_schedules set paused = ${paused}, updated_at = now() where id = ${id}`;
}

/** Deletes the schedule row; its exports stay (their `schedule_id` becomes null). */
export async function deleteScheduleRow(sql: Sql, id: number): Promise<void> {
  await sql`delete from export_schedules where id = ${id}`;
}

/** Ids of the schedule's exports, newest first. */
export async function scheduleExportIds(sql: Sql, id: number, limit = 10): Promise<number[]> {
  const rows = await sql<{ id: number }[]>`
    select id from data_exports where schedule_id = ${id} order by id desc limit ${limit}`;
  return rows.map((r) => r.id);
}
