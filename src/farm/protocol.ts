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
 */
import { z } from 'zod';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { assertSafeName } from '../exec/names.js';
import { DELAYED_ROOT, delayMsSchema, runAtSchema } from './due-time.js';
import type { QueueSummary } from './queue-view.js';
import {
  DEFAULT_QUEUE,
  isPriority,
  isQueueName,
  MAX_PRIORITY,
  MIN_PRIORITY,
  QUEUE_NAME_EXPECTED,
  type QueueOrder,
  readServed,
  type ServedQueue,
} from './queues.js';

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

/** A task's `key` is 1 to KEY_MAX_LENGTH characters (task-keys.ts). */
export const KEY_MAX_LENGTH = 256;

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

/** Is this a task id as the farm creates them (`task-` and 10 digits)? */
export function isTaskId(id: string): boolean {
  return /^task-\d{10}$/.test(id);
}

/** Internal bookkeeping kept inside a task's JSON. */
export interface TaskMeta {
  /** Runs started so far (incremented when a run ends: failure or worker loss). */
  attempts: number;
  /** Don't assign before this time (ms since epoch): retry backoff, or a task scheduled ahead. */
  notBefore?: number;
  /** Why the last run failed. */
  lastError?: string;
  /** Worker names whose runs were lost (crash, expiry). */
  lostOn?: string[];
  /** When the task was submitted (its /tasks znode's creation time, ms), copied by the master. */
  submittedAt?: number;
  /** The task this one re-runs (`runtime retry`): its result carries the link too. */
  retryOf?: string;
}

/** How a task's failed runs are spaced (the task's `retry` field; else the worker's retryDelayMs). */
export interface RetryPolicy {
  /** The wait before the second run (ms). */
  delayMs: number;
  /** "fixed": every wait is delayMs; "exponential": it doubles each run. @defaultValue "exponential" */
  backoff?: 'fixed' | 'exponential';
  /** The longest wait (ms). @defaultValue 30000, or delayMs when larger */
  maxDelayMs?: number;
}

/** The longest retry wait a task may ask for: a day. */
export const MAX_RETRY_DELAY_MS = 86_400_000;

/** The largest time a Date holds (ms since the epoch): a `notBefore` beyond it is not a time. */
export const MAX_TIME_MS = 8.64e15;

const metaSchema = z
  .object({
    attempts: z.number().int().min(0).default(0),
    notBefore: z
      .number()
      .int('must be a whole number of ms since the epoch')
      .min(0, 'must be a time in ms since the epoch')
      .max(MAX_TIME_MS, `must be a time in ms since the epoch, at most ${MAX_TIME_MS}`)
      .optional(),
    lastError: z.string().optional(),
    lostOn: z.array(z.string()).optional(),
    submittedAt: z.number().optional(),
    retryOf: z.string().optional(),
  })
  .loose();

const delayMs = z
  .number()
  .int(`must be a whole number of ms from 0 to ${MAX_RETRY_DELAY_MS} (a day)`)
  .min(0, `must be a whole number of ms from 0 to ${MAX_RETRY_DELAY_MS} (a day)`)
  .max(MAX_RETRY_DELAY_MS, `must be a whole number of ms from 0 to ${MAX_RETRY_DELAY_MS} (a day)`);

const retrySchema = z
  .object({
    delayMs,
    backoff: z.enum(['fixed', 'exponential']).optional(),
    maxDelayMs: delayMs.optional(),
  })
  .strict();

/** The schema of a task (exported for the tests that hold the fast check to it). */
export const taskSchema = z
  .object({
    cmd: z.string().min(1, 'must be a non-empty string').optional(),
    handler: z.string().min(1, 'must be a non-empty string').optional(),
    input: z.unknown().optional(),
    timeoutMs: z.number().int().positive().optional(),
    maxAttempts: z.number().int().min(1).max(100).optional(),
    queue: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, `must be ${QUEUE_NAME_EXPECTED}`)
      .optional(),
    priority: z
      .number()
      .int(`must be a whole number from ${MIN_PRIORITY} to ${MAX_PRIORITY} (higher runs first)`)
      .min(MIN_PRIORITY, `must be a whole number from ${MIN_PRIORITY} to ${MAX_PRIORITY} (higher runs first)`)
      .max(MAX_PRIORITY, `must be a whole number from ${MIN_PRIORITY} to ${MAX_PRIORITY} (higher runs first)`)
      .optional(),
    retry: retrySchema.optional(),
    key: z
      .string()
      .min(1, `must be a string of 1 to ${KEY_MAX_LENGTH} characters`)
      .max(KEY_MAX_LENGTH, `must be a string of 1 to ${KEY_MAX_LENGTH} characters`)
      .optional(),
    traceparent: z.string().optional(),
    tracestate: z.string().optional(),
    runAt: runAtSchema.optional(),
    delayMs: delayMsSchema.optional(),
    _zkfarm: metaSchema.optional(),
  })
  .loose()
  .refine((t) => (t.cmd === undefined) !== (t.handler === undefined), {
    message: 'a task names exactly one of "cmd" (a shell command) or "handler" (a handler name)',
  });

export interface Task {
  cmd?: string;
  handler?: string;
  input?: unknown;
  timeoutMs?: number;
  maxAttempts?: number;
  /** The queue it waits in (queues.ts). @defaultValue "default" */
  queue?: string;
  /** 0-9, higher runs first within its queue. @defaultValue 0 */
  priority?: number;
  /** How failed runs are spaced when `maxAttempts` allows another. */
  retry?: RetryPolicy;
  /** The submitter's idempotency key: a second submission with it creates nothing (task-keys.ts). */
  key?: string;
  /** W3C trace context of the submitter's span (tracing.ts). */
  traceparent?: string;
  tracestate?: string;
  /** Not before this time: ms since the epoch, or an ISO-8601 time with its zone (due-time.ts). */
  runAt?: number | string;
  /** Not before this long after its submission (ms, at most 366 days; due-time.ts). */
  delayMs?: number;
  _zkfarm?: TaskMeta;
  [key: string]: unknown;
}

export const queueOf = (task: Task): string => task.queue ?? DEFAULT_QUEUE;
export const priorityOf = (task: Task): number => task.priority ?? 0;

export type ParsedTask = { ok: true; task: Task } | { ok: false; error: string };

/** Parse a task's data; never throws. A bad task yields a readable reason for its failed status. */
export function parseTask(data: Buffer | string | null | undefined): ParsedTask {
  const text =
    data === null || data === undefined ? '' : typeof data === 'string' ? data : data.toString('utf8');
  if (text.trim() === '')
    return {
      ok: false,
      error:
        'task data is empty: expected a JSON object like {"cmd": "..."} or {"handler": "echo", "input": 1}',
    };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: `task data is not valid JSON (${(err as Error).message}): ${preview(text)}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      ok: false,
      error: `task data must be a JSON object, got ${Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'null' : typeof value}`,
    };
  }
  // Most tasks are plain: a cheap check settles them; zod decides (and words the error) for the rest.
  if (isPlainValidTask(value as Record<string, unknown>)) return { ok: true, task: value as Task };
  const r = taskSchema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue?.path.length ? `"${issue.path.join('.')}": ` : '';
    return { ok: false, error: `invalid task: ${where}${issue?.message ?? 'unknown problem'}` };
  }
  return { ok: true, task: value as Task };
}

const optionalIs = (v: unknown, ok: (v: unknown) => boolean) => v === undefined || ok(v);
const isString = (v: unknown) => typeof v === 'string';
const isNonEmptyString = (v: unknown) => typeof v === 'string' && v.length > 0;
const isNumber = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
const isSafeInt = (v: unknown): v is number => Number.isSafeInteger(v);

/**
 * True only for a task that `taskSchema` certainly accepts (the common shapes, checked field by field
 * without building anything); false means "ask the schema", not "invalid". Tested against the schema.
 */
export function isPlainValidTask(v: Record<string, unknown>): boolean {
  const { cmd, handler, timeoutMs, maxAttempts, queue, priority, key, retry, _zkfarm: meta } = v;
  if ((cmd === undefined) === (handler === undefined) || retry !== undefined) return false;
  if (v['runAt'] !== undefined || v['delayMs'] !== undefined) return false; // the schema words their errors
  if (!optionalIs(key, (k) => typeof k === 'string' && k.length > 0 && k.length <= KEY_MAX_LENGTH))
    return false;
  if (!optionalIs(v['traceparent'], isString) || !optionalIs(v['tracestate'], isString)) return false;
  if (!optionalIs(queue, isQueueName) || !optionalIs(priority, isPriority)) return false;
  if (!optionalIs(cmd, isNonEmptyString) || !optionalIs(handler, isNonEmptyString)) return false;
  if (!optionalIs(timeoutMs, (t) => isSafeInt(t) && t > 0)) return false;
  if (!optionalIs(maxAttempts, (m) => isSafeInt(m) && m >= 1 && m <= 100)) return false;
  if (meta === undefined) return true;
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return false;
  const m = meta as Record<string, unknown>;
  return (
    optionalIs(m['attempts'], (a) => isSafeInt(a) && a >= 0) &&
    optionalIs(m['notBefore'], (t) => isSafeInt(t) && t >= 0 && t <= MAX_TIME_MS) &&
    optionalIs(m['lastError'], isString) &&
    optionalIs(m['submittedAt'], isNumber) &&
    optionalIs(m['retryOf'], isString) &&
    optionalIs(m['lostOn'], (l) => Array.isArray(l) && l.every(isString))
  );
}

/** Check a task before submitting it (throws ZKFARM_INVALID_TASK with the reason). */
export function checkTask(task: unknown): Task {
  const r = parseTask(JSON.stringify(task ?? null));
  if (!r.ok) throw new ZkfarmError(ErrorCodes.INVALID_TASK, r.error);
  return r.task;
}

function preview(text: string): string {
  const t = text.length > 80 ? `${text.slice(0, 80)}…` : text;
  return JSON.stringify(t);
}

export function taskMeta(task: Task): TaskMeta {
  return task._zkfarm ?? { attempts: 0 };
}

export function maxAttemptsOf(task: Task): number {
  return task.maxAttempts ?? 1;
}

/** What becomes of a task whose worker was lost while holding it (crash, expiry, restart under its name). */
export type LostTask = { requeue: Task } | { fail: { error: string; attempts: number } };

/**
 * Count one more loss of `task` on `worker`: it goes back to the queue with the worker added to
 * `lostOn` and one more attempt, or, lost `maxLost` times (default: max(3, maxAttempts)), it fails:
 * a task that keeps taking its workers down must not take the farm down with it.
 */
export function lostOnWorker(task: Task, worker: string, maxLost?: number): LostTask {
  const meta = taskMeta(task);
  const lostOn = [...(meta.lostOn ?? []), worker];
  const attempts = meta.attempts + 1;
  if (lostOn.length >= (maxLost ?? Math.max(3, maxAttemptsOf(task)))) {
    return {
      fail: {
        error: `the task's worker was lost ${lostOn.length} times (${lostOn.join(', ')}); it may be crashing its workers`,
        attempts,
      },
    };
  }
  return { requeue: { ...task, _zkfarm: { ...meta, attempts, lostOn } } };
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

/** A task as its submitter gave it: the farm's bookkeeping (`_zkfarm`) left out. */
export function submittedTask(task: Task): Task {
  const { _zkfarm: _meta, ...rest } = task;
  return rest;
}

const statusSchema = z
  .object({
    state: z.enum(['succeeded', 'failed', 'cancelled']),
    worker: z.string().nullable(),
    attempts: z.number().int().min(0),
    startedAt: z.number().nullable(),
    finishedAt: z.number(),
  })
  .loose();

export function parseStatus(data: Buffer | string): TaskStatus {
  const value = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  return statusSchema.parse(value) as TaskStatus;
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
  const data = encode(checkTask(task));
  if (data.length > TASK_MAX_BYTES) {
    throw new ZkfarmError(
      ErrorCodes.INVALID_TASK,
      `the task is ${data.length} bytes of JSON; the limit is ${TASK_MAX_BYTES} (ZooKeeper keeps data small): ` +
        'put large inputs in a file or store and pass a reference',
    );
  }
  return data;
}
