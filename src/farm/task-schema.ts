/**
 * A task's JSON: its schema, the parse that never throws, and the farm's bookkeeping under `_zkfarm`.
 * The same JSON is the data of `/tasks/<task-id>`, `/assign/<worker>/<task-id>`, a backlog entry
 * `/queues/<queue>/p<prio>/<bucket>/<task-id>` and a due-time entry `/delayed/<slot>/<task-id>`
 * (their paths: protocol.ts; the contract: docs/protocol.md, "Submitting a task").
 *
 * Pure: it touches no znode and holds no session, so SUSPENDED and LOST mean nothing here. A bad task
 * is never thrown at a role: parseTask returns the reason, which becomes the task's failed status.
 * A leaf of the farm's imports (none of the modules it imports imports protocol.ts), so protocol.ts
 * can re-export it without an evaluation cycle.
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { lazily, type Zod } from '../lazy-zod.js';
import { delayMsSchema, runAtSchema } from './due-time.js';
import {
  DEFAULT_QUEUE,
  isPriority,
  isQueueName,
  MAX_PRIORITY,
  MIN_PRIORITY,
  QUEUE_NAME_EXPECTED,
} from './queues.js';

/** A task's `key` is 1 to KEY_MAX_LENGTH characters (task-keys.ts). */
export const KEY_MAX_LENGTH = 256;

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

const metaSchema = (z: Zod) =>
  z
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

const DELAY_EXPECTED = `must be a whole number of ms from 0 to ${MAX_RETRY_DELAY_MS} (a day)`;
const PRIORITY_EXPECTED = `must be a whole number from ${MIN_PRIORITY} to ${MAX_PRIORITY} (higher runs first)`;
const KEY_EXPECTED = `must be a string of 1 to ${KEY_MAX_LENGTH} characters`;

const retrySchema = (z: Zod) => {
  const delayMs = z
    .number()
    .int(DELAY_EXPECTED)
    .min(0, DELAY_EXPECTED)
    .max(MAX_RETRY_DELAY_MS, DELAY_EXPECTED);
  return z
    .object({ delayMs, backoff: z.enum(['fixed', 'exponential']).optional(), maxDelayMs: delayMs.optional() })
    .strict();
};

/**
 * The schema of a task, built on its first use (lazy-zod.ts): a role thread whose tasks all pass
 * isPlainValidTask never builds it. Exported for the tests that hold the fast check to it.
 */
export const taskSchema = lazily((z) =>
  z
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
        .int(PRIORITY_EXPECTED)
        .min(MIN_PRIORITY, PRIORITY_EXPECTED)
        .max(MAX_PRIORITY, PRIORITY_EXPECTED)
        .optional(),
      retry: retrySchema(z).optional(),
      key: z.string().min(1, KEY_EXPECTED).max(KEY_MAX_LENGTH, KEY_EXPECTED).optional(),
      traceparent: z.string().optional(),
      tracestate: z.string().optional(),
      runAt: runAtSchema(z).optional(),
      delayMs: delayMsSchema(z).optional(),
      _zkfarm: metaSchema(z).optional(),
    })
    .loose()
    .refine((t) => (t.cmd === undefined) !== (t.handler === undefined), {
      message: 'a task names exactly one of "cmd" (a shell command) or "handler" (a handler name)',
    }),
);

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
  return checkTaskValue(value as Record<string, unknown>);
}

/**
 * Check an object that is already plain JSON (what JSON.parse returns: no undefined, no toJSON, no
 * class instances) without writing and reading it again; never throws.
 */
export function checkTaskValue(value: Record<string, unknown>): ParsedTask {
  // Most tasks are plain: a cheap check settles them; zod decides (and words the error) for the rest.
  if (isPlainValidTask(value)) return { ok: true, task: value as Task };
  const r = taskSchema().safeParse(value);
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
  return checkedTaskJson(task).task;
}

/**
 * Check a task and return its JSON text with it (throws ZKFARM_INVALID_TASK with the reason). The task
 * is written and read back once, so that what is checked is what ZooKeeper will hold (undefined fields
 * dropped, toJSON applied); the text is that JSON, ready to encode without writing it again.
 */
export function checkedTaskJson(task: unknown): { task: Task; json: string } {
  const json = JSON.stringify(task ?? null);
  const r = parseTask(json);
  if (!r.ok) throw new ZkfarmError(ErrorCodes.INVALID_TASK, r.error);
  return { task: r.task, json };
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

/** A task as its submitter gave it: the farm's bookkeeping (`_zkfarm`) left out. */
export function submittedTask(task: Task): Task {
  const { _zkfarm: _meta, ...rest } = task;
  return rest;
}
