/**
 * Every atomic step of the protocol, written once. Each builds the operations of one multi (all happen
 * or none: a crash at any instant leaves the task in exactly one place) and, where it records a
 * result, the status object. docs/protocol.md ("How a task moves") maps one to one to these.
 *
 *   assign     /tasks/<id> → /assign/<w>/<id>    create the assignment (task JSON), delete the task at
 *                                               the version read; guard: /workers/<w> still exists
 *                                               (or from the backlog: /queues/<q>/p<p>/<b>/<id>)
 *   shelve     /tasks/<id> → /queues/<q>/p<p>/<b>/<id>  into the deep-queue backlog: create it there with
 *                                               the same data, delete the task at the version read
 *   delay      /tasks/<id> → /delayed/<slot>/<id>  into the due-time area (a task due later than the
 *                                               leader's threshold): create it there with its due time
 *                                               in `_zkfarm.notBefore`, delete the task at the version read
 *   undelay    /delayed/<slot>/<id> → /tasks/<id>  back to the queue once (nearly) due: create the task
 *                                               unchanged, delete the area's node at the version read
 *   giveBack   /assign/<w>/<id> → /tasks/<id>    create the task unchanged (pause, drain), delete the
 *                                               assignment (at the version read)
 *   requeue    /assign/<w>/<id> → /tasks/<id>    the same with one more attempt counted: after a failed
 *                                               run that may be retried (the error, a `notBefore` from
 *                                               src/backoff.ts), or after its worker was lost (`lostOn`)
 *   complete   /assign/<w>/<id> → /status/<b>/<id>  create the status (the run's outcome), delete the assignment
 *   fail       /assign/<w>/<id> → /status/<b>/<id>  create a failed status (why), delete the assignment
 *   reject     /tasks/<id> → /status/<b>/<id>       create a failed status (why), delete the task
 *   cancel     /tasks/<id> (or wherever it waits) or /assign/<w>/<id> → /status/<b>/<id>  create the
 *                                               `cancelled` status (who, why: cancel-request.ts), delete
 *                                               the task where it was, at the version read
 *   discard    /assign/<w>/<id> → (nothing)       delete the assignment, checking that /status/<b>/<id>
 *                                               exists: a task given back after its result was
 *                                               recorded is not run twice
 *
 * <b> is the result's bucket (protocol.ts statusPath); its writers make it first (status-store.ts).
 *
 * Deleting the assignment in the same multi as recording its result fences a worker whose task was
 * taken away (its session was lost, the task given back): its multi fails and records nothing.
 * The assign guard fences a worker that vanished while the leader planned: it gets nothing.
 */
import { backoffDelay } from '../backoff.js';
import { ErrorCodes } from '../errors.js';
import type { ExecOutcome } from '../exec/index.js';
import type { BatchItem } from '../recipes/multi-batcher.js';
import { type CancelledWhile, type CancelRequest, cancelledStatus } from './cancel-request.js';
import { delayedPath } from './due-time.js';
import {
  assignPath,
  encode,
  lostOnWorker,
  maxAttemptsOf,
  queueOf,
  statusPath,
  submittedTask,
  type Task,
  type TaskStatus,
  taskMeta,
  taskPath,
  workerPath,
} from './protocol.js';
import { isQueueName } from './queues.js';

export type MoveKind =
  | 'assign'
  | 'shelve'
  | 'delay'
  | 'undelay'
  | 'give-back'
  | 'requeue'
  | 'complete'
  | 'fail'
  | 'reject'
  | 'cancel'
  | 'discard';

/** One step of one task: a batch item (its operations, its guards) that says what it is. */
export interface Move extends BatchItem {
  readonly kind: MoveKind;
  readonly id: string;
  /** The worker the task goes to (assign) or comes from (the others but reject). */
  readonly worker?: string;
  /** The result it records (complete, fail, reject). */
  readonly status?: TaskStatus;
  /** Where the task is taken from when not /tasks/<id> (assign, reject: a backlog node; undelay: its /delayed node). */
  readonly from?: string;
  /** Where it goes when not one of the usual places (shelve: its backlog node; delay: its /delayed node). */
  readonly to?: string;
  /** When it is due (delay). */
  readonly due?: number;
}

/** The largest status kept in a znode; a larger result is left out (it is in result.json). */
export const STATUS_MAX_BYTES = 256 * 1024;

/** `from`: the backlog node the task is handed out from (else its /tasks node). */
export function assign(id: string, worker: string, task: Buffer, version: number, from?: string): Move {
  return {
    kind: 'assign',
    id,
    worker,
    ops: [
      { op: 'create', path: assignPath(worker, id), data: task },
      { op: 'delete', path: from ?? taskPath(id), version },
    ],
    guards: guardOf(worker),
    ...(from !== undefined ? { from } : {}),
  };
}

/** A task of a deep inbox into its queue's backlog (`to`: backlogPath), its data unchanged. */
export function shelve(id: string, to: string, task: Buffer, version: number): Move {
  return {
    kind: 'shelve',
    id,
    to,
    ops: [
      { op: 'create', path: to, data: task },
      { op: 'delete', path: taskPath(id), version },
    ],
  };
}

/**
 * A task due at `due` into the due-time area, `_zkfarm.notBefore` = `due` and `submittedAt` = its
 * /tasks node's creation (`ctime`), so that it is not delayed again when it comes back with a new ctime.
 */
export function delay(id: string, task: Task, due: number, ctime: number, version: number): Move {
  const meta = taskMeta(task);
  const data = encode({
    ...task,
    _zkfarm: { ...meta, submittedAt: meta.submittedAt ?? ctime, notBefore: due },
  });
  const to = delayedPath(due, id);
  return {
    kind: 'delay',
    id,
    to,
    due,
    ops: [
      { op: 'create', path: to, data },
      { op: 'delete', path: taskPath(id), version },
    ],
  };
}

/** A task of the due-time area (`from`: its node there) back into /tasks, its data unchanged. */
export function undelay(id: string, from: string, data: Buffer, version: number): Move {
  return {
    kind: 'undelay',
    id,
    from,
    ops: [
      { op: 'create', path: taskPath(id), data },
      { op: 'delete', path: from, version },
    ],
  };
}

/** One guard list per worker name, shared by its assign moves (a round makes hundreds). */
const guards = new Map<string, readonly string[]>();
function guardOf(worker: string): readonly string[] {
  let g = guards.get(worker);
  if (!g) {
    if (guards.size > 10_000) guards.clear();
    g = [workerPath(worker)];
    guards.set(worker, g);
  }
  return g;
}

export function giveBack(id: string, worker: string, task: Task, version = -1): Move {
  return fromAssignment('give-back', id, worker, version, {
    op: 'create',
    path: taskPath(id),
    data: encode(task),
  });
}

/**
 * After a failed run: back to the queue for another attempt when the task allows one and the failure
 * is retryable; else undefined. Its next run waits as the task's `retry` says (`retryWait`), or by
 * default `retryDelayMs` × 2^(attempt − 1), at most 30 s.
 */
export function requeue(
  id: string,
  worker: string,
  task: Task,
  outcome: Pick<ExecOutcome, 'state' | 'retryable' | 'error'>,
  retryDelayMs: number,
  now = Date.now(),
): Move | undefined {
  const meta = taskMeta(task);
  const attempt = meta.attempts + 1;
  if (outcome.state !== 'failed' || outcome.retryable === false || attempt >= maxAttemptsOf(task))
    return undefined;
  const delay = retryWait(task, attempt, retryDelayMs);
  const next: Task = {
    ...task,
    _zkfarm: { ...meta, attempts: attempt, notBefore: now + delay, lastError: outcome.error },
  };
  return fromAssignment('requeue', id, worker, -1, { op: 'create', path: taskPath(id), data: encode(next) });
}

/** The wait before run `attempt + 1` of a task (after `attempt` failed runs). */
export function retryWait(task: Task, attempt: number, defaultDelayMs: number): number {
  const r = task.retry;
  if (!r) return backoffDelay({ initialMs: defaultDelayMs, maxMs: 30_000, jitter: 'none' }, attempt - 1);
  if (r.backoff === 'fixed') return r.delayMs;
  const maxMs = r.maxDelayMs ?? Math.max(30_000, r.delayMs);
  return backoffDelay({ initialMs: r.delayMs, maxMs, jitter: 'none' }, attempt - 1);
}

/** Record a run's outcome (see `requeue` for a failure that goes round again). */
export function complete(id: string, worker: string, task: Task, outcome: ExecOutcome): Move {
  const meta = taskMeta(task);
  // One object literal, every field present (JSON leaves the undefined ones out): one shape per status.
  const status: TaskStatus = {
    state: outcome.state,
    worker,
    // The task's queue: a result alone then says it (event streams filter by it).
    queue: queueOf(task),
    attempts: meta.attempts + 1,
    submittedAt: meta.submittedAt,
    startedAt: outcome.startedAt,
    finishedAt: outcome.finishedAt,
    exitCode: outcome.exitCode,
    result: outcome.result,
    error: outcome.error,
    errorCode: outcome.errorCode,
    outputDir: outcome.outputDir,
    // A failure keeps the task as submitted: it can be re-run or exported as a dead letter.
    task: outcome.state === 'failed' ? submittedTask(task) : undefined,
    retryOf: meta.retryOf,
  };
  return recording('complete', id, worker, status, assignPath(worker, id), -1);
}

/** A failed status for a task held in /assign/<w> that will not run (again). */
export function fail(id: string, worker: string, why: Failure, version = -1): Move {
  return recording('fail', id, worker, failedStatus({ worker, ...why }), assignPath(worker, id), version);
}

/** A failed status for a queued task that cannot run (bad data, unreadable, too large); `from`: its backlog node. */
export function reject(id: string, why: Failure, version = -1, from?: string): Move {
  const m = recording(
    'reject',
    id,
    undefined,
    failedStatus({ worker: null, ...why }),
    from ?? taskPath(id),
    version,
  );
  return from !== undefined ? { ...m, from } : m;
}

/**
 * A cancelled status for a task, taken from where it is: `from` is where it waits (its /tasks node, a
 * backlog node, any place the locator finds) or its assignment (`worker` set). Creating the status in
 * the same multi as the delete makes a cancel that races the task's completion end with one status:
 * whichever multi comes first; the other is refused.
 */
export function cancel(
  id: string,
  task: Task,
  request: CancelRequest,
  at: { from: string; version: number; while: CancelledWhile; worker?: string; startedAt?: number | null },
): Move {
  const status = cancelledStatus({
    task,
    request,
    while: at.while,
    worker: at.worker ?? null,
    startedAt: at.startedAt,
  });
  const m = recording('cancel', id, at.worker, status, at.from, at.version);
  return at.from !== taskPath(id) && at.worker === undefined ? { ...m, from: at.from } : m;
}

/** Drop an assignment whose task already has its result (only if it has: the check fences it). */
export function discard(id: string, worker: string): Move {
  return {
    kind: 'discard',
    id,
    worker,
    ops: [
      { op: 'check', path: statusPath(id) },
      { op: 'delete', path: assignPath(worker, id) },
    ],
  };
}

/**
 * A task whose worker was lost while holding it (crash, expiry, a restart under its name): back to the
 * queue with the loss counted, or failed with ZKFARM_WORKER_LOST once lost `maxLost` times.
 */
export function afterLoss(id: string, worker: string, task: Task, version = -1, maxLost?: number): Move {
  const lost = lostOnWorker(task, worker, maxLost);
  if ('requeue' in lost)
    return fromAssignment('requeue', id, worker, version, {
      op: 'create',
      path: taskPath(id),
      data: encode(lost.requeue),
    });
  const meta = taskMeta(task);
  return fail(
    id,
    worker,
    {
      error: lost.fail.error,
      errorCode: ErrorCodes.WORKER_LOST,
      attempts: lost.fail.attempts,
      submittedAt: meta.submittedAt,
      task,
    },
    version,
  );
}

/** Why a task ends failed without a run. */
export interface Failure {
  error: string;
  errorCode: string;
  /** Runs so far. @defaultValue 0 */
  attempts?: number;
  submittedAt?: number;
  /** The task, when it was read: kept (as submitted) in the failed status. */
  task?: Task;
}

/** The one failed-status object of the farm (for tasks that end without a run's own outcome). */
export function failedStatus(f: Failure & { worker: string | null; now?: number }): TaskStatus {
  return {
    state: 'failed',
    worker: f.worker,
    attempts: f.attempts ?? 0,
    submittedAt: f.submittedAt,
    startedAt: null,
    finishedAt: f.now ?? Date.now(),
    error: f.error,
    errorCode: f.errorCode,
    ...(f.task && isQueueName(queueOf(f.task)) ? { queue: queueOf(f.task) } : {}),
    ...(f.task ? { task: submittedTask(f.task) } : {}),
    ...(f.task?._zkfarm?.retryOf ? { retryOf: f.task._zkfarm.retryOf } : {}),
  };
}

/** A status as stored: one that does not fit a znode loses its result (it is in result.json). */
export function encodeStatus(status: TaskStatus): Buffer {
  const buf = encode(status);
  if (buf.length <= STATUS_MAX_BYTES) return buf;
  if (status.task !== undefined) {
    // A large task is the first thing to leave out: its submitter has it.
    const { task: _task, ...withoutTask } = status;
    return encodeStatus({ ...withoutTask, taskOmitted: true });
  }
  const { result: _dropped, ...rest } = status;
  const note = `result too large for ZooKeeper (${buf.length} bytes); see result.json in the output directory`;
  const slim = encode({ ...rest, resultTruncated: true, note });
  if (slim.length <= STATUS_MAX_BYTES) return slim;
  // Even without the result it is too large (a huge error text): keep the start of the error.
  return encode({
    ...rest,
    error: `${String(rest.error ?? '').slice(0, 4096)}…`,
    resultTruncated: true,
    note,
  });
}

function fromAssignment(
  kind: MoveKind,
  id: string,
  worker: string,
  version: number,
  create: BatchItem['ops'][number],
): Move {
  return { kind, id, worker, ops: [create, { op: 'delete', path: assignPath(worker, id), version }] };
}

function recording(
  kind: MoveKind,
  id: string,
  worker: string | undefined,
  status: TaskStatus,
  from: string,
  version: number,
): Move {
  return {
    kind,
    id,
    worker,
    status,
    ops: [
      { op: 'create', path: statusPath(id), data: encodeStatus(status) },
      { op: 'delete', path: from, version },
    ],
  };
}
