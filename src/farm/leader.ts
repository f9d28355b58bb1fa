/**
 * The leading master's work for one term of the election (master.ts, recipes/election.ts): recover,
 * then assign in rounds. Built from the queue view (queue-view.ts), the workers' loads
 * (worker-roster.ts), the give-backs (give-back.ts) and the moves (moves.ts), written by a MultiBatcher.
 *
 * A round reads the oldest unread tasks (at most `batchSize`, within the view's read-ahead bounds) in
 * one round trip (multiReads sent together) and sorts them out: data that is not a task, or is too
 * large, or cannot be read, is rejected with a failed status; a task not due yet waits for its
 * `notBefore`; the rest is held, filed by queue and priority (queue-view.ts). Then it picks, per queue,
 * the first tasks that may go now: within the queue's controls (queue-gate.ts: paused, rate limit,
 * concurrency cap) and the room of the workers serving the queue; a task no such worker can take waits,
 * passed over so that the tasks behind it go (the summary says why, per queue). The picks are planned
 * over the workers (assignment-policy.ts: each worker's queues, weights, needs) and assigned in multis
 * sent together. Reading goes on while the workers are busy, so a queue's order is known before a slot
 * frees. Rounds follow one another while there is
 * work and room. What the inbox holds but cannot hand out now goes into the queue's backlog
 * (backlog.ts) when the inbox is deep, or its queue is held back (paused, unserved, at its rate limit or
 * cap) and the inbox is not shallow; the backlog is handed out from as the inbox, in the same order.
 * A move ZooKeeper refuses is sorted out by the failing operation: a worker found gone
 * is left out of the next round at once (its tasks stay queued and are planned again); a task that
 * cannot be moved is set aside, with its reason, and tried again later.
 *
 * Znodes: lists and reads /tasks (inbox.ts), moves tasks (moves.ts), watches /queues (queue-gate.ts),
 * keeps the backlog under /queues/<q>/p<p> (backlog.ts), keeps tasks due later in /delayed (delayed-area.ts),
 * sweeps /status and /keys and moves results of the flat layout into buckets (leader-housekeeping.ts), and
 * publishes what waits and why through `publish` (leader-summary.ts; master.ts writes it in /master).
 *
 * SUSPENDED: requests fail or wait; a failed round goes again after a backoff (src/backoff.ts).
 * LOST, or the term's end: the term's signal aborts; every watch, timer and write of this leader stops.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Backoff } from '../backoff.js';
import { describeError } from '../errors.js';
import type { Term } from '../recipes/election.js';
import { MultiBatcher } from '../recipes/multi-batcher.js';
import type { ZkClient } from '../zk/client.js';
import type { Logger } from '../zk/connect-options.js';
import type { Session } from '../zk/session.js';
import {
  countOf,
  planAssignments,
  type RoundRobin,
  roomFor,
  servingCache,
  totalFreeSlots,
  type WorkerLoad,
} from './assignment-policy.js';
import { Backlog } from './backlog.js';
import { CancelDesk } from './cancel-desk.js';
import { DelayedArea } from './delayed-area.js';
import { GiveBacks } from './give-back.js';
import { Inbox } from './inbox.js';
import { LeaderHousekeeping } from './leader-housekeeping.js';
import { type RefusalHooks, sortOutRefusal } from './leader-refusals.js';
import { countGivenBack, countWritten, emptyLeaderStats, type LeaderStats } from './leader-stats.js';
import { queueSummary, SummaryPublisher } from './leader-summary.js';
import { assign, type Move } from './moves.js';
import { QueueGate } from './queue-gate.js';
import type { Candidate, QueueSummary, QueueView } from './queue-view.js';
import type { RetentionOptions } from './retention.js';
import { writeMoves } from './status-store.js';
import { WorkerRoster } from './worker-roster.js';

// A term's counters live in leader-stats.ts; the type stays importable from here.
export type { LeaderStats } from './leader-stats.js';

export interface LeaderOptions {
  /** Most tasks handed out in one round (see benchmarks/README.md for why rounds are large). @defaultValue 800 */
  batchSize?: number;
  /** A task lost with this many workers (crash, expiry) ends failed. @defaultValue max(3, maxAttempts) */
  maxLost?: number;
  /** Status retention (see retention.ts). */
  retention?: RetentionOptions;
  /** A task due further ahead than this (ms) waits in /delayed, not /tasks (delayed-area.ts). @defaultValue 10000 */
  delayThresholdMs?: number;
}

/** Tasks handed out per round: a round costs about the same whatever its size. */
const ROUND_TASKS = 800;

export class Leader {
  readonly #session: Session;
  readonly #client: ZkClient;
  readonly #term: Term;
  readonly #log: Logger;
  readonly #batch: number;
  readonly #inbox: Inbox;
  readonly #view: QueueView;
  readonly #roster: WorkerRoster;
  readonly #giveBacks: GiveBacks;
  readonly #batcher: MultiBatcher;
  readonly #stats: LeaderStats;
  readonly #gate: QueueGate;
  readonly #backlog: Backlog;
  readonly #delays: DelayedArea;
  readonly #refusalHooks: RefusalHooks;
  readonly #cancels: CancelDesk;
  readonly #housekeeping: LeaderHousekeeping;
  readonly #publisher: SummaryPublisher | undefined;
  readonly #roundRobin: RoundRobin = new Map();
  /** Per queue, its tasks out, as last counted (each round when a queue is capped, else once a second). */
  #counts = new Map<string, number>();
  #pumping = false;
  /** No round before the queues' controls are known (a new leader must not start unlimited). */
  #controlsKnown = false;
  #again = false;
  #rotate = 0;
  #wake: NodeJS.Timeout | undefined;

  constructor(
    session: Session,
    term: Term,
    options: LeaderOptions,
    log: Logger,
    publish?: (summary: QueueSummary) => void,
  ) {
    this.#session = session;
    this.#client = session.client;
    this.#term = term;
    this.#log = log;
    this.#batch = options.batchSize ?? ROUND_TASKS; // checked by Master: a whole number ≥ 1
    this.#stats = { ...Leader.emptyStats(), since: Date.now() };
    this.#batcher = new MultiBatcher(this.#client, { signal: term.signal });
    this.#delays = new DelayedArea(this.#client, this.#batcher, {
      thresholdMs: options.delayThresholdMs ?? 10_000,
      signal: term.signal,
      log,
    });
    this.#roster = new WorkerRoster(
      session,
      term.signal,
      {
        changed: () => this.#kick(),
        gone: (w) => this.#workerGone(w),
      },
      log,
    );
    this.#inbox = new Inbox(this.#client, log, {
      kick: () => this.#kick(),
      wake: () => this.#scheduleWake(),
      commit: (moves) => this.#commit(moves),
      setAside: () => this.#stats.setAside++,
      delays: this.#delays,
    });
    this.#view = this.#inbox.view;
    this.#backlog = new Backlog(this.#client, this.#view, log, (moves) => this.#commit(moves));
    this.#refusalHooks = { view: this.#view, inbox: this.#inbox, roster: this.#roster };
    this.#cancels = new CancelDesk(session, term.signal, (moves) => this.#commit(moves), log);
    this.#gate = new QueueGate(session, term.signal, () => this.#kick(), log);
    this.#giveBacks = new GiveBacks(session, term.signal, this.#batcher, {
      maxLost: options.maxLost,
      isLive: (w) => this.#roster.isLive(w),
      moved: (moves) => {
        countGivenBack(this.#stats, moves);
        this.#inbox.dirty = true;
        this.#kick();
      },
      log,
    });
    this.#housekeeping = new LeaderHousekeeping(
      this.#client,
      options.retention ?? {},
      log,
      term.signal,
      () => this.active,
      { assigned: () => this.#stats.assigned },
    );
    this.#publisher = publish && this.#publisherFor(publish);
  }

  /** Publishes the summary after rounds (leader-summary.ts); the counts it takes are kept for the rounds. */
  #publisherFor(publish: (summary: QueueSummary) => void): SummaryPublisher {
    return new SummaryPublisher(publish, {
      active: () => this.active,
      count: () => this.#gate.counts(this.#roster.assigned()).catch(() => undefined),
      summary: (running) => {
        if (running) this.#counts = running;
        return this.summary();
      },
    });
  }

  static emptyStats(): LeaderStats {
    return emptyLeaderStats();
  }

  get active(): boolean {
    return !this.#term.signal.aborted && this.#session.alive;
  }

  stats(): LeaderStats {
    const cancelled = this.#cancels.cancelled;
    const delayPasses = this.#delays.passes;
    const { queued, names } = { queued: this.#view.size, names: this.#roster.names() };
    return { ...this.#stats, queued, workers: names.length, cancelled, delayPasses };
  }

  /** What waits in /tasks for a reason, and why, and what runs, per queue (leader-summary.ts). */
  summary(): QueueSummary {
    const parts = { view: this.#view, gate: this.#gate, roster: this.#roster, backlog: this.#backlog };
    return queueSummary({ ...parts, delays: this.#delays }, this.#counts);
  }

  /** Watch the workers, recover what dead workers held, start the rounds. Throws if recovery fails. */
  async start(): Promise<void> {
    this.#term.signal.addEventListener('abort', () => this.#stop(), { once: true });
    await this.#roster.start();
    if (!this.active) return;
    await this.#gate.start();
    if (!this.active) return;
    await this.#backlog.start();
    if (!this.active) return;
    this.#controlsKnown = true;
    this.#delays.start();
    this.#kick();
    await this.#cancels.start();
    await this.#giveBacks.recover();
    if (!this.active) return;
    this.#kick();
    this.#housekeeping.start();
  }

  #stop(): void {
    clearTimeout(this.#wake);
    this.#publisher?.stop();
    this.#housekeeping.stop();
    this.#cancels.close();
  }

  #workerGone(worker: string): void {
    if (!this.active) return;
    this.#log.info({ worker }, 'worker gone; giving its tasks back');
    void this.#giveBacks.start(worker);
  }

  /** Run rounds (single flight; a call while they run makes them go on). */
  #kick(): void {
    if (!this.active || !this.#controlsKnown) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    void this.#pump().finally(() => {
      this.#pumping = false;
      this.#afterRounds();
    });
  }

  async #pump(): Promise<void> {
    const backoff = new Backoff({ initialMs: 50, maxMs: 2000 });
    do {
      this.#again = false;
      try {
        while (this.active && (await this.#round())) {
          /* keep going while there is work and room */
        }
        backoff.reset();
      } catch (err) {
        if (!this.active) return;
        this.#log.warn({ err }, `assignment round failed: ${describeError(err)}`);
        await sleep(backoff.next(), undefined, { signal: this.#term.signal }).catch(() => {});
        this.#again = true;
      }
    } while (this.#again && this.active);
  }

  /** One round; false when there was nothing to do. */
  async #round(): Promise<boolean> {
    this.#gate.beginRound();
    const loads = this.#roster.loads();
    const want = Math.min(totalFreeSlots(loads), this.#batch);
    if (this.#inbox.listDue) await this.#inbox.list();
    let worked = await this.#inbox.readAhead(this.#batch);
    if (want === 0) return (await this.#shelve()) || worked;
    worked = (await this.#backlog.load((q) => !this.#held(q, Date.now()))) || worked;
    let picked = await this.#candidates(loads, want);
    if (countOf(picked) < want && this.#inbox.dirty) {
      await this.#inbox.list();
      worked = (await this.#inbox.readAhead(this.#batch)) || worked;
      picked = await this.#candidates(loads, want);
    }
    const assigned = picked.size > 0 && (await this.#assign(picked));
    return (await this.#shelve()) || assigned || worked;
  }

  /** Hand out the picked tasks (false: the plan gave none out). */
  async #assign(picked: Map<string, Candidate[]>): Promise<boolean> {
    const ids = [...picked.values()].flatMap((c) => c.map((t) => t.id));
    this.#view.begin(ids);
    try {
      const plan = planAssignments(picked, this.#roster.loads(), this.#rotate++, this.#roundRobin);
      if (plan.assignments.length === 0) return false;
      const now = Date.now();
      const moves: Move[] = [];
      const perQueue = new Map<string, number>();
      for (const a of plan.assignments) {
        const r = this.#view.get(a.task)!;
        moves.push(assign(a.task, a.worker, r.data, r.version, r.from));
        perQueue.set(a.queue, (perQueue.get(a.queue) ?? 0) + 1);
        this.#gate.assigned(a.task, a.queue);
      }
      for (const [q, n] of perQueue) this.#gate.took(q, n, now);
      await this.#commit(moves);
      return true;
    } finally {
      this.#view.end(ids);
    }
  }

  /** Its tasks cannot go now for the queue's sake: paused, no worker serves it, its rate or cap holds. */
  #held(queue: string, now: number): boolean {
    return (
      !this.#roster.serves(queue) || this.#gate.allowance(queue, now, this.#counts.get(queue) ?? 0) === 0
    );
  }

  /** Tasks read and not handed out that must not wait in the inbox go into the backlog (backlog.ts). */
  async #shelve(): Promise<boolean> {
    const now = Date.now();
    const out = this.#backlog.toShelve((q) => this.#held(q, now));
    if (out.length === 0) return false;
    const ids = out.map((e) => e[0]);
    this.#view.begin(ids);
    try {
      await this.#commit(await this.#backlog.shelve(out));
    } finally {
      this.#view.end(ids);
    }
    return true;
  }

  /**
   * Per queue, the ready tasks that may go now: within the queue's controls (queue-gate.ts) and the
   * free slots of the workers that serve it, passing over needs no such worker has room for.
   */
  async #candidates(loads: WorkerLoad[], want: number): Promise<Map<string, Candidate[]>> {
    this.#counts = this.#gate.hasCaps ? await this.#gate.counts(this.#roster.assigned()) : new Map();
    const now = Date.now();
    const serving = servingCache(loads);
    return this.#view.pick(
      now,
      (q) =>
        Math.min(want, totalFreeSlots(serving(q)), this.#gate.allowance(q, now, this.#counts.get(q) ?? 0)),
      (q, need) => roomFor(serving(q), need) > 0,
      (q, p) => this.#backlog.index.frontier(q, p),
    );
  }

  async #commit(moves: Move[]): Promise<void> {
    const r = await writeMoves(this.#batcher, this.#client, moves, (written, mark) => {
      for (const m of written) {
        this.#backlog.written(m);
        this.#delays.written(m);
        this.#view.moved(m.id, mark);
        countWritten(this.#stats, m);
      }
    });
    for (const refusal of r.refused) {
      if (sortOutRefusal(refusal, this.#refusalHooks) === 'replan') this.#again = true;
      this.#backlog.refused(refusal.item, refusal.error);
      this.#delays.refused(refusal.item, refusal.error);
    }
    if (r.stoppedBy !== undefined && this.active) throw r.stoppedBy;
  }

  /** One timer for the soonest delayed or set-aside task, or rate-limit token (never beyond the timer range). */
  #scheduleWake(): void {
    if (!this.active) return;
    const now = Date.now();
    // /tasks changed but was not listed again yet (too soon): list when it is due, busy workers or not.
    const relist = this.#inbox.relistIn(now);
    const times = [this.#view.nextWake(now), this.#gate.wakeIn(now), relist];
    const ms = Math.max(0, Math.min(...times.map((t) => t ?? Number.POSITIVE_INFINITY)));
    clearTimeout(this.#wake);
    if (ms === Number.POSITIVE_INFINITY) return;
    this.#wake = setTimeout(() => this.#kick(), ms);
    this.#wake.unref?.();
  }

  /** After rounds: wake for what waits; publish the summary when it changed (leader-summary.ts). */
  #afterRounds(): void {
    this.#scheduleWake();
    this.#publisher?.schedule();
  }
}
