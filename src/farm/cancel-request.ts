/**
 * A request to cancel a task, as any ZooKeeper client makes it: one `create /cancel/<task-id>` whose data
 * is `{"by"?, "reason"?}` (JSON; empty data is a request without either). NODE_EXISTS means it was asked
 * already: one request per task, and a request is never withdrawn.
 *
 * Znodes: /cancel/<task-id> (persistent), read by the leading master (cancel-desk.ts: tasks still
 * waiting, and cleaning up) and by the worker holding the task (worker-cancels.ts). It is deleted once
 * the task has its final status, whichever that is: the status says what happened (`cancelled`, or the
 * result that came first).
 *
 * Pure: no I/O here.
 */
import type { Task, TaskStatus } from './protocol.js';
import { PATHS, submittedTask, taskMeta } from './protocol.js';

/** Who asked and why; each at most MAX_FIELD characters (longer text is cut, not refused). */
export interface CancelRequest {
  by?: string;
  reason?: string;
}

/** Where a task was when it was cancelled. */
export type CancelledWhile = 'queued' | 'assigned' | 'running';

const MAX_FIELD = 1024;

export const cancelPath = (id: string) => `${PATHS.cancel}/${id}`;

export function encodeCancelRequest(r: CancelRequest): Buffer {
  return Buffer.from(JSON.stringify(clean({ ...r })), 'utf8');
}

/**
 * A request's data as the farm reads it: anything that is not a JSON object with string fields counts
 * as a request without `by` and `reason` (a foreign client's bad data still cancels; it never crashes a
 * role), with a note in `reason` saying so.
 */
export function parseCancelRequest(data: Buffer | null | undefined): CancelRequest {
  if (!data || data.length === 0) return {};
  try {
    const v = JSON.parse(data.toString('utf8')) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return clean(v as Record<string, unknown>);
  } catch {
    // falls through to the note below
  }
  return { reason: 'cancel request data was not a JSON object {"by"?, "reason"?}' };
}

function clean(v: Record<string, unknown>): CancelRequest {
  const out: CancelRequest = {};
  if (typeof v.by === 'string' && v.by !== '') out.by = v.by.slice(0, MAX_FIELD);
  if (typeof v.reason === 'string' && v.reason !== '') out.reason = v.reason.slice(0, MAX_FIELD);
  return out;
}

/** The one `cancelled` status object of the farm. */
export function cancelledStatus(c: {
  task: Task;
  request: CancelRequest;
  while: CancelledWhile;
  worker: string | null;
  startedAt?: number | null;
  now?: number;
}): TaskStatus {
  const meta = taskMeta(c.task);
  return {
    state: 'cancelled',
    worker: c.worker,
    attempts: meta.attempts + (c.while === 'running' ? 1 : 0),
    submittedAt: meta.submittedAt,
    startedAt: c.startedAt ?? null,
    finishedAt: c.now ?? Date.now(),
    cancelledBy: c.request.by,
    reason: c.request.reason,
    cancelledWhile: c.while,
    // Kept as submitted, as a failure's is: a cancelled task can be re-run (runtime retry).
    task: submittedTask(c.task),
    retryOf: meta.retryOf,
  };
}
