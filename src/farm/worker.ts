/**
 * Worker: runs the tasks assigned to it and records exactly one result per task.
 *
 * Znodes: /workers/<name> (ephemeral: capacity, prefetch, paused), watches /assign/<name> (its own only,
 * with a persistent recursive watch: ZooKeeper 3.6+),
 * reads /assign/<name>/<id>, and completes each task with one multi:
 *   complete   multi[ create /status/<id>, delete /assign/<name>/<id> ]
 *   retry      multi[ create /tasks/<id> (attempts+1, notBefore), delete /assign/<name>/<id> ]
 *   give back  multi[ create /tasks/<id> (unchanged), delete /assign/<name>/<id> ]   (pause, drain)
 * The delete fences the completion: a worker whose task was moved elsewhere (its session was lost and a
 * master gave the task back) cannot record a second result — its multi fails with NO_NODE and does nothing.
 * Completions of one moment are batched into one multi; a failed batch is retried task by task.
 *
 * Runs up to `capacity` tasks at once; holds up to `prefetch` more, queued, so it never waits for the
 * master between tasks. A task that was re-queued before (attempts > 0) is skipped when it already has
 * a status.
 *
 * SUSPENDED: running tasks go on; completions wait and are retried.
 * LOST: running tasks go on (execution is at least once); their completions go to the next session,
 * where they succeed only if the assignment is still ours. On the new session the worker registers again
 * (coping with its own stale /workers/<name>) and re-lists its assignments, skipping those it runs.
 */
import { hostname } from 'node:os';
import { describeError, ErrorCodes, wholeNumber, ZkfarmError } from '../errors.js';
import { type ExecOutcome, Executor, type ExecutorOptions, type HandlerPool } from '../exec/index.js';
import { isZkError, type Session } from '../zk/index.js';
import { AutoPrefetch } from './prefetch.js';
import {
  assignDir,
  assignPath,
  encode,
  lostOnWorker,
  MULTI_MAX_OPS,
  maxAttemptsOf,
  parseTask,
  statusPath,
  type Task,
  type TaskStatus,
  taskMeta,
  taskPath,
  type WorkerInfo,
  workerPath,
} from './protocol.js';
import { Role, type RoleOptions, type StopOptions } from './role.js';

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
}

export interface WorkerStats {
  running: number;
  queued: number;
  succeeded: number;
  failed: number;
  retried: number;
  /** Completions refused because the task had moved on (fenced). */
  fenced: number;
  paused: boolean;
  /** Durations of the last tasks (ms), newest last, at most 1000. */
  durations: number[];
}

interface Held {
  id: string;
  task: Task;
  /** Version of the assignment node when read. */
  version: number;
  state: 'queued' | 'running' | 'completing';
}

type Completion =
  | { kind: 'status'; id: string; status: TaskStatus }
  | { kind: 'requeue'; id: string; task: Task; counted: boolean };

export class Worker extends Role {
  readonly kind = 'worker' as const;
  readonly capacity: number;
  readonly #fixedPrefetch: number | undefined;
  readonly #autoPrefetch: AutoPrefetch | undefined;
  readonly #opts: WorkerOptions;
  readonly #executor: Executor;
  readonly #held = new Map<string, Held>();
  #running = 0;
  #paused = false;
  #draining = false;
  readonly #completions: Completion[] = [];
  #flushing = false;
  #flushScheduled = false;
  #session: Session | undefined;
  readonly #stats: WorkerStats = {
    running: 0,
    queued: 0,
    succeeded: 0,
    failed: 0,
    retried: 0,
    fenced: 0,
    paused: false,
    durations: [],
  };
  readonly #idleWaiters = new Set<() => void>();
  /** Aborted at the drain deadline: every task still running is abandoned (one signal for all of them). */
  readonly #abandon = new AbortController();

  constructor(options: WorkerOptions) {
    super(options);
    this.#opts = options;
    this.capacity = wholeNumber('capacity', options.capacity ?? 4, 1);
    const prefetch = options.prefetch ?? 'auto';
    if (prefetch === 'auto') this.#autoPrefetch = new AutoPrefetch(this.capacity);
    else if (typeof prefetch === 'number') this.#fixedPrefetch = wholeNumber('prefetch', prefetch, 0);
    else
      throw new ZkfarmError(
        ErrorCodes.INVALID_ARGUMENT,
        `prefetch: expected a whole number ≥ 0 or 'auto', got ${JSON.stringify(prefetch)}`,
      );
    this.#executor = new Executor({
      workdir: options.workdir,
      allowShell: options.allowShell ?? false,
      handlers: options.handlers,
      handlerModules: options.handlerModules,
      pool: options.pool,
      defaultTimeoutMs: options.defaultTimeoutMs ?? 0,
      taskDirs: options.taskDirs,
      outputRetention: options.outputRetention,
    });
  }

  override async start(): Promise<void> {
    await this.#executor.init();
    await super.start();
  }

  /** Tasks held beyond capacity now (with `prefetch: 'auto'`, the value last published). */
  get prefetch(): number {
    return this.#autoPrefetch?.value ?? this.#fixedPrefetch!;
  }

  #info(): WorkerInfo {
    return {
      capacity: this.capacity,
      prefetch: this.prefetch,
      paused: this.#paused,
      draining: this.#draining,
      shell: this.#opts.allowShell === true,
      host: hostname(),
      pid: process.pid,
      startedAt: Date.now(),
    };
  }

  protected async onSession(session: Session): Promise<void> {
    this.#session = session;
    await session.client.ensurePath(assignDir(this.name));
    await this.claimEphemeral(session, workerPath(this.name), encode(this.#info()), this.staleNodeWaitMs());
    // Assignments older than our registration were made to an earlier run under this name (a crash and a
    // restart): see #onAssigned.
    const registered = await session.client.exists(workerPath(this.name));
    const registeredZxid = registered ? registered.czxid : 0n;
    // A persistent watch: each assignment is reported by name as it is created, with no listing per
    // change (the master's creates and our own completions would each cost one).
    session.watchChildren(
      assignDir(this.name),
      (ch) => {
        if (ch.added.length) void this.#onAssigned(session, ch.added, registeredZxid);
      },
      { persistent: true },
    );
    // Completions left over from a lost session are retried on this one.
    this.#scheduleFlush();
  }

  /**
   * Take new assignments: read them (one multiRead), check them, start them. An assignment made before
   * this session registered (`registeredZxid`) that this process does not hold belongs to an earlier run
   * under our name that died: like the master does for a worker that is gone, it goes back to the queue
   * with the loss counted, or fails once lost too often, so a task that crashes its worker cannot keep
   * a restarted worker in a crash loop.
   */
  async #onAssigned(session: Session, ids: string[], registeredZxid: bigint): Promise<void> {
    const fresh = ids.filter((id) => !this.#held.has(id));
    if (fresh.length === 0) return;
    // Reserve the ids now so a second notification does not read them twice.
    const placeholders = new Map<string, Held>();
    for (const id of fresh) {
      const h: Held = { id, task: {}, version: -1, state: 'queued' };
      placeholders.set(id, h);
      this.#held.set(id, h);
    }
    // One round trip for the whole batch (multiRead).
    let reads: Awaited<ReturnType<typeof session.client.getDataMany>>;
    try {
      reads = await session.client.getDataMany(fresh.map((id) => assignPath(this.name, id)));
    } catch (err) {
      for (const id of fresh) this.#held.delete(id);
      if (!session.alive) return; // the next session re-lists them
      this.log.warn({ err }, `reading ${fresh.length} assignments failed: ${describeError(err)}; retrying`);
      // The watch reported them once; read them again ourselves after a pause.
      setTimeout(() => void this.#onAssigned(session, fresh, registeredZxid), 250);
      return;
    }
    await Promise.all(
      fresh.map(async (id, i) => {
        const h = placeholders.get(id)!;
        const r = reads[i]!;
        if (r instanceof Error) {
          this.#held.delete(id);
          if (!isZkError(r, 'NO_NODE')) this.#retryRead(session, id, r, registeredZxid);
          return;
        }
        try {
          const { data, stat } = r;
          const parsed = parseTask(data);
          h.version = stat.version;
          if (!parsed.ok) {
            this.#complete(h, {
              state: 'failed',
              error: parsed.error,
              errorCode: 'ZKFARM_INVALID_TASK',
              startedAt: Date.now(),
              finishedAt: Date.now(),
              retryable: false,
            });
            return;
          }
          h.task = parsed.task;
          if (stat.czxid < registeredZxid) {
            this.#inherited(h);
            return;
          }
          const meta = taskMeta(parsed.task);
          if ((meta.attempts > 0 || meta.lostOn?.length) && (await session.client.exists(statusPath(id)))) {
            // Ran before and has its result: just drop the assignment.
            this.log.info({ task: id }, 'task already has a status; dropping the duplicate assignment');
            await session.client.removeIfExists(assignPath(this.name, id)).catch(() => {});
            this.#held.delete(id);
            return;
          }
        } catch (err) {
          this.#held.delete(id);
          if (!isZkError(err, 'NO_NODE')) this.#retryRead(session, id, err, registeredZxid);
        }
      }),
    );
    if (this.#paused || this.#draining) {
      void this.#giveBackQueued();
      return;
    }
    this.#startMore();
  }

  /**
   * An assignment we could not read (connection trouble): the watch reported it once and will not again,
   * so read it again ourselves after a pause while the session lives (a new session re-lists anyway).
   */
  #retryRead(session: Session, id: string, err: unknown, registeredZxid: bigint): void {
    if (!session.alive) return;
    this.log.warn({ err, task: id }, `reading assignment ${id} failed: ${describeError(err)}; retrying`);
    setTimeout(() => void this.#onAssigned(session, [id], registeredZxid), 250);
  }

  /** An assignment of an earlier run under our name: back to the queue, the loss counted (see #onAssigned). */
  #inherited(h: Held): void {
    h.state = 'completing';
    const lost = lostOnWorker(h.task, this.name);
    this.log.warn(
      { task: h.id },
      `task ${h.id} was assigned to an earlier run of ${this.name} that ended without finishing it; ` +
        ('fail' in lost ? 'it was lost too often: failing it' : 'giving it back to the queue'),
    );
    if ('fail' in lost) {
      const now = Date.now();
      const meta = taskMeta(h.task);
      this.#completions.push({
        kind: 'status',
        id: h.id,
        status: {
          state: 'failed',
          worker: this.name,
          attempts: lost.fail.attempts,
          ...(meta.submittedAt !== undefined ? { submittedAt: meta.submittedAt } : {}),
          startedAt: null,
          finishedAt: now,
          error: lost.fail.error,
          errorCode: ErrorCodes.WORKER_LOST,
        },
      });
    } else {
      this.#completions.push({ kind: 'requeue', id: h.id, task: lost.requeue, counted: true });
    }
    this.#scheduleFlush();
  }

  /** Start queued tasks while there are free slots. */
  #startMore(): void {
    if (this.#paused || this.#draining) return;
    for (const h of this.#held.values()) {
      if (this.#running >= this.capacity) break;
      if (h.state !== 'queued' || h.version < 0) continue;
      h.state = 'running';
      this.#running++;
      void this.#run(h);
    }
    this.#notifyIdle();
  }

  async #run(h: Held): Promise<void> {
    const meta = taskMeta(h.task);
    const attempt = meta.attempts + 1;
    let outcome: ExecOutcome;
    // The clock for prefetch: sub-millisecond, so a task of 0.9 ms is not taken for one of 0 ms.
    const began = performance.now();
    try {
      outcome = await this.#executor.run({
        taskId: h.id,
        workerName: this.name,
        spec: h.task,
        attempt,
        signal: this.#abandon.signal,
      });
    } catch (err) {
      // The executor promises never to throw; if it does, the task still gets an outcome.
      outcome = {
        state: 'failed',
        error: describeError(err),
        errorCode: 'ZKFARM_HANDLER_FAILED',
        startedAt: Date.now(),
        finishedAt: Date.now(),
      };
    }
    this.#running--;
    if (this.#abandon.signal.aborted && this.state === 'stopping') {
      // Given up at the drain deadline: no result; the master gives the task back when our session closes.
      this.#held.delete(h.id);
      this.#notifyIdle();
      return;
    }
    const d = outcome.finishedAt - outcome.startedAt;
    this.#stats.durations.push(d);
    if (this.#stats.durations.length > 1000) this.#stats.durations.splice(0, 500);
    // The master reads the prefetch from /workers/<name>: publish it when the durations moved it.
    if (this.#autoPrefetch?.observe(performance.now() - began, outcome.finishedAt) !== undefined)
      void this.#publish();
    this.#complete(h, outcome);
    this.#startMore();
  }

  #complete(h: Held, outcome: ExecOutcome): void {
    h.state = 'completing';
    const meta = taskMeta(h.task);
    const attempt = meta.attempts + 1;
    if (outcome.state === 'failed' && outcome.retryable !== false && attempt < maxAttemptsOf(h.task)) {
      const base = this.#opts.retryDelayMs ?? 500;
      const notBefore = Date.now() + Math.min(base * 2 ** (attempt - 1), 30_000);
      const task: Task = {
        ...h.task,
        _zkfarm: { ...meta, attempts: attempt, notBefore, lastError: outcome.error },
      };
      this.#completions.push({ kind: 'requeue', id: h.id, task, counted: true });
    } else {
      const status: TaskStatus = {
        state: outcome.state,
        worker: this.name,
        attempts: attempt,
        ...(meta.submittedAt !== undefined ? { submittedAt: meta.submittedAt } : {}),
        startedAt: outcome.startedAt,
        finishedAt: outcome.finishedAt,
      };
      if (outcome.exitCode !== undefined) status.exitCode = outcome.exitCode;
      if (outcome.result !== undefined) status.result = outcome.result;
      if (outcome.error !== undefined) status.error = outcome.error;
      if (outcome.errorCode !== undefined) status.errorCode = outcome.errorCode;
      if (outcome.outputDir !== undefined) status.outputDir = outcome.outputDir;
      this.#completions.push({ kind: 'status', id: h.id, status });
    }
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#flushing || this.#completions.length === 0) return;
    this.#flushScheduled = true;
    // setImmediate: completions that finish in the same turn share one multi.
    setImmediate(() => {
      this.#flushScheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    let delay = 100;
    try {
      while (this.#completions.length > 0) {
        const session = this.supervisor?.session;
        if (!session) {
          // No live session: try again once one is up (onSession schedules a flush too).
          await sleep(delay);
          delay = Math.min(delay * 2, 2000);
          if (this.state === 'stopped') return;
          continue;
        }
        const batch = this.#completions.splice(0, MULTI_MAX_OPS / 2);
        try {
          await this.#commit(session, batch);
          delay = 100;
        } catch (err) {
          if (isZkError(err) && !err.transient && batch.length > 1) {
            // One completion in the batch is refused: find which, one by one.
            for (const c of batch) await this.#commitOne(session, c);
          } else if (isZkError(err) && !err.transient) {
            await this.#commitOne(session, batch[0]!);
          } else {
            // Connection trouble or a lost session: put them back and retry.
            this.#completions.unshift(...batch);
            await sleep(delay);
            delay = Math.min(delay * 2, 2000);
          }
        }
      }
    } finally {
      this.#flushing = false;
      this.#notifyIdle();
    }
  }

  async #commit(session: Session, batch: Completion[]): Promise<void> {
    const tx = session.client.transaction();
    for (const c of batch) addCompletion(tx, this.name, c);
    await tx.commit();
    for (const c of batch) this.#done(c);
  }

  async #commitOne(session: Session, c: Completion): Promise<void> {
    try {
      await this.#commit(session, [c]);
    } catch (err) {
      if (!isZkError(err) || err.transient) {
        this.#completions.push(c);
        return;
      }
      if (err.code === 'NO_NODE') {
        // The assignment is gone: the task was given to someone else. Our result is dropped (fenced).
        this.#stats.fenced++;
        this.log.warn(
          { task: c.id },
          `task ${c.id} was reassigned while it ran here; not recording a second result`,
        );
        this.#held.delete(c.id);
      } else if (err.code === 'NODE_EXISTS' && c.kind === 'status') {
        // It already has a status (an earlier run recorded it): remove our assignment only.
        await session.client.removeIfExists(assignPath(this.name, c.id)).catch(() => {});
        this.#held.delete(c.id);
      } else {
        this.log.error({ err, task: c.id }, `could not complete ${c.id}: ${describeError(err)}`);
        this.#held.delete(c.id);
      }
    }
  }

  #done(c: Completion): void {
    this.#held.delete(c.id);
    if (c.kind === 'status') {
      if (c.status.state === 'succeeded') this.#stats.succeeded++;
      else this.#stats.failed++;
    } else if (c.counted) this.#stats.retried++;
  }

  /** Hand queued (not started) tasks back to /tasks unchanged. */
  async #giveBackQueued(): Promise<void> {
    for (const h of this.#held.values()) {
      if (h.state === 'queued' && h.version >= 0) {
        h.state = 'completing';
        this.#completions.push({ kind: 'requeue', id: h.id, task: h.task, counted: false });
      }
    }
    this.#scheduleFlush();
  }

  /** Stop taking tasks; queued ones go back to the queue. Running ones finish. */
  async pause(): Promise<void> {
    if (this.#paused) return;
    this.#paused = true;
    this.#stats.paused = true;
    await this.#publish();
    await this.#giveBackQueued();
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
    await this.#giveBackQueued();
    const deadline = Date.now() + (options.drain === false ? 0 : (options.deadlineMs ?? 30_000));
    await this.#waitIdle(deadline);
    if (this.#running > 0) {
      this.log.warn(
        { running: this.#running },
        'drain deadline passed; abandoning running tasks (they will run again elsewhere)',
      );
      this.#abandon.abort();
    }
    // Let the last completions go out (bounded).
    await this.#waitIdle(Date.now() + 5000, true);
    await this.#executor.close();
  }

  /** Resolve when nothing runs and nothing waits to be committed, or at the deadline. */
  async #waitIdle(deadline: number, completionsOnly = false): Promise<void> {
    const idle = () =>
      (completionsOnly || this.#running === 0) && this.#completions.length === 0 && !this.#flushing;
    while (!idle() && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(200, Math.max(1, deadline - Date.now())));
        this.#idleWaiters.add(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  #notifyIdle(): void {
    for (const w of this.#idleWaiters) w();
    this.#idleWaiters.clear();
  }

  get paused(): boolean {
    return this.#paused;
  }

  stats(): WorkerStats {
    let queued = 0;
    for (const h of this.#held.values()) if (h.state === 'queued') queued++;
    return { ...this.#stats, running: this.#running, queued, durations: [...this.#stats.durations] };
  }
}

function addCompletion(
  tx: ReturnType<Session['client']['transaction']>,
  worker: string,
  c: Completion,
): void {
  if (c.kind === 'status') tx.create(statusPath(c.id), encodeStatus(c.status));
  else tx.create(taskPath(c.id), encode(c.task));
  tx.remove(assignPath(worker, c.id));
}

/** A status must fit in a znode: an oversized result is left out (it is in result.json). */
function encodeStatus(status: TaskStatus): Buffer {
  const buf = encode(status);
  if (buf.length <= 256 * 1024) return buf;
  const { result: _dropped, ...rest } = status;
  return encode({
    ...rest,
    resultTruncated: true,
    note: `result too large for ZooKeeper (${buf.length} bytes); see result.json in the output directory`,
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
