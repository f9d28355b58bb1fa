/**
 * The farm's znodes and the JSON they hold. `/tasks` and `/status` are the public contract
 * (docs/protocol.md); `/master`, `/workers` and `/assign` are internal.
 *
 *   /tasks/task-NNNNNNNNNN          persistent sequential   a task: {"cmd": ...} or {"handler": ..., "input": ...}
 *   /status/NNNNNN/task-NNNNNNNNNN  persistent              its one result: {"state": "succeeded"|"failed", ...},
 *                                                           in the bucket named by the id (statusPath)
 *   /master                         ephemeral               the leading master: {"name", "host", "pid", "since", "queue"}
 *   /masters/<name>                 ephemeral               every master, leader or standby
 *   /election/<name>-NNNNNNNNNN     ephemeral sequential    the masters in line to lead (recipes/election.ts)
 *   /workers/<name>                 ephemeral               a live worker: {"capacity", "prefetch", "paused", ...}
 *   /assign/<worker>/<task-id>      persistent              a task handed to a worker (the task's JSON + "_zkfarm")
 *   /queues/<queue>                 persistent              a queue's controls: {"paused", "rateLimit", "concurrency"}
 *   /queues/<queue>/p<prio>/<bucket>/<task-id>  persistent  the deep-queue backlog (backlogPath): a task the
 *                                                           leader moved out of a deep inbox, same data
 *   /schedules/<name>               persistent              a recurring task: spec and state (schedules/model.ts)
 *   /keys/<xx>/<sha256 of key>      persistent              an idempotency key: {"key", "id"?} (task-keys.ts)
 *   /progress/<task-id>             ephemeral               a running task's latest progress (progress.ts)
 *   /cancel/<task-id>               persistent              a request to cancel a task: {"by"?, "reason"?} (cancel-request.ts)
 *   /delayed/<slot>/<task-id>       persistent              a task due later: the leader's due-time area (due-time.ts)
 *
 * A task's internal bookkeeping travels in its JSON under the reserved key `_zkfarm`
 * (attempts so far, the last error, when it may run again). Every other field is kept as submitted.
 * The task's schema and that bookkeeping: task-schema.ts.
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { assertSafeName } from '../exec/names.js';
import { lazily } from '../lazy-zod.js';
import { DELAYED_ROOT } from './due-time.js';
import type { QueueSummary } from './queue-view.js';
import { type QueueOrder, readServed, type ServedQueue } from './queues.js';
import { checkedTaskJson, type Task } from './task-schema.js';

// A task's JSON, its parse and its bookkeeping live in task-schema.ts; every module imports them from here.
export {
  checkTask,
  checkTaskValue,
  isPlainValidTask,
  KEY_MAX_LENGTH,
  type LostTask,
  lostOnWorker,
  MAX_RETRY_DELAY_MS,
  MAX_TIME_MS,
  maxAttemptsOf,
  type ParsedTask,
  parseTask,
  priorityOf,
  queueOf,
  type RetryPolicy,
  submittedTask,
  type Task,
  type TaskMeta,
  taskMeta,
  taskSchema,
} from './task-schema.js';

export const PATHS = {
  tasks: '/tasks',
  status: '/status',
  master: '/master',
  masters: '/masters',
  election: '/election',
  workers: '/workers',
  assign: '/assign',
  queues: '/queues',
  schedules: '/schedules',
  /** Running tasks' progress (progress.ts). */
  progress: '/progress',
  /** Idempotency keys (task-keys.ts). */
  keys: '/keys',
  /** Requests to cancel a task (cancel-request.ts). */
  cancel: '/cancel',
  /** Tasks due later, by the hour they are due (due-time.ts). */
  delayed: DELAYED_ROOT,
} as const;

export const TASK_PREFIX = 'task-';

export const taskPath = (id: string) => `${PATHS.tasks}/${id}`;

/**
 * Results are sharded into buckets of 10,000 ids so that no listing under /status nears ZooKeeper's
 * 1 MB packet limit. The rule (docs/protocol.md), computable in any language: take the ten-digit
 * sequence number that ends the task id (ZooKeeper's sequential suffix); its six leading digits name the
 * bucket. `task-0000123456` → `/status/000012/task-0000123456`; `task-0000000042` →
 * `/status/000000/task-0000000042`; `task-2147483647` → `/status/214748/task-2147483647`. A task created
 * under another name (not ending in ten digits: a foreign client's plain create) has its result in the
 * bucket `other`.
 */
export function statusBucket(id: string): string {
  const n = id.length;
  if (n >= 10 && isDigits(id, n - 10, n)) return id.slice(n - 10, n - 4);
  return OTHER_BUCKET;
}

/** The bucket of results whose task id does not end in a sequence number. */
export const OTHER_BUCKET = 'other';

/** A task's result: `/status/<bucket>/<task-id>` (see statusBucket). */
export const statusPath = (id: string) => `${PATHS.status}/${statusBucket(id)}/${id}`;
export const statusBucketPath = (bucket: string) => `${PATHS.status}/${bucket}`;
/** Where a result was before buckets (read during an upgrade; see docs/protocol.md, "Upgrading"). */
export const flatStatusPath = (id: string) => `${PATHS.status}/${id}`;

/** Is this child of /status a bucket (and not a result of the flat layout)? */
export function isStatusBucket(name: string): boolean {
  return name === OTHER_BUCKET || (name.length === 6 && isDigits(name, 0, 6));
}

function isDigits(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}
export const workerPath = (name: string) => `${PATHS.workers}/${name}`;
export const masterPath = (name: string) => `${PATHS.masters}/${name}`;
export const assignDir = (worker: string) => `${PATHS.assign}/${worker}`;
export const assignPath = (worker: string, id: string) => `${PATHS.assign}/${worker}/${id}`;
/** A queue's controls (queues.ts). */
export const queuePath = (queue: string) => `${PATHS.queues}/${queue}`;
/** One priority of a queue's backlog: its children are buckets (statusBucket's rule). */
export const backlogLanePath = (queue: string, priority: number) => `${PATHS.queues}/${queue}/p${priority}`;
export const backlogBucketPath = (queue: string, priority: number, bucket: string) =>
  `${backlogLanePath(queue, priority)}/${bucket}`;
/** Where the leader keeps a task of a deep queue: `/queues/<queue>/p<priority>/<bucket>/<task-id>`. */
export const backlogPath = (queue: string, priority: number, id: string) =>
  `${backlogBucketPath(queue, priority, statusBucket(id))}/${id}`;
/** The priority a backlog lane's name (`p0`…`p9`) stands for; undefined for any other name. */
export function lanePriority(name: string): number | undefined {
  return /^p\d$/.test(name) ? Number(name.slice(1)) : undefined;
}

/** A role or task name that is safe as a znode name and as a directory name (see exec/names.ts). */
export function validateName(kind: string, name: string): string {
  assertSafeName(name, `${kind} name`);
  return name;
}

/** The number that ends a task id (its place in /tasks' sequence), or -1. */
export function idNumber(id: string): number {
  const m = /(\d{10})$/.exec(id);
  return m ? Number(m[1]) : -1;
}

/** The task id ZooKeeper's sequence number `n` gives a child of /tasks created as `task-` (idNumber's inverse). */
export function taskIdOf(n: number): string {
  return `task-${String(n).padStart(10, '0')}`;
}

/** Is this a task id as the farm creates them (`task-` and 10 digits)? */
export function isTaskId(id: string): boolean {
  return /^task-\d{10}$/.test(id);
}

/** A task's result in `/status/<bucket>/<task-id>` (statusPath). */
export interface TaskStatus {
  state: 'succeeded' | 'failed' | 'cancelled';
  worker: string | null;
  /** The task's queue (results written since task events: a stream filters by it). */
  queue?: string;
  attempts: number;
  /** When the task was submitted (ms), when known. */
  submittedAt?: number;
  startedAt: number | null;
  finishedAt: number;
  exitCode?: number | null;
  result?: unknown;
  error?: string;
  errorCode?: string;
  /** The task's output directory on the worker's machine, when it has one (see docs/protocol.md). */
  outputDir?: string;
  /** A failed task as it was submitted (without `_zkfarm`): what `runtime retry` submits again. */
  task?: Task;
  /** The task this one re-ran. */
  retryOf?: string;
  /** A cancelled task: who asked, why, and where it was then (cancel-request.ts). */
  cancelledBy?: string;
  reason?: string;
  cancelledWhile?: 'queued' | 'assigned' | 'running';
  [key: string]: unknown;
}

/** The schema of a result, built on its first use (lazy-zod.ts). Exported for the test of isPlainStatus. */
export const statusSchema = lazily((z) =>
  z
    .object({
      state: z.enum(['succeeded', 'failed', 'cancelled']),
      worker: z.string().nullable(),
      attempts: z.number().int().min(0),
      startedAt: z.number().nullable(),
      finishedAt: z.number(),
    })
    .loose(),
);

export function parseStatus(data: Buffer | string): TaskStatus {
  const value = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  // Results as workers write them pass a cheap check: a waiting command (`runtime submit --wait`) never
  // loads zod for them. zod decides, and words the error, for the rest.
  if (isPlainStatus(value)) return value;
  return statusSchema().parse(value) as TaskStatus;
}

/** True only for a value `statusSchema` certainly accepts; false means "ask the schema". Tested against it. */
export function isPlainStatus(v: unknown): v is TaskStatus {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const { state, worker, attempts, startedAt, finishedAt } = v as Record<string, unknown>;
  return (
    (state === 'succeeded' || state === 'failed' || state === 'cancelled') &&
    (worker === null || typeof worker === 'string') &&
    Number.isSafeInteger(attempts) &&
    (attempts as number) >= 0 &&
    (startedAt === null || (typeof startedAt === 'number' && Number.isFinite(startedAt))) &&
    typeof finishedAt === 'number' &&
    Number.isFinite(finishedAt)
  );
}

/** Data a worker advertises in `/workers/<name>`. */
export interface WorkerInfo {
  capacity: number;
  /** Tasks the master may hand over beyond `capacity`, queued at the worker so it never idles. */
  prefetch: number;
  paused: boolean;
  host: string;
  pid: number;
  startedAt: number;
  draining?: boolean;
  /** Runs shell (`cmd`) tasks. */
  shell?: boolean;
  /** The handlers it has (tasks for other handlers go to workers that have them). */
  handlers?: string[];
  /** The queues it serves (no field: `default` alone). */
  queues: ServedQueue[];
  queueOrder: QueueOrder;
  /** Its session's negotiated timeout (ms): how long a service instance may outlive it (services/runner.ts). */
  sessionTimeout?: number;
}

export function parseWorkerInfo(data: Buffer | null): WorkerInfo | undefined {
  if (!data || data.length === 0) return undefined;
  try {
    const v = JSON.parse(data.toString('utf8')) as Partial<WorkerInfo>;
    if (typeof v.capacity !== 'number' || v.capacity < 1) return undefined;
    return {
      capacity: Math.floor(v.capacity),
      prefetch: typeof v.prefetch === 'number' && v.prefetch >= 0 ? Math.floor(v.prefetch) : 0,
      paused: v.paused === true || v.draining === true,
      host: String(v.host ?? ''),
      pid: Number(v.pid ?? 0),
      startedAt: Number(v.startedAt ?? 0),
      draining: v.draining === true,
      shell: v.shell === true,
      queues: readServed(v.queues),
      queueOrder: v.queueOrder === 'strict' ? 'strict' : 'weighted',
      ...(Array.isArray(v.handlers) && v.handlers.every((h) => typeof h === 'string')
        ? { handlers: v.handlers }
        : {}),
    };
  } catch {
    return undefined;
  }
}

/** Data the leader writes in `/master`. */
export interface MasterInfo {
  name: string;
  host: string;
  pid: number;
  since: number;
  /** What waits in /tasks for a reason, and why (rewritten when it changes, at most once a second). */
  queue?: QueueSummary;
}

/**
 * The largest task the farm moves (its JSON). ZooKeeper takes about 1 MB per request; a task travels
 * in multis with other moves and its bookkeeping, so the farm keeps to half of it.
 */
export const TASK_MAX_BYTES = 512 * 1024;

export const encode = (v: unknown): Buffer => Buffer.from(JSON.stringify(v), 'utf8');

/** A task checked and encoded for /tasks (throws ZKFARM_INVALID_TASK: not a task, or over TASK_MAX_BYTES). */
export function encodeTask(task: unknown): Buffer {
  const data = Buffer.from(checkedTaskJson(task).json, 'utf8');
  if (data.length > TASK_MAX_BYTES) {
    throw new ZkfarmError(
      ErrorCodes.INVALID_TASK,
      `the task is ${data.length} bytes of JSON; the limit is ${TASK_MAX_BYTES} (ZooKeeper keeps data small): ` +
        'put large inputs in a file or store and pass a reference',
    );
  }
  return data;
}
