/**
 * Worker: runs the tasks assigned to it and records exactly one result per task.
 *
 * Znodes: /workers/<name> (ephemeral: capacity, prefetch, paused, shell, handlers, queues), /assign/<name> (its
 * assignments, kept by a ChildrenCache), and the moves that end a task (moves.ts): complete, requeue
 * for a retry, give back on pause or drain, fail, discard. Its parts: the tasks it holds
 * (held-tasks.ts), the completion queue (completion-queue.ts), the executor (exec/), its counters
 * (worker-stats.ts). It also runs the service instances the leader places on it, one ServiceRunner per
 * session (worker-services.ts).
 *
 * Each assignment the cache reports is read (a burst in one multiRead), checked and queued; queued
 * tasks start while slots are free; each outcome becomes a move in the completion queue. It runs up
 * to `capacity` tasks at once and holds up to `prefetch` more, so it never waits for the master
 * between tasks. A task that ran before (attempts > 0, or lost with a worker) is discarded when it
 * already has its result. An assignment made before this session registered that this process does
 * not hold belongs to an earlier run under our name that died: it goes back to the queue with the loss
 * counted (moves.afterLoss), so a task that crashes its worker cannot keep a restarted worker in a
 * crash loop. A new assignment of a task heard while the move of its old one was on its way is read once
 * that move is answered (written, fenced, or refused because the task was queued already).
 *
 * SUSPENDED: running tasks go on; completions wait and are sent again.
 * LOST: running tasks go on (execution is at least once), and tasks held but not started are dropped:
 * the master gives them back, and starting them on the next session would run them beside their next
 * assignment. Completions go to the next session, where they succeed only if the assignment is still
 * ours. On the new session the worker registers again (coping with its own stale /workers/<name>) and
 * reads its assignments anew.
 */
import { EventEmitter, once } from 'node:events';
import { hostname } from 'node:os';
import { describeError } from '../errors.js';
import type { Executor, ExecutorOptions } from '../exec/executor.js';
import type { HandlerPool } from '../exec/handler-pool.js';
import { ChildrenCache } from '../recipes/children-cache.js';
import type { Session } from '../zk/session.js';
import { CompletionQueue } from './completion-queue.js';
import { type Held, HeldTasks } from './held-tasks.js';
import { Intake } from './intake.js';
import { TaskLifecycle } from './lifecycle.js';
import { complete, giveBack, type Move, requeue } from './moves.js';
import { checkWorkerOptions } from './options.js';
import { AutoPrefetch } from './prefetch.js';
import { assignDir, encode, type WorkerInfo, workerPath } from './protocol.js';
import { type QueueOrder, type ServedQueue, servedQueues } from './queues.js';
import { Role, type RoleOptions, type StopOptions } from './role.js';
import { WorkerCancels } from './worker-cancels.js';
import {
  abandonFailure,
  type Ran,
  type RunContext,
  runContext,
  runHeld,
  workerExecutor,
} from './worker-run.js';
import { WorkerServices } from './worker-services.js';
import { countWritten, emptyWorkerStats, RecentDurations, type WorkerStats } from './worker-stats.js';

export interface WorkerOptions extends RoleOptions {
  /** Tasks run at once. @defaultValue 4 */
  capacity?: number;
  /**
   * Tasks held beyond capacity, so the worker never idles waiting for the master: a number, or `'auto'`
   * to follow the tasks' durations (capacity for tasks of 100 ms or more, up to 64 × capacity for
   * millisecond tasks; see prefetch.ts). @defaultValue 'auto'
   */
  prefetch?: number | 'auto';
  /** Root of output directories: `<workdir>/<name>/<task-id>/`. @defaultValue ./zkfarm-work */
  workdir?: string;
  /** Run `{"cmd": ...}` tasks through /bin/sh. Off by default: whoever can write /tasks could run anything. */
  allowShell?: boolean;
  /** Extra inline handlers by name. */
  handlers?: ExecutorOptions['handlers'];
  /** Modules whose exports become handlers, run on a thread pool. */
  handlerModules?: string[];
  /** A handler pool shared with other workers (the host passes one). */
  pool?: HandlerPool;
  /** Default task timeout in ms (0: none). @defaultValue 0 */
  defaultTimeoutMs?: number;
  /** When a task gets its output directory and result.json. @defaultValue 'on-demand' */
  taskDirs?: ExecutorOptions['taskDirs'];
  /** How much task output stays on disk (age, count, bytes). @defaultValue see ExecutorOptions */
  outputRetention?: ExecutorOptions['outputRetention'];
  /** First retry delay in ms, doubled per attempt up to 30 s. @defaultValue 500 */
  retryDelayMs?: number;
  /** The queues it serves: `name` or `name:weight` (queues.ts). @defaultValue ['default'] */
  queues?: string[];
  /** `weighted` (smooth weighted round robin over its queues) or `strict` (list order). @defaultValue 'weighted' */
  queueOrder?: QueueOrder;
}

export type { WorkerStats } from './worker-stats.js'; // the counters live there; importable from here too

export class Worker extends Role {
  readonly kind = 'worker' as const;
  readonly capacity: number;
  readonly #fixedPrefetch: number | undefined;
  readonly #autoPrefetch: AutoPrefetch | undefined;
  readonly #opts: WorkerOptions;
  readonly #served: ServedQueue[];
  readonly #executor: Executor;
  readonly #held = new HeldTasks();
  readonly #completions: CompletionQueue;
  readonly #intake: Intake;
  /** Keys, progress and traces around each run (lifecycle.ts). */
  readonly #life: TaskLifecycle;
  readonly #cancels: WorkerCancels;
  readonly #events = new EventEmitter();
  #running = 0;
  /** #startMore is in its loop: a task that ends inside it must not start a loop of its own. */
  #starting = false;
  #paused = false;
  #draining = false;
  #cache: ChildrenCache | undefined;
  /** The service instances placed here, run for the current session (worker-services.ts). */
  readonly #services: WorkerServices;
  /** The live session's id (for the execution log), undefined between sessions. */
  #sessionId: string | undefined;
  readonly #runContext: RunContext;
  readonly #stats: WorkerStats = emptyWorkerStats();
  readonly #durations = new RecentDurations();
  /**
   * The drain deadline passed and the running tasks were stopped (they get no result). A flag, not an
   * AbortSignal read on every run: a new role's signal can have a new V8 map, which threw the run path's
   * optimized code away at each start after the rehearsal (benchmarks/README.md, "Warm code across the switch").
   */
  #abandoned = false;

  constructor(options: WorkerOptions) {
    super(options);
    const checked = checkWorkerOptions(options);
    this.#opts = { ...options, ...checked };
    this.capacity = checked.capacity;
    this.#served = servedQueues(checked.queues);
    if (checked.prefetch === 'auto') this.#autoPrefetch = new AutoPrefetch(this.capacity);
    else this.#fixedPrefetch = checked.prefetch;
    this.#executor = workerExecutor(options);
    this.#completions = this.#completionQueue();
    this.#completions.on('idle', () => this.#events.emit('idle'));
    this.#life = new TaskLifecycle(this.name, () => this.supervisor?.session, this.log);
    this.#cancels = new WorkerCancels(
      this.name,
      {
        held: (id) => this.#held.get(id),
        stop: (id, reason) => this.#executor.stop(id, reason),
        end: (h, move) => {
          this.#end(h, move);
          this.#startMore();
        },
      },
      this.log,
    );
    this.#intake = new Intake(
      this.name,
      this.#held,
      {
        end: (h, move) => this.#end(h, move),
        read: () => {
          if (this.#paused || this.#draining) this.#giveBackQueued();
          else this.#startMore();
        },
      },
      this.log,
    );
    this.#services = new WorkerServices({
      worker: this.name,
      workdir: this.#opts.workdir,
      allowShell: this.#opts.allowShell === true,
      executor: this.#executor,
      pastSessions: this.pastSessions,
      log: this.log,
    });
    this.#runContext = runContext(this.name, this.#life, this.#executor, this.log, () => this.#sessionId);
  }

  /** Where each run's end goes to be written (completion-queue.ts), and what becomes of it there. */
  #completionQueue(): CompletionQueue {
    return new CompletionQueue(
      this.name,
      () => this.supervisor?.session,
      {
        written: (m) => this.#written(m),
        fenced: (m, why, assignmentGone) => {
          this.#stats.fenced++;
          this.log.warn({ task: m.id }, why);
          const was = this.#held.get(m.id)?.czxid;
          this.#held.release(m.id);
          this.#life.ended(m.id, 'fenced');
          // Assigned here again while this run held it: that report was set aside, so read it now.
          if (assignmentGone && this.#cache?.has(m.id)) this.#takeAgain(m.id, was);
        },
        dropped: (m) => {
          this.#held.release(m.id);
          this.#life.ended(m.id, 'dropped');
        },
        retake: (id) => {
          this.#held.release(id);
          this.#takeAgain(id);
        },
      },
      this.log,
    );
  }

  /** Read a task's new assignment (not inherited); `was`: the one just let go, left if still there. */
  #takeAgain(id: string, was?: bigint): void {
    const s = this.supervisor?.session;
    if (s) void this.#intake.take(s, [id], 0n, 0, was);
  }

  override async start(): Promise<void> {
    await this.#executor.init();
    await super.start();
  }

  /** Tasks held beyond capacity now (with `prefetch: 'auto'`, the value last published). */
  get prefetch(): number {
    return this.#autoPrefetch?.value ?? this.#fixedPrefetch!;
  }

  get paused(): boolean {
    return this.#paused;
  }

  #info(): WorkerInfo {
    return {
      capacity: this.capacity,
      prefetch: this.prefetch,
      paused: this.#paused,
      draining: this.#draining,
      shell: this.#opts.allowShell === true,
      handlers: this.#executor.handlerNames(),
      queues: this.#served,
      queueOrder: this.#opts.queueOrder ?? 'weighted',
      host: hostname(),
      pid: process.pid,
      startedAt: Date.now(),
      sessionTimeout: this.supervisor?.sessionTimeout,
    };
  }

  protected async onSession(session: Session): Promise<void> {
    await session.client.ensurePath(assignDir(this.name));
    await this.claimEphemeral(session, workerPath(this.name), encode(this.#info()), this.staleNodeWaitMs());
    // Assignments older than our registration were made to an earlier run under this name (see #take).
    const registered = await session.client.exists(workerPath(this.name));
    const registeredZxid = registered ? registered.czxid : 0n;
    if (this.#cache?.closed === false) this.#cache.close();
    this.#sessionId = session.id;
    session.signal.addEventListener(
      'abort',
      () => {
        this.#sessionId = undefined;
        this.#sessionLost();
      },
      { once: true },
    );
    this.#cache = new ChildrenCache(session, assignDir(this.name), (u) =>
      this.#intake.update(session, registeredZxid, u),
    );
    this.#cancels.watch(session);
    // Completions left over from a lost session go on this one.
    this.#completions.flush();
    this.#services.start(session);
  }

  #sessionLost(): void {
    const dropped = this.#held.dropUnstarted();
    if (dropped.length === 0) return;
    this.#stats.dropped += dropped.length;
    this.log.info(
      { tasks: dropped.length },
      `session lost: ${dropped.length} held tasks not started are dropped (the master gives them back)`,
    );
  }

  #end(h: Held, move: Move): void {
    h.state = 'completing';
    this.#completions.push(move);
  }

  /** Start queued tasks while slots are free; one over at once ends inside the loop, which goes on. */
  #startMore(): void {
    if (this.#starting) return;
    this.#starting = true;
    try {
      for (const h of this.#held.values()) {
        if (this.#paused || this.#draining || this.#running >= this.capacity) break;
        if (h.state !== 'queued' || this.#cancels.endIfRequested(h)) continue;
        h.state = 'running';
        this.#running++;
        const ran = runHeld(h, this.#runContext);
        if (ran instanceof Promise) void ran.then((r) => this.#ran(h, r));
        else this.#ran(h, ran);
      }
    } finally {
      this.#starting = false;
    }
    this.#events.emit('idle');
  }

  #ran(h: Held, { outcome, began }: Ran): void {
    this.#running--;
    if (this.#abandoned && this.state === 'stopping') {
      this.#life.ended(h.id, 'abandoned');
      // Given up at the drain deadline: no result; the master gives the task back when our session closes.
      this.#held.release(h.id, h);
      this.#events.emit('idle');
      return;
    }
    this.#durations.record(outcome.finishedAt - outcome.startedAt);
    // The master reads the prefetch from /workers/<name>: publish it when the durations moved it.
    if (this.#autoPrefetch?.observe(performance.now() - began, outcome.finishedAt) !== undefined)
      void this.#publish();
    if (this.#cancels.endIfCancelled(h, outcome)) return;
    const retry = requeue(h.id, this.name, h.task, outcome, this.#opts.retryDelayMs ?? 500);
    this.#end(h, retry ?? complete(h.id, this.name, h.task, outcome));
    this.#startMore();
  }

  #written(m: Move): void {
    this.#held.release(m.id);
    this.#life.ended(m.id, m.kind === 'requeue' ? 'requeued' : 'completed');
    countWritten(this.#stats, m);
    if (m.kind === 'cancel') this.#cancels.settled(m.id);
    // The move deleted our assignment: one in the cache now is a new one, heard while this was held.
    if (this.#cache?.has(m.id)) this.#takeAgain(m.id);
  }

  /** Hand queued (not started) tasks back to /tasks unchanged. */
  #giveBackQueued(): void {
    for (const h of [...this.#held.values()])
      if (h.state === 'queued') this.#end(h, giveBack(h.id, this.name, h.task, h.version));
  }

  /** Stop taking tasks; queued ones go back to the queue. Running ones finish. */
  async pause(): Promise<void> {
    if (this.#paused) return;
    this.#paused = true;
    this.#stats.paused = true;
    await this.#publish();
    this.#giveBackQueued();
  }

  async resume(): Promise<void> {
    if (!this.#paused) return;
    this.#paused = false;
    this.#stats.paused = false;
    await this.#publish();
    this.#startMore();
  }

  async #publish(): Promise<void> {
    const s = this.supervisor?.session;
    if (!s) return;
    await s.client.setData(workerPath(this.name), encode(this.#info())).catch((err) => {
      this.log.warn({ err }, `could not publish worker state: ${describeError(err)}`);
    });
  }

  protected override async beforeClose(options: StopOptions): Promise<void> {
    this.#draining = true;
    await this.#publish();
    this.#giveBackQueued();
    const deadline = Date.now() + (options.drain === false ? 0 : (options.deadlineMs ?? 30_000));
    await this.#waitIdle(deadline);
    if (this.#running > 0) {
      this.log.warn(
        { running: this.#running },
        'drain deadline passed; abandoning running tasks (they will run again elsewhere)',
      );
      this.#abandoned = true;
      const reason = abandonFailure(this.name);
      for (const h of this.#held.values()) if (h.state === 'running') this.#executor.stop(h.id, reason);
    }
    // Let the last completions go out (bounded).
    await this.#waitIdle(Date.now() + 5000, true);
    this.#cache?.close();
    this.#cancels.close();
    await this.#services.stop();
    await this.#executor.close();
  }

  /** Resolve when nothing runs and no completion waits to be written, or at the deadline. */
  async #waitIdle(deadline: number, completionsOnly = false): Promise<void> {
    const idle = () => (completionsOnly || this.#running === 0) && this.#completions.size === 0;
    while (!idle()) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      await once(this.#events, 'idle', { signal: AbortSignal.timeout(left) }).catch(() => {});
    }
  }

  stats(): WorkerStats {
    return {
      ...this.#stats,
      running: this.#running,
      queued: this.#held.count('queued'),
      durations: this.#durations.list(),
    };
  }
}
