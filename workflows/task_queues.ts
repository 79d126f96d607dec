/**
 * Task queue names shared by the workflows and the worker. No imports: workflow code may use it.
 *
 * An export's short control activities (resolve, count, finish, save, mark, delete,
 * housekeeping, schedule bookkeeping) run on a queue of their own, so that they never wait for
 * a slot behind long `exportRecords` activities (issue 14: a cancel stayed STARTED and a DELETE
 * blocked for a minute while four long exports held every activity slot).
 */

/** The control-activity queue that belongs to export task queue `taskQueue`: `<taskQueue>-control`. */
export function controlTaskQueue(taskQueue: string): string {
  return `${taskQueue}-control`;
}

/**
 * The queue of `awaitAdmission` for export task queue `taskQueue`: `<taskQueue>-admission`. A
 * waiting export holds one of its many cheap slots (it sleeps between database polls), never a
 * control or streaming slot (docs/fair-scheduling.md).
 */
export function admissionTaskQueue(taskQueue: string): string {
  return `${taskQueue}-admission`;
}
