/**
 * When a task may start, and where the leader keeps it until then: pure rules, no I/O, unit-tested.
 *
 * A task says when it may start with `runAt` (ms since the epoch, or an ISO-8601 time with its zone) or
 * `delayMs` (counted from its /tasks node's creation, `ctime`: ZooKeeper's clock, so the submitter's
 * clock does not matter). The farm's bookkeeping `_zkfarm.notBefore` (a retry's backoff, or a time a
 * foreign client set) counts too: the latest of them wins. Once the farm has taken the task in
 * (`_zkfarm.submittedAt` is set) only `notBefore` counts: the leader writes the computed due time there,
 * so a task that goes round again (moved back to /tasks, a new ctime) is not delayed twice.
 *
 *   /delayed/<slot>/<task-id>   persistent   a task due later than the leader's threshold; `<slot>` is
 *                                            the due time's hour since the epoch, ten digits, so that a
 *                                            listing holds one hour's tasks and slots sort by time
 */
import type { Zod } from '../lazy-zod.js';
import type { Task } from './task-schema.js';

/** The root of the due-time area (protocol.ts PATHS.delayed). */
export const DELAYED_ROOT = '/delayed';

/** The longest a task may ask to wait (`delayMs`, or `runAt` after its submission): 366 days. */
export const MAX_DELAY_MS = 366 * 86_400_000;

/** One slot of the due-time area spans an hour of due times. */
export const SLOT_MS = 3_600_000;

/** The largest time a Date holds (ms since the epoch). */
const MAX_TIME_MS = 8.64e15;

/** An ISO-8601 date and time with its zone (`Z` or `±hh:mm`): the same instant on every host. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;

const RUN_AT_EXPECTED =
  'must be a time: ms since the epoch (a whole number), or an ISO-8601 time with its zone such as "2026-12-24T18:00:00Z"';

/** `runAt` in the task schema (task-schema.ts builds it, with zod, on its first use). */
export const runAtSchema = (z: Zod) =>
  z.union(
    [
      z.number().int(RUN_AT_EXPECTED).min(0, RUN_AT_EXPECTED).max(MAX_TIME_MS, RUN_AT_EXPECTED),
      z.string().refine((s) => runAtMs(s) !== undefined, RUN_AT_EXPECTED),
    ],
    { error: RUN_AT_EXPECTED },
  );

const DELAY_EXPECTED = `must be a whole number of ms from 0 to ${MAX_DELAY_MS} (366 days)`;

/** `delayMs` in the task schema (task-schema.ts). */
export const delayMsSchema = (z: Zod) =>
  z.number().int(DELAY_EXPECTED).min(0, DELAY_EXPECTED).max(MAX_DELAY_MS, DELAY_EXPECTED);

/** A `runAt` as ms since the epoch; undefined when it is not a time. */
export function runAtMs(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 && v <= MAX_TIME_MS ? v : undefined;
  if (typeof v !== 'string' || !ISO_TIME.test(v)) return undefined;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : undefined;
}

/**
 * When a (valid) task may start, ms since the epoch; undefined: at once. `ctime`: its /tasks node's
 * creation time.
 */
export function dueOf(task: Task, ctime: number): number | undefined {
  const meta = task._zkfarm;
  if (meta?.submittedAt !== undefined) return meta.notBefore;
  let due = meta?.notBefore;
  const at = runAtMs(task.runAt);
  if (at !== undefined) due = Math.max(due ?? at, at);
  if (typeof task.delayMs === 'number') due = Math.max(due ?? 0, ctime + task.delayMs);
  return due;
}

/** Why a task's `runAt` is too far ahead of its submission (`ctime`); undefined when it is not. */
export function tooFarAhead(task: Task, ctime: number): string | undefined {
  if (task._zkfarm?.submittedAt !== undefined) return undefined;
  const at = runAtMs(task.runAt);
  if (at === undefined || at - ctime <= MAX_DELAY_MS) return undefined;
  const days = Math.round((at - ctime) / 86_400_000);
  return (
    `invalid task: "runAt": ${new Date(at).toISOString()} is ${days} days after the task was submitted; ` +
    `a task may wait at most ${MAX_DELAY_MS / 86_400_000} days: submit it later, or from a schedule`
  );
}

/** The slot of a due time: its hour since the epoch. */
export const slotOf = (due: number): number => Math.floor(Math.max(0, due) / SLOT_MS);

/** A slot's node name: ten digits, so names sort as times do (up to the year 275760). */
export const slotName = (slot: number): string => String(slot).padStart(10, '0');

/** The slot a node name stands for; undefined for any other name. */
export function slotOfName(name: string): number | undefined {
  return /^\d{10}$/.test(name) ? Number(name) : undefined;
}

/** When a slot's hour begins (ms since the epoch). */
export const slotStart = (slot: number): number => slot * SLOT_MS;

export const delayedSlotPath = (slot: number): string => `${DELAYED_ROOT}/${slotName(slot)}`;

/** Where the leader keeps a task due at `due`: `/delayed/<slot>/<task-id>`. */
export const delayedPath = (due: number, id: string): string => `${delayedSlotPath(slotOf(due))}/${id}`;
