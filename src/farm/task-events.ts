/**
 * Task events, derived from the farm's own nodes: what a change of a node says about a task, and the
 * event it makes. Pure (no I/O): event-stream.ts feeds it ZooKeeper's notifications and the data it read.
 *
 * Nothing is written for events: every event is a change the farm makes anyway (docs/protocol.md,
 * "Task events"). Which change makes which event:
 *
 * | node change                                   | event                                             |
 * | --------------------------------------------- | ------------------------------------------------- |
 * | `/tasks/<id>` created, `attempts` 0           | `queued`                                          |
 * | `/tasks/<id>` created, `attempts` ≥ 1         | `retrying` (a run failed or was lost; `error`)    |
 * | `/assign/<w>/<id>` created                    | `started`: handed to worker `w`                   |
 * | `/progress/<id>` created or changed           | `progress` (`value`, `message`)                   |
 * | `/status/<bucket>/<id>` created               | the result's `state`: `succeeded`, `failed`, ...  |
 * | `/queues/<q>/p<p>/<bucket>/<id>` created      | none (still queued: moved to the backlog); says its queue |
 * | `/delayed/<slot>/<id>` created                | `delayed` until its due time (`until`); when due, it is `queued` (or `retrying`) again |
 *
 * Deletes make no event: every move that deletes a task's node creates its next node in the same multi,
 * and that create is the event.
 */

import type { ProgressRecord } from './progress.js';
import { isStatusBucket, PATHS, type Task, type TaskStatus } from './protocol.js';
import { DEFAULT_QUEUE } from './queues.js';

/** The kinds of task events; a result's `state` other than these (a newer farm's) passes as it is. */
export type TaskEventType =
  | 'queued'
  | 'delayed'
  | 'retrying'
  | 'started'
  | 'progress'
  | 'succeeded'
  | 'failed'
  | 'cancelled';

export interface TaskEvent {
  type: TaskEventType | (string & {});
  id: string;
  /** The task's queue, when known (the stream reads it from the task's nodes). */
  queue?: string;
  /** `started`, `progress` and results: the worker. */
  worker?: string;
  /**
   * When it happened (ms since the epoch): the node's creation time; for `started`, when the stream learnt
   * it; for `progress`, the report's time; for a result, its `finishedAt`.
   */
  at: number;
  /** The run it concerns: the run handed out (`started`), the next run (`queued`, `retrying`), runs made (results). */
  attempt?: number;
  /** `delayed`: when it is due (ms since the epoch). */
  until?: number;
  /** `progress`: the task's number and message. */
  value?: number;
  message?: string;
  /** `retrying`: why the last run failed; `failed` (and other results): the result's error. */
  error?: string;
  errorCode?: string;
  /**
   * True when ZooKeeper reported the change as it happened; false when the stream inferred it from the
   * state it read after a reconnection or a new session (notifications are not kept while disconnected).
   */
  seen: boolean;
}

/** A notification that concerns a task, from its path alone. */
export type RawChange =
  | { kind: 'task'; id: string; path: string }
  | { kind: 'assign'; id: string; worker: string; path: string }
  | { kind: 'progress'; id: string; path: string }
  | { kind: 'status'; id: string; path: string }
  | { kind: 'backlog'; id: string; queue: string }
  | { kind: 'delayed'; id: string; path: string };

/** The subtrees a stream watches (recursively). */
export const EVENT_ROOTS: readonly string[] = [
  PATHS.tasks,
  PATHS.assign,
  PATHS.progress,
  PATHS.status,
  PATHS.queues,
  PATHS.delayed,
];

const CREATED = 1;
const DATA_CHANGED = 3;

/**
 * What a notification (ZooKeeper's event type, the node's path) says about a task; undefined for the
 * changes that make no event (deletes, the farm's own bookkeeping nodes, buckets, queue controls).
 */
export function classifyChange(type: number, path: string): RawChange | undefined {
  if (type !== CREATED && type !== DATA_CHANGED) return undefined;
  const parts = path.split('/');
  const root = `/${parts[1]}`;
  if (type === DATA_CHANGED) {
    return root === PATHS.progress && parts.length === 3
      ? { kind: 'progress', id: parts[2]!, path }
      : undefined;
  }
  switch (root) {
    case PATHS.tasks:
      // `zkfarm-…` children are the farm's scratch nodes (the id floor), never tasks.
      return parts.length === 3 && !parts[2]!.startsWith('zkfarm-')
        ? { kind: 'task', id: parts[2]!, path }
        : undefined;
    case PATHS.assign:
      return parts.length === 4 ? { kind: 'assign', id: parts[3]!, worker: parts[2]!, path } : undefined;
    case PATHS.progress:
      return parts.length === 3 ? { kind: 'progress', id: parts[2]!, path } : undefined;
    case PATHS.status:
      // A flat /status/<id> is a result of the old layout being moved into its bucket: seen there.
      return parts.length === 4 && isStatusBucket(parts[2]!)
        ? { kind: 'status', id: parts[3]!, path }
        : undefined;
    case PATHS.delayed:
      return parts.length === 4 ? { kind: 'delayed', id: parts[3]!, path } : undefined;
    case PATHS.queues:
      return parts.length === 6 && /^p\d$/.test(parts[3]!)
        ? { kind: 'backlog', id: parts[5]!, queue: parts[2]! }
        : undefined;
    default:
      return undefined;
  }
}

/** A node's JSON and creation time, as the stream read it (undefined: gone before it was read). */
export interface NodeRead {
  json: unknown;
  ctime: number;
}

function taskOf(json: unknown): Task | undefined {
  return json && typeof json === 'object' && !Array.isArray(json) ? (json as Task) : undefined;
}

/** The queue a node's data names (a task in /tasks or /assign, or a failed result's `task`). */
export function queueInData(raw: RawChange, json: unknown): string | undefined {
  if (raw.kind === 'backlog') return raw.queue;
  const t = taskOf(json);
  if (!t) return undefined;
  if (raw.kind === 'task' || raw.kind === 'assign' || raw.kind === 'delayed')
    return typeof t.queue === 'string' ? t.queue : DEFAULT_QUEUE;
  if (raw.kind === 'status') {
    if (typeof (t as TaskStatus).queue === 'string') return (t as TaskStatus).queue;
    const task = (t as TaskStatus).task;
    return task ? (typeof task.queue === 'string' ? task.queue : DEFAULT_QUEUE) : undefined;
  }
  return undefined;
}

function attemptsOf(t: Task | undefined): number {
  const n = t?._zkfarm?.attempts;
  return typeof n === 'number' && n >= 0 ? n : 0;
}

/**
 * The event a change makes, from the data read for it; undefined when it makes none (a backlog move,
 * a progress node gone before it was read, data that is not what the farm writes).
 */
export function eventOf(raw: RawChange, read: NodeRead | undefined, now: number): TaskEvent | undefined {
  if (raw.kind === 'backlog') return undefined;
  const at = read?.ctime ?? now;
  const base = { id: raw.id, at, seen: true };
  const t = taskOf(read?.json);
  switch (raw.kind) {
    case 'task': {
      const attempts = attemptsOf(t);
      if (attempts === 0) return { type: 'queued', ...base, attempt: 1 };
      const error = t?._zkfarm?.lastError;
      return { type: 'retrying', ...base, attempt: attempts + 1, ...(error ? { error } : {}) };
    }
    case 'delayed': {
      const until = t?._zkfarm?.notBefore;
      return {
        type: 'delayed',
        ...base,
        attempt: attemptsOf(t) + 1,
        ...(until !== undefined ? { until } : {}),
      };
    }
    case 'assign':
      return { type: 'started', ...base, worker: raw.worker, ...(t ? { attempt: attemptsOf(t) + 1 } : {}) };
    case 'progress': {
      if (!t) return undefined;
      const p = t as unknown as ProgressRecord;
      return {
        type: 'progress',
        ...base,
        at: typeof p.at === 'number' ? p.at : at,
        ...(typeof p.worker === 'string' ? { worker: p.worker } : {}),
        ...(typeof p.attempt === 'number' ? { attempt: p.attempt } : {}),
        ...(typeof p.value === 'number' ? { value: p.value } : {}),
        ...(typeof p.message === 'string' ? { message: p.message } : {}),
      };
    }
    case 'status':
      return resultEvent(raw.id, t as TaskStatus | undefined, at, true);
  }
}

/** The event of a result (`state` as its type; `seen` false when inferred after a reconnection). */
export function resultEvent(
  id: string,
  s: TaskStatus | undefined,
  at: number,
  seen: boolean,
): TaskEvent | undefined {
  if (!s || typeof s.state !== 'string') return undefined;
  return {
    type: s.state,
    id,
    at: typeof s.finishedAt === 'number' ? s.finishedAt : at,
    seen,
    ...(typeof s.worker === 'string' ? { worker: s.worker } : {}),
    ...(typeof s.attempts === 'number' ? { attempt: s.attempts } : {}),
    ...(typeof s.error === 'string' ? { error: s.error } : {}),
    ...(typeof s.errorCode === 'string' ? { errorCode: s.errorCode } : {}),
  };
}

/** Is this event a task's last (a result)? */
export function isFinal(ev: TaskEvent): boolean {
  return !['queued', 'delayed', 'retrying', 'started', 'progress'].includes(ev.type);
}

/** One line for a terminal: time, id, type and what the event says. */
export function formatEvent(ev: TaskEvent): string {
  const parts = [new Date(ev.at).toISOString(), ev.id, ev.type.padEnd(9)];
  if (ev.worker) parts.push(`on ${ev.worker}`);
  if (ev.queue && ev.queue !== DEFAULT_QUEUE) parts.push(`queue ${ev.queue}`);
  if (ev.attempt !== undefined) parts.push(`attempt ${ev.attempt}`);
  if (ev.until !== undefined) parts.push(`until ${new Date(ev.until).toISOString()}`);
  if (ev.value !== undefined) parts.push(String(ev.value));
  if (ev.message) parts.push(ev.message);
  if (ev.errorCode) parts.push(ev.errorCode);
  if (ev.error) parts.push(ev.error.split('\n')[0]!.slice(0, 120));
  if (!ev.seen) parts.push('(inferred)');
  return parts.join('  ');
}

/** How far along a run a step is (a result ends the task). */
const RANK: Readonly<Record<string, number>> = { queued: 1, retrying: 1, started: 2, progress: 2 };

/**
 * Does `ev` take a task no further than its last event told (`last`: its type and run)? An earlier run,
 * or in the same run a step not after the last one (a result always goes further).
 */
export function notAhead(ev: TaskEvent, last: { last: string; attempt?: number }): boolean {
  const rank = RANK[ev.type];
  if (rank === undefined) return false;
  const attempt = ev.attempt ?? last.attempt;
  if (attempt !== undefined && last.attempt !== undefined && attempt !== last.attempt)
    return attempt < last.attempt;
  return rank <= (RANK[last.last] ?? 0);
}
