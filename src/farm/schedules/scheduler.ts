/**
 * The leader's side of schedules, for one term: make each due tick's task (model.ts plans, this file
 * reads and writes).
 *
 * Znodes: reads /schedules/* (a persistent recursive watch on /schedules starts a pass on any change);
 * writes each schedule's node (its state: `next`, `lastTick`, `ticks`, `missed`) and creates
 * /tasks/task-NNNNNNNNNN (persistent sequential) for each tick.
 *
 * Exactly one task per tick: a tick's task is created in one multi with the setData that moves the
 * schedule's `next` past it, at the version the pass read. A leader that read an older version (a
 * previous leader that still thinks it leads, a user's change meanwhile) has its multi refused whole;
 * the next pass reads again. So a tick is made once whatever the clocks say; a leader whose clock is
 * ahead makes ticks early, one behind makes them late, never twice.
 *
 * Each task carries `_zkfarm.schedule = {name, tick}` (tick in ms since the epoch; `caughtUp: true` for
 * the one task that stands for ticks missed past the grace).
 *
 * Cost: a pass reads every schedule (one multiRead); passes run on changes, on the earliest due tick,
 * and every SAFETY_PASS_MS (a persistent watch misses what changed while disconnected). Made for up to
 * some thousands of schedules.
 *
 * SUSPENDED: passes fail and are retried with a backoff (recipes/pass-loop.ts).
 * LOST, or the term's end: the term's signal aborts; the watch, timers and writes stop.
 */

import { PassLoop } from '../../recipes/pass-loop.js';
import { CreateMode, type ZkClient } from '../../zk/client.js';
import type { Logger } from '../../zk/connect-options.js';
import { isZkError } from '../../zk/errors.js';
import type { Session } from '../../zk/session.js';
import { encode, PATHS, TASK_MAX_BYTES, TASK_PREFIX, type Task } from '../protocol.js';
import {
  nextTick,
  parseRecord,
  planTicks,
  SCHEDULES_PATH,
  type ScheduleRecord,
  schedulePath,
  type TickPlan,
} from './model.js';

/** A full pass at least this often, whatever the watch says. */
const SAFETY_PASS_MS = 30_000;
/** Most bytes of task data in one multi (ZooKeeper's packet is 1 MB; the farm keeps to about half). */
const MULTI_BYTES = TASK_MAX_BYTES;

export interface SchedulerStats {
  schedules: number;
  /** Tasks made for ticks this term. */
  created: number;
  /** Schedules whose node is not a valid record (skipped, logged once per version). */
  invalid: number;
}

export class Scheduler {
  readonly #session: Session;
  readonly #client: ZkClient;
  readonly #signal: AbortSignal;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #loop: PassLoop;
  readonly #reported = new Map<string, number>();
  #unwatch: (() => void) | undefined;
  #safety: NodeJS.Timeout | undefined;
  readonly stats: SchedulerStats = { schedules: 0, created: 0, invalid: 0 };

  constructor(session: Session, signal: AbortSignal, log: Logger, now: () => number = Date.now) {
    this.#session = session;
    this.#client = session.client;
    this.#signal = signal;
    this.#log = log;
    this.#now = now;
    this.#loop = new PassLoop(() => this.#pass(), { what: 'schedule pass', signal, log });
  }

  get #active(): boolean {
    return !this.#signal.aborted && this.#session.alive;
  }

  /** Start passes (the first one sets up the watch; a failure there is retried like any pass). */
  start(): void {
    this.#signal.addEventListener('abort', () => this.#stop(), { once: true });
    this.#safety = setInterval(() => this.#loop.kick(), SAFETY_PASS_MS);
    this.#safety.unref();
    this.#loop.kick();
  }

  async #watch(): Promise<void> {
    await this.#client.ensurePath(SCHEDULES_PATH);
    const unwatch = await this.#client.addWatch(SCHEDULES_PATH, 'persistentRecursive', () =>
      this.#loop.kick(),
    );
    if (this.#signal.aborted) unwatch();
    else this.#unwatch = unwatch;
  }

  #stop(): void {
    clearInterval(this.#safety);
    this.#unwatch?.();
  }

  async #pass(): Promise<void> {
    if (!this.#unwatch) await this.#watch();
    const names = await this.#client.getChildren(SCHEDULES_PATH);
    const reads = await this.#client.getDataMany(names.map(schedulePath));
    this.stats.schedules = names.length;
    let invalid = 0;
    let earliest = Infinity;
    for (const [i, name] of names.entries()) {
      const read = reads[i]!;
      if (!this.#active) return;
      if (read instanceof Error) continue; // removed meanwhile
      const { record, problem } = parseRecord(read.data);
      if (!record) {
        invalid++;
        this.#reportInvalid(name, read.stat.version, problem!);
        continue;
      }
      const next = await this.#advance(name, record, read.stat.version);
      if (next !== null && next !== undefined) earliest = Math.min(earliest, next);
    }
    this.stats.invalid = invalid;
    if (earliest < Infinity) this.#loop.wakeAt(earliest - (this.#now() - Date.now()));
  }

  /** Make the due ticks of one schedule; returns its next tick (undefined: the write was refused). */
  async #advance(name: string, rec: ScheduleRecord, version: number): Promise<number | null | undefined> {
    const now = this.#now();
    if (rec.next === undefined) {
      // Written by hand without state: its first tick is the first one after now.
      const next = nextTick(rec, now - 1);
      return (await this.#write(name, { ...rec, next, createdAt: rec.createdAt ?? now }, version, []))
        ? next
        : undefined;
    }
    const plan = planTicks(rec, now);
    if (plan.ticks.length === 0 && !plan.missed) return rec.paused ? null : rec.next;
    if (plan.missed)
      this.#log.warn(
        { schedule: name, due: rec.next, catchUp: rec.catchUp ?? 'skip' },
        `schedule ${name} missed ticks while no master led (more than ${rec.graceMs ?? 60_000} ms late): ` +
          (rec.catchUp === 'once' ? 'one task stands for them' : 'they are skipped (catchUp "skip")'),
      );
    return (await this.#fire(name, rec, version, plan)) ? plan.next : undefined;
  }

  /** Create the plan's tasks, in multis that each move `next` on at the version read. */
  async #fire(name: string, rec: ScheduleRecord, version: number, plan: TickPlan): Promise<boolean> {
    const taskBytes = encode(rec.task).length + 200;
    const perMulti = Math.max(1, Math.floor(MULTI_BYTES / taskBytes));
    let state = rec;
    let v = version;
    for (let i = 0; i < Math.max(plan.ticks.length, 1); i += perMulti) {
      const ticks = plan.ticks.slice(i, i + perMulti);
      const last = i + perMulti >= plan.ticks.length;
      const after: ScheduleRecord = {
        ...state,
        next: last ? plan.next : nextTick(rec, ticks.at(-1)!),
        ...(ticks.length ? { lastTick: ticks.at(-1)!, ticks: (state.ticks ?? 0) + ticks.length } : {}),
        ...(plan.missed && i === 0 ? { missed: (state.missed ?? 0) + 1 } : {}),
      };
      const caughtUp = plan.missed && rec.catchUp === 'once' && i === 0 ? ticks[0] : undefined;
      const written = await this.#write(
        name,
        after,
        v,
        ticks.map((t) => this.#taskFor(name, rec.task, t, t === caughtUp)),
      );
      if (written === undefined) return false;
      this.stats.created += ticks.length;
      state = after;
      v = written;
    }
    return true;
  }

  #taskFor(name: string, task: Task, tick: number, caughtUp: boolean): Buffer {
    const meta = {
      ...(task._zkfarm ?? {}),
      attempts: 0,
      schedule: { name, tick, ...(caughtUp ? { caughtUp } : {}) },
    };
    return encode({ ...task, _zkfarm: meta });
  }

  /** One multi: the schedule's new state at `version` and the tasks. Returns the new version, or undefined. */
  async #write(
    name: string,
    rec: ScheduleRecord,
    version: number,
    tasks: Buffer[],
  ): Promise<number | undefined> {
    const tx = this.#client.transaction().setData(schedulePath(name), encode(rec), version);
    for (const t of tasks) tx.create(`${PATHS.tasks}/${TASK_PREFIX}`, t, CreateMode.PERSISTENT_SEQUENTIAL);
    try {
      const results = await tx.commit();
      return results[0]?.stat?.version ?? version + 1;
    } catch (err) {
      // Changed meanwhile (a user, another leader) or removed: the watch brings the next pass.
      if (isZkError(err, 'BAD_VERSION') || isZkError(err, 'NO_NODE')) return undefined;
      throw err;
    }
  }

  #reportInvalid(name: string, version: number, problem: string): void {
    if (this.#reported.get(name) === version) return;
    this.#reported.set(name, version);
    this.#log.warn(
      { schedule: name, problem },
      `schedule ${name} is not a valid schedule and makes no tasks: ${problem}; fix it with ` +
        '`runtime schedule create --replace` or remove it with `runtime schedule rm`',
    );
  }
}
