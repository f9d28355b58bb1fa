/**
 * Named queues: what a queue is called, what a worker serves, the controls stored in /queues/<queue>,
 * and the leader's token bucket for a queue's rate limit. Pure logic, no I/O, unit-tested alone.
 *
 *   queue      `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`, default `default`; a task names it in its `queue` field
 *   priority   an integer 0-9, default 0; higher runs first, the lowest id first within one priority
 *   serves     a worker's `queues`: `name` or `name:weight` (weight 1-100, default 1), and `queueOrder`
 *              `weighted` (smooth weighted round robin) or `strict` (the first listed queue with a task)
 *   controls   /queues/<queue>: {"paused": bool, "rateLimit": null | tasks started per second (> 0),
 *              "concurrency": null | tasks assigned and not finished across the farm (>= 1)}
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';

export const DEFAULT_QUEUE = 'default';
export const MIN_PRIORITY = 0;
export const MAX_PRIORITY = 9;
export const MAX_WEIGHT = 100;
export const QUEUE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const QUEUE_NAME_EXPECTED =
  'a queue name of 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit';

export type QueueOrder = 'weighted' | 'strict';

/** A queue a worker serves, with its weight (weighted order). */
export interface ServedQueue {
  name: string;
  weight: number;
}

export const DEFAULT_SERVED: readonly ServedQueue[] = Object.freeze([{ name: DEFAULT_QUEUE, weight: 1 }]);

export function isQueueName(v: unknown): v is string {
  return typeof v === 'string' && QUEUE_NAME_RE.test(v);
}

export function isPriority(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= MIN_PRIORITY && (v as number) <= MAX_PRIORITY;
}

/** `name` or `name:weight`, as the config file and `--queues a,b:3` take them; undefined when malformed. */
export function parseServedQueue(spec: string): ServedQueue | undefined {
  const m = /^([^:]+)(?::(\d{1,3}))?$/.exec(spec.trim());
  if (!m || !isQueueName(m[1])) return undefined;
  const weight = m[2] === undefined ? 1 : Number(m[2]);
  if (weight < 1 || weight > MAX_WEIGHT) return undefined;
  return { name: m[1]!, weight };
}

/** A worker's `queues` option as a list; throws ZKFARM_INVALID_ARGUMENT naming the bad entry. */
export function servedQueues(specs: readonly string[] | undefined): ServedQueue[] {
  if (specs === undefined || specs.length === 0) return [...DEFAULT_SERVED];
  const out: ServedQueue[] = [];
  for (const spec of specs) {
    const q = parseServedQueue(spec);
    if (!q)
      throw new ZkfarmError(
        ErrorCodes.INVALID_ARGUMENT,
        `queues: expected "name" or "name:weight" (${QUEUE_NAME_EXPECTED}; weight 1-${MAX_WEIGHT}), got ${JSON.stringify(spec)}`,
      );
    if (out.some((o) => o.name === q.name))
      throw new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, `queues: "${q.name}" is listed twice`);
    out.push(q);
  }
  return out;
}

/** What a worker's /workers/<name> says it serves; a worker that says nothing serves `default`. */
export function readServed(v: unknown): ServedQueue[] {
  if (!Array.isArray(v)) return [...DEFAULT_SERVED];
  const out: ServedQueue[] = [];
  for (const q of v as Array<{ name?: unknown; weight?: unknown }>) {
    if (typeof q !== 'object' || q === null || !isQueueName(q.name)) continue;
    const w = Number.isInteger(q.weight) ? Math.min(MAX_WEIGHT, Math.max(1, q.weight as number)) : 1;
    out.push({ name: q.name, weight: w });
  }
  return out.length > 0 ? out : [...DEFAULT_SERVED];
}

/** The controls of one queue (the data of /queues/<queue>). */
export interface QueueControls {
  paused: boolean;
  /** Tasks started per second across the farm; null: no limit. */
  rateLimit: number | null;
  /** Tasks assigned and not finished across the farm; null: no cap. */
  concurrency: number | null;
}

export const NO_CONTROLS: Readonly<QueueControls> = Object.freeze({
  paused: false,
  rateLimit: null,
  concurrency: null,
});

/** A control's value is valid (`rateLimit`: a number > 0; `concurrency`: an integer >= 1; or null). */
export function checkControls(c: Partial<QueueControls>): string | undefined {
  if (c.paused !== undefined && typeof c.paused !== 'boolean') return 'paused: expected true or false';
  const r = c.rateLimit;
  if (r !== undefined && r !== null && !(typeof r === 'number' && Number.isFinite(r) && r > 0))
    return `rateLimit: expected a number of tasks per second > 0, or none; got ${JSON.stringify(r)}`;
  const n = c.concurrency;
  if (n !== undefined && n !== null && !(Number.isSafeInteger(n) && n >= 1))
    return `concurrency: expected a whole number >= 1, or none; got ${JSON.stringify(n)}`;
  return undefined;
}

/** `paused, rate limit 5/s, concurrency none`: controls in words (CLI, dashboard). */
export function describeControls(c: QueueControls): string {
  const limit = (n: number | null, unit = '') => (n === null ? 'none' : `${n}${unit}`);
  return `${c.paused ? 'paused' : 'running'}, rate limit ${limit(c.rateLimit, '/s')}, concurrency ${limit(c.concurrency)}`;
}

/**
 * The controls in a /queues/<queue> node's data. A field that is missing or not valid counts as unset
 * (`problem` says which), so one bad field written by hand never stops a queue's other controls.
 */
export function parseControls(data: Buffer | null | undefined): {
  controls: QueueControls;
  problem?: string;
} {
  if (!data || data.length === 0) return { controls: { ...NO_CONTROLS } };
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
  } catch {
    return { controls: { ...NO_CONTROLS }, problem: 'its data is not a JSON object' };
  }
  const controls = { ...NO_CONTROLS };
  const problems: string[] = [];
  for (const key of ['paused', 'rateLimit', 'concurrency'] as const) {
    const p = checkControls({ [key]: v[key] });
    if (p) problems.push(p);
    else if (v[key] !== undefined) (controls as Record<string, unknown>)[key] = v[key];
  }
  return problems.length > 0 ? { controls, problem: problems.join('; ') } : { controls };
}

/**
 * The leader's token bucket for one queue's rate limit: `rate` tokens a second, at most `burst` held.
 * It starts empty (a new leader, or a new limit, never lets a burst through), and holds a tenth of a
 * second's tokens at most (at least one), so starts stay close to the rate in any window.
 */
export class TokenBucket {
  #rate: number;
  #tokens = 0;
  #at: number;

  constructor(rate: number, now: number) {
    this.#rate = rate;
    this.#at = now;
  }

  get rate(): number {
    return this.#rate;
  }

  get burst(): number {
    return Math.max(1, this.#rate / 10);
  }

  /** Change the rate, keeping what was earned at the old rate. */
  setRate(rate: number, now: number): void {
    this.#refill(now);
    this.#rate = rate;
    this.#tokens = Math.min(this.#tokens, this.burst);
  }

  /** Whole tokens available now. */
  available(now: number): number {
    this.#refill(now);
    return Math.floor(this.#tokens);
  }

  take(n: number, now: number): void {
    this.#refill(now);
    this.#tokens = Math.max(0, this.#tokens - n);
  }

  /** Ms until one whole token is there (0: now). */
  msUntilToken(now: number): number {
    this.#refill(now);
    if (this.#tokens >= 1) return 0;
    return Math.ceil(((1 - this.#tokens) / this.#rate) * 1000);
  }

  #refill(now: number): void {
    if (now > this.#at)
      this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.#rate);
    this.#at = Math.max(this.#at, now);
  }
}
