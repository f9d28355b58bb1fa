/**
 * The leading master's work for one term of the election (master.ts, recipes/election.ts): recover,
 * then assign in rounds. Built from the queue view (queue-view.ts), the workers' loads
 * (worker-roster.ts), the give-backs (give-back.ts) and the moves (moves.ts), written by a MultiBatcher.
 *
 * A round picks the oldest tasks that can go now (bounded by the free slots and `batchSize`), reads
 * them in one round trip (multiReads sent together), and sorts them out: data that is not a task, or
 * is too large, or cannot be read, is rejected with a failed status; a task not due yet waits for its
 * `notBefore`; a task no ready worker can take waits, and is passed over by the next rounds so that the
 * tasks behind it go (it says why in the summary); the rest is planned over the workers
 * (assignment-policy.ts) and assigned in multis sent together. Rounds follow one another while there is
 * work and room. A move ZooKeeper refuses is sorted out by the failing operation: a worker found gone
 * is left out of the next round at once (its tasks stay queued and are planned again); a task that
 * cannot be moved is set aside, with its reason, and tried again later.
 *
 * Znodes: lists /tasks (lazily, see #list), reads /tasks/<id>, moves tasks (moves.ts), sweeps /status
 * (retention.ts), moves results of the flat layout into buckets (status-upgrade.ts), and publishes what waits and why through `publish` (master.ts writes it in /master).
 *
 * SUSPENDED: requests fail or wait; a failed round goes again after a backoff (src/backoff.ts).
 * LOST, or the term's end: the term's signal aborts; every watch, timer and write of this leader stops.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Backoff } from '../backoff.js';
import { describeError, ErrorCodes } from '../errors.js';
import type { Term } from '../recipes/election.js';
import { MultiBatcher, type Refusal } from '../recipes/multi-batcher.js';
import type { Logger, Session, ZkClient, ZkError } from '../zk/index.js';
import { admit } from './admission.js';
import { blockedReason, needOf, planAssignments, roomFor, totalFreeSlots } from './assignment-policy.js';
import { GiveBacks } from './give-back.js';
import { assign, type Move, reject } from './moves.js';
import { PATHS, type Task, taskPath } from './protocol.js';
import { type QueueSummary, QueueView } from './queue-view.js';
import { type RetentionOptions, RetentionSweeper } from './retention.js';
import { writeMoves } from './status-store.js';
import { upgradeStatusLayout } from './status-upgrade.js';
import { WorkerRoster } from './worker-roster.js';

export interface LeaderOptions {
  /** Most tasks handed out in one round (see benchmarks/README.md for why rounds are large). @defaultValue 800 */
  batchSize?: number;
  /** A task lost with this many workers (crash, expiry) ends failed. @defaultValue max(3, maxAttempts) */
  maxLost?: number;
  /** Status retention (see retention.ts). */
  retention?: RetentionOptions;
}

export interface LeaderStats {
  assigned: number;
  givenBack: number;
  rejected: number;
  queued: number;
  workers: number;
  since: number;
  /** Tasks set aside this term (they could not be moved). */
  setAside: number;
}

/** Tasks handed out per round: a round costs about the same whatever its size. */
const ROUND_TASKS = 800;
/** A published summary is rewritten at most this often. */
const PUBLISH_EVERY_MS = 1000;

interface Runnable {
  id: string;
  task: Task;
  data: Buffer;
  version: number;
}

export class Leader {
  readonly #session: Session;
  readonly #client: ZkClient;
  readonly #term: Term;
  readonly #log: Logger;
  readonly #batch: number;
  readonly #retention: RetentionOptions;
  readonly #publish: ((s: QueueSummary) => void) | undefined;
  readonly #view = new QueueView();
  readonly #roster: WorkerRoster;
  readonly #giveBacks: GiveBacks;
  readonly #batcher: MultiBatcher;
  readonly #stats: LeaderStats;
  /** /tasks changed since the last listing (its watch fired). */
  #tasksDirty = true;
  #lastListAt = 0;
  #pumping = false;
  #again = false;
  #rotate = 0;
  #wake: NodeJS.Timeout | undefined;
  #retentionTimer: NodeJS.Timeout | undefined;
  #publishTimer: NodeJS.Timeout | undefined;
  #published = '';
  #publishedAt = 0;

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
    this.#retention = options.retention ?? {};
    this.#publish = publish;
    this.#stats = { ...Leader.emptyStats(), since: Date.now() };
    this.#batcher = new MultiBatcher(this.#client, { signal: term.signal });
    this.#roster = new WorkerRoster(
      session,
      term.signal,
      {
        changed: () => this.#kick(),
        gone: (w) => this.#workerGone(w),
      },
      log,
    );
    this.#giveBacks = new GiveBacks(session, term.signal, this.#batcher, {
      maxLost: options.maxLost,
      isLive: (w) => this.#roster.isLive(w),
      moved: (moves) => {
        this.#stats.givenBack += moves.filter((m) => m.kind === 'requeue').length;
        this.#stats.rejected += moves.filter((m) => m.kind === 'fail').length;
        this.#tasksDirty = true;
        this.#kick();
      },
      log,
    });
  }

  static emptyStats(): LeaderStats {
    return { assigned: 0, givenBack: 0, rejected: 0, queued: 0, workers: 0, since: 0, setAside: 0 };
  }

  get active(): boolean {
    return !this.#term.signal.aborted && this.#session.alive;
  }

  stats(): LeaderStats {
    return { ...this.#stats, queued: this.#view.size, workers: this.#roster.names().length };
  }

  /** What waits in /tasks for a reason, and why. */
  summary(): QueueSummary {
    const loads = this.#roster.loads();
    return this.#view.summary(Date.now(), (need) => blockedReason(loads, need));
  }

  /** Watch the workers, recover what dead workers held, start the rounds. Throws if recovery fails. */
  async start(): Promise<void> {
    this.#term.signal.addEventListener('abort', () => this.#stop(), { once: true });
    await this.#roster.start();
    if (!this.active) return;
    await this.#giveBacks.recover();
    if (!this.active) return;
    this.#kick();
    void this.#upgradeLayout();
    const sweeper = new RetentionSweeper(this.#client, this.#retention, this.#term.signal);
    this.#retentionTimer = setInterval(() => void this.#sweep(sweeper), this.#retention.intervalMs ?? 60_000);
    this.#retentionTimer.unref?.();
  }

  #stop(): void {
    clearTimeout(this.#wake);
    clearTimeout(this.#publishTimer);
    clearInterval(this.#retentionTimer);
  }

  #workerGone(worker: string): void {
    if (!this.active) return;
    this.#log.info({ worker }, 'worker gone; giving its tasks back');
    void this.#giveBacks.start(worker);
  }

  /** Move results still at flat /status paths into their buckets (status-upgrade.ts). */
  async #upgradeLayout(): Promise<void> {
    try {
      await upgradeStatusLayout(this.#client, this.#log, this.#term.signal);
    } catch (err) {
      if (this.active)
        this.#log.warn(
          { err },
          `moving results into buckets failed: ${describeError(err)}; the next sweep retries`,
        );
    }
  }

  async #sweep(sweeper: RetentionSweeper): Promise<void> {
    await this.#upgradeLayout();
    try {
      const removed = await sweeper.sweep();
      if (removed > 0) this.#log.info({ removed }, 'removed old statuses');
    } catch (err) {
      if (this.active) this.#log.warn({ err }, `status retention sweep failed: ${describeError(err)}`);
    }
  }

  /** Run rounds (single flight; a call while they run makes them go on). */
  #kick(): void {
    if (!this.active) return;
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
    const loads = this.#roster.loads();
    const free = totalFreeSlots(loads);
    if (free === 0) return false;
    const want = Math.min(free, this.#batch);
    const hasRoom = (need: string) => roomFor(loads, need) > 0;
    if (this.#tasksDirty && Date.now() - this.#lastListAt > relistAfterMs(this.#view.size))
      await this.#list();
    let ids = this.#view.pick(want, Date.now(), hasRoom);
    if (ids.length < want && this.#tasksDirty) {
      await this.#list();
      ids = this.#view.pick(want, Date.now(), hasRoom);
    }
    if (ids.length === 0) return false;
    this.#view.begin(ids);
    try {
      const { runnable, moves } = await this.#read(ids);
      const now = this.#roster.loads();
      const byId = new Map(runnable.map((r) => [r.id, r]));
      const plan = planAssignments(
        runnable.map((r) => r.id),
        now,
        this.#rotate++,
        (id) => needOf(byId.get(id)!.task),
      );
      for (const a of plan.assignments) {
        const r = byId.get(a.task)!;
        moves.push(assign(r.id, a.worker, r.data, r.version));
      }
      if (moves.length > 0) await this.#commit(moves);
      return true;
    } finally {
      this.#view.end(ids);
    }
  }

  /**
   * List /tasks (and re-arm its watch). Lazily: when the watch fires the queue is only marked dirty,
   * and listed again when a round needs more tasks than it knows of, or when the listing is older than
   * `relistAfterMs` (a listing of 20,000 ids is 300 KB for ZooKeeper to write and the leader to read,
   * and the ids it adds are newer than those known, so they would wait their turn anyway).
   */
  async #list(): Promise<void> {
    this.#tasksDirty = false;
    this.#lastListAt = Date.now();
    const mark = this.#client.requests;
    const children = await this.#client
      .getChildren(PATHS.tasks, () => {
        this.#tasksDirty = true;
        this.#kick();
      })
      .catch((err: unknown) => {
        // No watch was set (e.g. /tasks deleted, to be made again): list again on the next round.
        this.#tasksDirty = true;
        throw err;
      });
    this.#view.listed(children, mark);
  }

  /** Read a round's tasks in one round trip; sort out what cannot run or must wait (admission.ts). */
  async #read(ids: string[]): Promise<{ runnable: Runnable[]; moves: Move[] }> {
    const reads = await this.#client.getDataMany(ids.map(taskPath));
    const runnable: Runnable[] = [];
    const moves: Move[] = [];
    const now = Date.now();
    for (let i = 0; i < reads.length; i++) {
      const id = ids[i]!;
      const r = reads[i]!;
      if (r instanceof Error) {
        const m = this.#unreadable(id, r);
        if (m) moves.push(m);
        continue;
      }
      const a = admit(r.data, r.stat.ctime, now);
      if (a.verdict === 'reject') {
        moves.push(reject(id, a.failure, r.stat.version));
        continue;
      }
      this.#view.need(id, a.need);
      if (a.verdict === 'wait') this.#view.delay(id, a.until);
      else runnable.push({ id, task: a.task, data: a.data, version: r.stat.version });
    }
    this.#scheduleWake();
    return { runnable, moves };
  }

  /** A task that could not be read: gone, not ours to read (a failed status says so), or try later. */
  #unreadable(id: string, err: ZkError): Move | undefined {
    if (err.code === 'NO_NODE') {
      this.#view.moved(id);
      return undefined;
    }
    if (err.code === 'NO_AUTH') {
      const error =
        `the farm may not read ${taskPath(id)}: its ACL does not give the farm's identity read permission ` +
        '(NO_AUTH); create the task with an ACL the farm can read (or none) and submit it again';
      return reject(id, { error, errorCode: ErrorCodes.TASK_UNREADABLE });
    }
    if (err.transient) throw err;
    this.#setAside(id, `it cannot be read (${err.code})`);
    return undefined;
  }

  async #commit(moves: Move[]): Promise<void> {
    const r = await writeMoves(this.#batcher, this.#client, moves, (written, mark) => {
      for (const m of written) {
        this.#view.moved(m.id, mark);
        if (m.kind === 'assign') this.#stats.assigned++;
        else this.#stats.rejected++;
      }
    });
    for (const refusal of r.refused) this.#refused(refusal);
    if (r.stoppedBy !== undefined && this.active) throw r.stoppedBy;
  }

  /** A move ZooKeeper refused, sorted out by the operation that failed. */
  #refused({ item: m, error, afterLoss, guard }: Refusal<Move>): void {
    if (guard !== undefined) {
      // The worker's registration is gone: the task stays queued and goes elsewhere, now.
      this.#roster.suspect(m.worker!);
      this.#again = true;
      return;
    }
    const onTask = error.path === taskPath(m.id);
    if (error.code === 'NO_NODE' && onTask) {
      this.#view.moved(m.id); // moved or deleted by someone else
    } else if (error.code === 'NO_NODE' && m.kind === 'assign') {
      this.#roster.ensureDir(m.worker!); // its /assign dir is gone: made again, then planned again
    } else if (error.code === 'NODE_EXISTS' && afterLoss) {
      // Our own attempt whose answer was lost may have done it: the next listing tells.
      this.#tasksDirty = true;
      this.#view.moved(m.id);
    } else if (error.code === 'NODE_EXISTS') {
      this.#setAside(m.id, `${error.path} already exists (another task with the same id?)`);
    } else if (error.code !== 'BAD_VERSION') {
      // (BAD_VERSION: changed since it was read; the next round reads it again.)
      const hint =
        error.code === 'NOT_EMPTY' ? ': the task node has child nodes of its own; remove them' : '';
      this.#setAside(m.id, `ZooKeeper refused to move it (${error.code} on ${error.path})${hint}`);
    }
  }

  #setAside(id: string, reason: string): void {
    const first = this.#view.asideReason(id) === undefined;
    const aside = this.#view.setAside(id, reason, Date.now());
    if (first && aside) {
      this.#stats.setAside++;
      this.#log.warn(
        { task: id, retryInMs: aside.retryAt - Date.now() },
        `task ${id} is set aside: ${reason}; the queue goes on without it, and it is tried again later`,
      );
    }
    this.#scheduleWake();
  }

  /** One timer for the soonest delayed or set-aside task (never beyond the timer range). */
  #scheduleWake(): void {
    if (!this.active) return;
    const ms = this.#view.nextWake(Date.now());
    clearTimeout(this.#wake);
    if (ms === undefined) return;
    this.#wake = setTimeout(() => this.#kick(), ms);
    this.#wake.unref?.();
  }

  /** After rounds: wake for what waits; publish the summary when it changed (at most once a second). */
  #afterRounds(): void {
    this.#scheduleWake();
    if (!this.#publish || !this.active || this.#publishTimer) return;
    const wait = Math.max(0, this.#publishedAt + PUBLISH_EVERY_MS - Date.now());
    this.#publishTimer = setTimeout(() => {
      this.#publishTimer = undefined;
      if (!this.active) return;
      // Looked at once a second at most (a summary walks the whole queue), published when it changed.
      this.#publishedAt = Date.now();
      const summary = this.summary();
      const text = JSON.stringify(summary);
      if (text === this.#published) return;
      this.#published = text;
      this.#publish!(summary);
    }, wait);
    this.#publishTimer.unref?.();
  }
}

/** How old a listing of /tasks may get while `known` queued tasks are known: 200 ms, up to 2 s. */
function relistAfterMs(known: number): number {
  return Math.min(2000, Math.max(200, known / 10));
}
