/**
 * Schedules: named recurring tasks kept in ZooKeeper, one node each. Pure: the record's shape, its
 * checks, and `planTicks`, which says which ticks are due at a given time. No I/O (unit-tested alone;
 * scheduler.ts writes what this plans, admin.ts reads and changes records).
 *
 * A record holds what the user asked for (`every` or `cron` + `tz`, the task, `paused`, the catch-up
 * policy) and the farm's state (`next`: the one tick due next, ms since the epoch). The tick identity
 * lives in the node: a tick is created together with the setData that moves `next` past it, in one
 * version-checked multi, so each tick makes exactly one task whatever the clocks and leaders do.
 *
 * Cron expressions are read by croner (5 fields, or 6 with seconds first; names and L/W/# as croner
 * documents), in the schedule's IANA time zone (default UTC).
 */
import { Cron } from 'croner';
import { ErrorCodes, ZkfarmError } from '../../errors.js';
import { lazily } from '../../lazy-zod.js';
import { checkTask, PATHS, type Task } from '../protocol.js';

export const SCHEDULES_PATH = PATHS.schedules;
export const schedulePath = (name: string) => `${SCHEDULES_PATH}/${name}`;

export const SCHEDULE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const SCHEDULE_NAME_EXPECTED =
  '1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit';
/** The shortest interval: one task a second per schedule keeps a farm of many schedules sane. */
export const MIN_EVERY_MS = 1000;
/** Ticks later than this are missed and follow `catchUp`; later ones within it still run. */
export const DEFAULT_GRACE_MS = 60_000;
/** Most tasks one schedule creates in one pass (ticks within the grace, e.g. after a leader change). */
export const MAX_TICKS_PER_PASS = 100;

export type CatchUp = 'skip' | 'once';

/** What a user asks for. */
export interface ScheduleSpec {
  /** A fixed interval in ms (>= 1000), counted from `start`. */
  every?: number;
  /** A cron expression, read in `tz`. */
  cron?: string;
  /** IANA time zone of the cron expression. @defaultValue "UTC" */
  tz?: string;
  /** The task each tick submits (checked as `runtime submit` checks one). */
  task: Task;
  /** No ticks while paused; on resume the next tick is the first one after the resume. @defaultValue false */
  paused?: boolean;
  /** Ticks missed by more than `graceMs` (no master ran): none of them, or one task for them all. @defaultValue "skip" */
  catchUp?: CatchUp;
  /** How late a tick may still run as itself. @defaultValue 60000 */
  graceMs?: number;
  /** When an `every` schedule's ticks are counted from (ms since the epoch). @defaultValue its creation */
  start?: number;
}

/** A schedule's node: the spec and the farm's state. */
export interface ScheduleRecord extends ScheduleSpec {
  /** The next tick due (ms since the epoch); `null` when the expression has no more. A record written
   * without it (a foreign client's spec) gets it from the leader: the first tick after it read it. */
  next?: number | null;
  /** The last tick a task was made for, and how many ticks made tasks in all. */
  lastTick?: number;
  ticks?: number;
  /** Times ticks were missed past the grace, in all. */
  missed?: number;
  createdAt?: number;
}

const specSchema = lazily((z) =>
  z
    .object({
      every: z
        .number()
        .int()
        .min(MIN_EVERY_MS, `must be a whole number of ms, at least ${MIN_EVERY_MS}`)
        .optional(),
      cron: z.string().min(1).optional(),
      tz: z.string().min(1).optional(),
      task: z.record(z.string(), z.unknown()),
      paused: z.boolean().optional(),
      catchUp: z.enum(['skip', 'once']).optional(),
      graceMs: z.number().int().min(0).max(86_400_000).optional(),
      start: z.number().int().min(0).optional(),
    })
    .loose()
    .refine((s) => (s.every === undefined) !== (s.cron === undefined), {
      message: 'a schedule names exactly one of "every" (ms) or "cron" (an expression)',
    })
    .refine((s) => s.tz === undefined || s.cron !== undefined, { message: '"tz" applies to "cron" only' }),
);

export function isScheduleName(name: unknown): name is string {
  return typeof name === 'string' && SCHEDULE_NAME_RE.test(name);
}

function invalid(message: string): ZkfarmError {
  return new ZkfarmError(ErrorCodes.INVALID_SCHEDULE, message);
}

/** Check a spec (throws ZKFARM_INVALID_SCHEDULE saying what is wrong); returns it with the task checked. */
export function checkSpec(spec: unknown): ScheduleSpec {
  const r = specSchema().safeParse(spec);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue?.path.length ? `"${issue.path.join('.')}": ` : '';
    throw invalid(`invalid schedule: ${where}${issue?.message ?? 'unknown problem'}`);
  }
  const s = r.data as ScheduleSpec;
  if (s.cron !== undefined) cronOf(s); // throws on a bad expression or zone
  let task: Task;
  try {
    task = checkTask(s.task);
  } catch (err) {
    throw invalid(`invalid schedule: its task: ${(err as Error).message}`);
  }
  return { ...s, task };
}

const crons = new Map<string, Cron>();

function cronOf(s: ScheduleSpec): Cron {
  const key = `${s.tz ?? 'UTC'}\n${s.cron}`;
  let c = crons.get(key);
  if (!c) {
    try {
      c = new Cron(s.cron!, { timezone: s.tz ?? 'UTC', paused: true });
      c.nextRun(new Date(0)); // a bad time zone shows only when a date is computed
    } catch (err) {
      throw invalid(
        `invalid schedule: "cron" ${JSON.stringify(s.cron)} in "${s.tz ?? 'UTC'}": ${(err as Error).message}`,
      );
    }
    if (crons.size > 1000) crons.clear();
    crons.set(key, c);
  }
  return c;
}

/** The first tick strictly after `after` (ms), or null when the schedule has no more. */
export function nextTick(s: ScheduleSpec & { start?: number }, after: number): number | null {
  if (s.every !== undefined) {
    const start = s.start ?? 0;
    if (after < start) return start;
    return start + (Math.floor((after - start) / s.every) + 1) * s.every;
  }
  const d = cronOf(s).nextRun(new Date(after));
  return d ? d.getTime() : null;
}

/** A new record for a spec created at `now`. */
export function newRecord(spec: ScheduleSpec, now: number): ScheduleRecord {
  const s = checkSpec(spec);
  const start = s.every !== undefined ? (s.start ?? now) : undefined;
  const withStart = start === undefined ? s : { ...s, start };
  return { ...withStart, next: nextTick(withStart, now - 1), createdAt: now };
}

/** What is due: the ticks to make tasks for now, and the record's state after them. */
export interface TickPlan {
  /** Ticks to create one task each, oldest first (a caught-up miss first when `catchUp` is "once"). */
  ticks: number[];
  /** Ticks were missed by more than the grace (skipped, or folded into one task by `catchUp: "once"`). */
  missed: boolean;
  /** The next tick after this plan, to store in `next`. */
  next: number | null | undefined;
}

/**
 * The ticks due at `now`. A tick at most `graceMs` late runs as itself; ticks missed by more are
 * skipped, or with `catchUp: "once"` stand for one task (tick = the first one missed). Never more than
 * MAX_TICKS_PER_PASS ticks (the rest are due at once in the next pass).
 */
export function planTicks(rec: ScheduleRecord, now: number): TickPlan {
  const none = { ticks: [], missed: false, next: rec.next };
  if (rec.paused || rec.next === null || rec.next === undefined || rec.next > now) return none;
  const grace = rec.graceMs ?? DEFAULT_GRACE_MS;
  const ticks: number[] = [];
  let missed = false;
  let t: number | null = rec.next;
  if (t < now - grace) {
    // Missed: jump to the first tick within the grace without walking the ones between.
    const first = nextTick(rec, now - grace - 1);
    missed = true;
    if (rec.catchUp === 'once') ticks.push(t);
    t = first;
  }
  while (t !== null && t <= now && ticks.length < MAX_TICKS_PER_PASS) {
    ticks.push(t);
    t = nextTick(rec, t);
  }
  return { ticks, missed, next: t };
}

/** Read a record from a node's data (undefined with a reason when it is not one). */
export function parseRecord(data: Buffer | null | undefined): { record?: ScheduleRecord; problem?: string } {
  try {
    const v = JSON.parse(data?.toString('utf8') ?? '') as ScheduleRecord;
    const spec = checkSpec(v);
    if (v.next !== undefined && v.next !== null && !Number.isSafeInteger(v.next))
      return { problem: '"next" is not a time in ms since the epoch' };
    return { record: { ...v, ...spec } };
  } catch (err) {
    return {
      problem: err instanceof ZkfarmError ? err.message : `not a schedule record: ${(err as Error).message}`,
    };
  }
}
