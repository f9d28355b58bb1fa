/**
 * The leading master's work, for one session: recover, then keep assigning.
 *
 * Znodes touched and why each step is atomic:
 *   assign      multi[ create /assign/<w>/<id> (task JSON), delete /tasks/<id> @version, check /workers/<w> ]
 *               The version read with the data fences the copy: a task changed meanwhile is not moved;
 *               the check fences the worker: one that vanished meanwhile gets nothing.
 *   give back   multi[ create /tasks/<id> (attempt counted), delete /assign/<w>/<id> @version ]
 *               for the tasks of a worker whose ephemeral /workers/<w> vanished.
 *   reject      multi[ create /status/<id> (failed), delete /tasks/<id> ]   for data that is not a task,
 *               and for a task lost on too many workers (then from /assign/<w>/<id>).
 * Many moves go in one multi (bounded by MULTI_MAX_OPS / MULTI_MAX_BYTES), and a round's multis go out
 * together; if a multi fails, its moves are retried one by one so that one bad task cannot hold the others back.
 *
 * Recovery on taking the lead: assignments of workers that are gone go back to /tasks; empty /assign/<w>
 * of dead workers are removed. Nothing else can be half-done: every move is a single multi.
 *
 * Load: a worker's outstanding tasks are the children of /assign/<w>, kept by a persistent watch
 * (ZooKeeper 3.6+). ZooKeeper sends the events a multi causes before the multi's answer, so the tasks
 * of an assignment are counted by the time its answer is handled; a worker is assignable from its
 * first report on.
 *
 * On session loss every request fails with ZKFARM_SESSION_LOST and `run()` returns: the leader stops at once.
 */
import { describeError } from '../errors.js';
import {
  type ChildrenChange,
  type ChildrenWatcher,
  type DataWatch,
  isZkError,
  type Logger,
  type Session,
  type Transaction,
  type ZkClient,
} from '../zk/index.js';
import { planAssignments, totalFreeSlots, type WorkerLoad } from './assignment-policy.js';
import {
  assignDir,
  assignPath,
  encode,
  lostOnWorker,
  MULTI_MAX_BYTES,
  MULTI_MAX_OPS,
  PATHS,
  parseTask,
  parseWorkerInfo,
  statusPath,
  type Task,
  type TaskStatus,
  taskPath,
  workerPath,
} from './protocol.js';
import { type RetentionOptions, sweepStatuses } from './retention.js';

export interface LeaderOptions {
  /**
   * Most tasks handed out in one round (read together, then moved in multis of at most MULTI_MAX_OPS
   * operations, all sent at once). @defaultValue 800
   */
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
}

interface WorkerState {
  name: string;
  capacity: number;
  prefetch: number;
  paused: boolean;
  shell: boolean;
  live: boolean;
  /** How many children /assign/<w> has (its tasks not completed yet), kept by a persistent watch. */
  outstanding: number;
  /** The watch has reported /assign/<w> at least once. */
  reported: boolean;
  dataWatch?: DataWatch;
  assignWatch?: ChildrenWatcher;
}

export class Leader {
  readonly #session: Session;
  readonly #client: ZkClient;
  readonly #log: Logger;
  readonly #batch: number;
  readonly #maxLost: number | undefined;
  readonly #retention: RetentionOptions;
  readonly #workers = new Map<string, WorkerState>();
  /** Task ids in /tasks as last listed, less those moved since. */
  #queue = new Set<string>();
  /** The queue in id order (oldest first); may still hold ids that left the queue (skipped lazily). */
  #order: string[] = [];
  #orderHead = 0;
  #orderStale = false;
  /** /tasks changed since the last listing (its watch fired). */
  #tasksDirty = true;
  #lastListAt = 0;
  /** Ids moved out of /tasks by us: id → request mark of the multi (a listing sent earlier may still show them). */
  readonly #moved = new Map<string, number>();
  /** Tasks waiting for their retry time: id → timer. */
  readonly #delayed = new Map<string, NodeJS.Timeout>();
  /** Tasks in a multi being sent right now. */
  readonly #inflight = new Set<string>();
  #pumping = false;
  #dirty = false;
  #stopped = false;
  #rotate = 0;
  #retentionTimer: NodeJS.Timeout | undefined;
  #stats: LeaderStats = Leader.emptyStats();

  static emptyStats(): LeaderStats {
    return { assigned: 0, givenBack: 0, rejected: 0, queued: 0, workers: 0, since: 0 };
  }

  constructor(session: Session, options: LeaderOptions, log: Logger) {
    this.#session = session;
    this.#client = session.client;
    this.#log = log;
    this.#batch = options.batchSize ?? ROUND_TASKS; // checked by Master: a whole number ≥ 1
    this.#maxLost = options.maxLost;
    this.#retention = options.retention ?? {};
    this.#stats.since = Date.now();
    session.signal.addEventListener('abort', () => this.stop(), { once: true });
  }

  get active(): boolean {
    return !this.#stopped && this.#session.alive;
  }

  stats(): LeaderStats {
    return {
      ...this.#stats,
      queued: this.#queue.size,
      workers: [...this.#workers.values()].filter((w) => w.live).length,
    };
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const t of this.#delayed.values()) clearTimeout(t);
    this.#delayed.clear();
    clearInterval(this.#retentionTimer);
    for (const w of this.#workers.values()) {
      w.dataWatch?.close();
      w.assignWatch?.close();
    }
  }

  async run(): Promise<void> {
    const s = this.#session;
    // Workers first, so that recovery knows who is alive; then the queue.
    const workersWatch = s.watchChildren(PATHS.workers, (ch) => this.#onWorkers(ch));
    await workersWatch.ready;
    if (!this.active) return;
    await this.#recover();
    if (!this.active) return;
    this.#tasksDirty = true;
    this.#kick();
    const interval = this.#retention.intervalMs ?? 60_000;
    this.#retentionTimer = setInterval(() => void this.#sweep(), interval);
    this.#retentionTimer.unref?.();
  }

  async #sweep(): Promise<void> {
    if (!this.active) return;
    try {
      const removed = await sweepStatuses(this.#client, this.#retention);
      if (removed > 0) this.#log.info({ removed }, 'removed old statuses');
    } catch (err) {
      if (this.active) this.#log.warn({ err }, `status retention sweep failed: ${describeError(err)}`);
    }
  }

  /** Give back what dead workers held; remove their empty /assign dirs. */
  async #recover(): Promise<void> {
    let dirs: string[];
    try {
      dirs = await this.#client.getChildren(PATHS.assign);
    } catch (err) {
      if (isZkError(err, 'NO_NODE')) return;
      throw err;
    }
    const dead = dirs.filter((w) => !this.#workers.get(w)?.live);
    if (dead.length) this.#log.info({ workers: dead }, 'recovering the assignments of workers that are gone');
    await Promise.all(dead.map((w) => this.#giveBack(w)));
  }

  #onWorkers(ch: ChildrenChange): void {
    for (const name of ch.added) this.#addWorker(name);
    for (const name of ch.removed) {
      const w = this.#workers.get(name);
      if (!w) continue;
      w.live = false;
      w.dataWatch?.close();
      w.assignWatch?.close();
      this.#workers.delete(name);
      this.#log.info({ worker: name }, 'worker gone; giving its tasks back');
      void this.#giveBack(name).catch((err) => {
        if (this.active)
          this.#log.error({ err, worker: name }, `giving back tasks failed: ${describeError(err)}`);
      });
    }
  }

  #addWorker(name: string): void {
    if (this.#workers.has(name)) return;
    const w: WorkerState = {
      name,
      capacity: 0,
      prefetch: 0,
      paused: true,
      shell: false,
      live: true,
      outstanding: 0,
      reported: false,
    };
    this.#workers.set(name, w);
    const s = this.#session;
    w.dataWatch = s.watchData(workerPath(name), (d) => {
      const info = parseWorkerInfo(d.data);
      if (!info) {
        w.paused = true;
        return;
      }
      w.capacity = info.capacity;
      w.prefetch = info.prefetch;
      w.paused = info.paused;
      w.shell = info.shell === true;
      this.#kick();
    });
    // The worker creates its /assign dir, but a give-back may have removed it: make sure it exists.
    void this.#client
      .ensurePath(assignDir(name))
      .catch(() => {})
      .then(() => {
        if (!w.live || !this.active) return;
        // The first report makes the worker assignable: kick then.
        let first = true;
        // A persistent watch names every assignment created (ours) and deleted (completed, given back)
        // as it happens: ZooKeeper sends the events of our own multi before its answer, so when a multi's
        // answer is handled here its tasks are already counted, and nothing needs a listing.
        w.assignWatch = s.watchChildren(
          assignDir(name),
          (ch) => {
            w.outstanding = ch.children.length;
            w.reported = true;
            if (ch.removed.length > 0 || first) this.#kick();
            first = false;
          },
          { persistent: true },
        );
      });
  }

  /**
   * List /tasks (and re-arm its watch). The leader lists lazily: when the watch fires it only marks the
   * queue dirty, and re-lists when it needs more tasks than it knows of, or when the listing is older
   * than `relistAfterMs` (200 ms for a short queue, up to 2 s for a deep one). A deep queue is then not
   * re-listed for every batch: a listing of 20,000 ids is 300 KB for ZooKeeper to write and the leader to
   * read, and the ids it adds are newer than those already known, so they would wait their turn anyway.
   * (A task given back or retried keeps its old id and moves to the front when the next listing sees it.)
   */
  async #listTasks(): Promise<void> {
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
    const next = new Set<string>();
    for (const id of children) {
      const movedAt = this.#moved.get(id);
      // Moved by a multi sent after this listing was: the listing is older than our move.
      if (movedAt !== undefined && movedAt > mark) continue;
      next.add(id);
    }
    for (const [id, at] of this.#moved) if (at <= mark) this.#moved.delete(id);
    for (const id of this.#delayed.keys()) {
      if (!next.has(id)) {
        clearTimeout(this.#delayed.get(id));
        this.#delayed.delete(id);
      }
    }
    const added: string[] = [];
    for (const id of next) if (!this.#queue.has(id)) added.push(id);
    this.#queue = next;
    if (added.length > 0) this.#addToOrder(added);
  }

  #dequeue(id: string, mark?: number): void {
    this.#queue.delete(id);
    if (mark !== undefined) this.#moved.set(id, mark);
  }

  #loads(): WorkerLoad[] {
    const out: WorkerLoad[] = [];
    for (const w of this.#workers.values()) {
      if (!w.live || w.capacity <= 0 || !w.reported) continue;
      out.push({
        name: w.name,
        capacity: w.capacity,
        prefetch: w.prefetch,
        outstanding: w.outstanding,
        paused: w.paused,
        shell: w.shell,
      });
    }
    return out;
  }

  /** Run the assignment loop (single flight; a call while it runs makes it go round once more). */
  #kick(): void {
    if (!this.active) return;
    if (this.#pumping) {
      this.#dirty = true;
      return;
    }
    this.#pumping = true;
    void this.#pump().finally(() => {
      this.#pumping = false;
    });
  }

  async #pump(): Promise<void> {
    let failures = 0;
    do {
      this.#dirty = false;
      try {
        while (this.active && (await this.#assignBatch())) {
          /* keep going while there is work and room */
        }
        failures = 0;
      } catch (err) {
        if (!this.active) return;
        failures++;
        this.#log.warn({ err }, `assignment round failed: ${describeError(err)}`);
        await sleep(Math.min(50 * 2 ** failures, 2000));
        this.#dirty = true;
      }
    } while (this.#dirty && this.active);
  }

  /** Assign one batch; false when there was nothing to do. */
  async #assignBatch(): Promise<boolean> {
    const loads = this.#loads();
    const free = totalFreeSlots(loads);
    if (free === 0) return false;
    if (this.#tasksDirty) {
      const known = this.#queue.size - this.#inflight.size - this.#delayed.size;
      if (known < free * 2 || Date.now() - this.#lastListAt > relistAfterMs(known)) await this.#listTasks();
    }
    if (this.#queue.size === 0) return false;
    const want = Math.min(free, this.#batch);
    const ids = this.#nextTasks(want);
    if (ids.length === 0) return false;
    for (const id of ids) this.#inflight.add(id);
    try {
      const read = await this.#readTasks(ids);
      const runnable: Array<{ id: string; task: Task; version: number; size: number }> = [];
      const rejects: Array<{ id: string; error: string; version: number; ctime: number }> = [];
      const now = Date.now();
      for (const r of read) {
        if (!r) continue;
        if (!r.parsed.ok)
          rejects.push({ id: r.id, error: r.parsed.error, version: r.version, ctime: r.ctime });
        else if (r.size > MULTI_MAX_BYTES) {
          // A raw client can write up to ~1 MB; moving that in a multi (data again, plus bookkeeping) would
          // exceed ZooKeeper's request limit and make it drop the leader's connection, again and again.
          rejects.push({
            id: r.id,
            error:
              `task data is ${r.size} bytes; the farm moves at most ${MULTI_MAX_BYTES} bytes per task: ` +
              'put large inputs in a file or store and pass a reference',
            version: r.version,
            ctime: r.ctime,
          });
        } else {
          const task = r.parsed.task;
          const nb = task._zkfarm?.notBefore;
          if (nb && nb > now) this.#delay(r.id, nb - now);
          else {
            // Carry the submit time along (the /tasks znode's ctime), so the result can say how long it took.
            if (task._zkfarm?.submittedAt === undefined)
              task._zkfarm = { attempts: 0, ...task._zkfarm, submittedAt: r.ctime };
            runnable.push({ id: r.id, task, version: r.version, size: r.size });
          }
        }
      }
      const byId = new Map(runnable.map((r) => [r.id, r]));
      const plan = planAssignments(
        runnable.map((r) => r.id),
        loads,
        this.#rotate++,
        (id) => byId.get(id)?.task.cmd !== undefined,
      );
      const moves: Move[] = [];
      for (const a of plan.assignments) {
        const r = byId.get(a.task)!;
        moves.push({
          kind: 'assign',
          id: a.task,
          worker: a.worker,
          data: encode(r.task),
          version: r.version,
        });
      }
      for (const r of rejects) {
        const status: TaskStatus = {
          state: 'failed',
          worker: null,
          attempts: 0,
          submittedAt: r.ctime,
          startedAt: null,
          finishedAt: Date.now(),
          error: r.error,
          errorCode: 'ZKFARM_INVALID_TASK',
        };
        moves.push({ kind: 'reject', id: r.id, data: encode(status), version: r.version });
      }
      if (moves.length === 0) return plan.unassigned.length === 0 && runnable.length > 0;
      await this.#commitMoves(moves);
      return true;
    } finally {
      for (const id of ids) this.#inflight.delete(id);
    }
  }

  /**
   * Put new ids into the id order. Submitted tasks get ids after every id known (sequential znodes), so
   * they are appended; an older id (a task given back or retried) makes the order sort again.
   */
  #addToOrder(added: string[]): void {
    if (this.#orderStale) return;
    added.sort();
    const last = this.#order.length > this.#orderHead ? this.#order[this.#order.length - 1]! : undefined;
    if (last !== undefined && added[0]! <= last) this.#orderStale = true;
    else for (const id of added) this.#order.push(id);
  }

  /** The oldest queued tasks not in flight and not waiting for a retry time. */
  #nextTasks(n: number): string[] {
    if (this.#orderStale) {
      this.#order = [...this.#queue].sort();
      this.#orderHead = 0;
      this.#orderStale = false;
    }
    const out: string[] = [];
    const order = this.#order;
    // Skip what left the queue at the front for good; then collect, skipping in-flight and delayed ones.
    while (this.#orderHead < order.length && !this.#queue.has(order[this.#orderHead]!)) this.#orderHead++;
    for (let i = this.#orderHead; i < order.length && out.length < n; i++) {
      const id = order[i]!;
      if (this.#queue.has(id) && !this.#inflight.has(id) && !this.#delayed.has(id)) out.push(id);
    }
    if (this.#orderHead > 4096 && this.#orderHead > order.length / 2) {
      this.#order = order.slice(this.#orderHead);
      this.#orderHead = 0;
    }
    return out;
  }

  /** Read a round's tasks in one round trip (multiReads sent together); tasks that are gone leave the queue. */
  async #readTasks(ids: string[]) {
    const results = await this.#client.getDataMany(ids.map(taskPath));
    return results.map((r, i) => {
      const id = ids[i]!;
      if (r instanceof Error) {
        if (isZkError(r, 'NO_NODE')) {
          this.#dequeue(id);
          return undefined;
        }
        throw r;
      }
      const { data, stat } = r;
      return {
        id,
        parsed: parseTask(data),
        version: stat.version,
        size: data.length,
        ctime: stat.ctime,
      };
    });
  }

  #delay(id: string, ms: number): void {
    if (this.#delayed.has(id)) return;
    const t = setTimeout(() => {
      this.#delayed.delete(id);
      this.#kick();
    }, ms);
    t.unref?.();
    this.#delayed.set(id, t);
  }

  /** Commit moves in bounded multis; a failed multi is retried move by move. */
  async #commitMoves(moves: Move[]): Promise<void> {
    // Every chunk goes out at once (one socket write); their answers are handled in order.
    const chunks = [...chunkMoves(moves)];
    const sent = chunks.map((chunk) =>
      this.#commitChunk(chunk).then(
        () => undefined,
        (err: unknown) => err ?? new Error('multi failed'),
      ),
    );
    for (let i = 0; i < chunks.length; i++) {
      const chunk = chunks[i]!;
      const err = await sent[i];
      if (err === undefined) continue;
      if (!this.active) throw err;
      if (!isZkError(err) || err.transient || chunk.length === 1) {
        if (chunk.length === 1 && isZkError(err) && !err.transient)
          this.#handleSingleFailure(chunk[0]!, err.code);
        else throw err;
        continue;
      }
      // One move in the batch is bad: isolate it.
      for (const m of chunk) {
        try {
          await this.#commitChunk([m]);
        } catch (e) {
          if (isZkError(e) && !e.transient) this.#handleSingleFailure(m, e.code);
          else throw e;
        }
      }
    }
  }

  async #commitChunk(chunk: Move[]): Promise<void> {
    const tx = this.#client.transaction();
    for (const m of chunk) addMove(tx, m);
    // Fence: each worker given tasks must still be registered when the multi applies. A worker can
    // vanish while a batch is being read; without the check, its assignments would land after the
    // give-back of its tasks had listed /assign/<w>, and nobody would hand them on.
    for (const w of assignedWorkers(chunk)) tx.check(workerPath(w));
    const sent = tx.commit();
    const mark = this.#client.requests; // this multi's number: a listing sent later includes it
    await sent;
    for (const m of chunk) {
      if (m.kind === 'assign') {
        this.#dequeue(m.id, mark);
        this.#stats.assigned++;
      } else if (m.kind === 'reject') {
        this.#dequeue(m.id, mark);
        this.#stats.rejected++;
      } else {
        this.#stats.givenBack++;
      }
    }
  }

  #handleSingleFailure(m: Move, code: string): void {
    if (m.kind === 'assign' || m.kind === 'reject') {
      if (code === 'NO_NODE' && m.kind === 'assign') {
        // Either the task is gone (another master moved it, or it was deleted) or the worker's dir is.
        this.#dequeue(m.id);
        void this.#client.exists(taskPath(m.id)).then(
          (s) => {
            if (s) {
              this.#tasksDirty = true;
              const w = this.#workers.get(m.worker!);
              if (w?.live) void this.#client.ensurePath(assignDir(w.name)).then(() => this.#kick());
            }
          },
          () => {},
        );
        return;
      }
      if (code === 'NODE_EXISTS' && m.kind === 'assign') {
        // The same task id is already assigned (a task re-submitted under a used id): leave the queued copy
        // for inspection rather than risk running it twice; it is reported once.
        this.#log.error(
          { task: m.id, worker: m.worker },
          'task is already assigned; leaving the queued copy alone',
        );
        this.#dequeue(m.id, Number.POSITIVE_INFINITY);
        return;
      }
      if (code === 'BAD_VERSION') return; // changed since read: read again next round
      if (code === 'NODE_EXISTS' && m.kind === 'reject') {
        // It already has a status: just remove the queued copy.
        void this.#client.removeIfExists(taskPath(m.id)).catch(() => {});
        return;
      }
    }
    this.#log.warn({ move: m.kind, task: m.id, code }, `move of ${m.id} refused (${code})`);
  }

  /** Move every task of a dead worker back to the queue (or to a failed status when lost too often). */
  async #giveBack(worker: string): Promise<void> {
    const dir = assignDir(worker);
    let ids: string[];
    try {
      ids = await this.#client.getChildren(dir);
    } catch (err) {
      if (isZkError(err, 'NO_NODE')) return;
      throw err;
    }
    const moves: Move[] = [];
    const reads = await Promise.all(
      ids.map(async (id) => {
        try {
          const { data, stat } = await this.#client.getData(assignPath(worker, id));
          return { id, data, version: stat.version };
        } catch (err) {
          if (isZkError(err, 'NO_NODE')) return undefined;
          throw err;
        }
      }),
    );
    for (const r of reads) {
      if (!r) continue;
      const parsed = parseTask(r.data);
      if (!parsed.ok) {
        moves.push({
          kind: 'fail-assigned',
          id: r.id,
          worker,
          version: r.version,
          data: encode(failed(r.id, parsed.error, worker, 1, 'ZKFARM_INVALID_TASK')),
        });
        continue;
      }
      const lost = lostOnWorker(parsed.task, worker, this.#maxLost);
      if ('fail' in lost) {
        moves.push({
          kind: 'fail-assigned',
          id: r.id,
          worker,
          version: r.version,
          data: encode(failed(r.id, lost.fail.error, worker, lost.fail.attempts, 'ZKFARM_WORKER_LOST')),
        });
      } else {
        moves.push({ kind: 'give-back', id: r.id, worker, version: r.version, data: encode(lost.requeue) });
      }
    }
    if (moves.length) {
      this.#log.info({ worker, tasks: moves.length }, 'giving back tasks');
      await this.#commitMoves(moves);
    }
    // Remove the dir if the worker is still gone and it is empty (NOT_EMPTY/NO_NODE: leave it).
    if (!this.#workers.get(worker)?.live) {
      await this.#client.remove(dir).catch(() => {});
    }
    this.#kick();
  }
}

type Move =
  | { kind: 'assign'; id: string; worker: string; data: Buffer; version: number }
  | { kind: 'reject'; id: string; worker?: undefined; data: Buffer; version: number }
  | { kind: 'give-back'; id: string; worker: string; data: Buffer; version: number }
  | { kind: 'fail-assigned'; id: string; worker: string; data: Buffer; version: number };

/** Add one move's operations (see the module comment for each). */
function addMove(tx: Transaction, m: Move): void {
  switch (m.kind) {
    case 'assign':
      tx.create(assignPath(m.worker, m.id), m.data).remove(taskPath(m.id), m.version);
      break;
    case 'reject':
      tx.create(statusPath(m.id), m.data).remove(taskPath(m.id), m.version);
      break;
    case 'give-back':
      tx.create(taskPath(m.id), m.data).remove(assignPath(m.worker, m.id), m.version);
      break;
    case 'fail-assigned':
      tx.create(statusPath(m.id), m.data).remove(assignPath(m.worker, m.id), m.version);
      break;
  }
}

/** The workers that assign moves give tasks to (each gets one `check` in the multi). */
function assignedWorkers(moves: Move[]): Set<string> {
  const out = new Set<string>();
  for (const m of moves) if (m.kind === 'assign') out.add(m.worker);
  return out;
}

/** Moves in multis of at most MULTI_MAX_OPS operations (two per move, one check per worker) and MULTI_MAX_BYTES. */
function* chunkMoves(moves: Move[]): Generator<Move[]> {
  let chunk: Move[] = [];
  let bytes = 0;
  let workers = new Set<string>();
  for (const m of moves) {
    const newWorker = m.kind === 'assign' && !workers.has(m.worker) ? 1 : 0;
    if (
      chunk.length > 0 &&
      ((chunk.length + 1) * 2 + workers.size + newWorker > MULTI_MAX_OPS ||
        bytes + m.data.length > MULTI_MAX_BYTES)
    ) {
      yield chunk;
      chunk = [];
      bytes = 0;
      workers = new Set();
    }
    chunk.push(m);
    bytes += m.data.length;
    if (m.kind === 'assign') workers.add(m.worker);
  }
  if (chunk.length) yield chunk;
}

function failed(
  _id: string,
  error: string,
  worker: string | null,
  attempts: number,
  errorCode: string,
): TaskStatus {
  return { state: 'failed', worker, attempts, startedAt: null, finishedAt: Date.now(), error, errorCode };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Tasks handed out per round. A round costs the leader a read and a few multis whatever its size, and
 * each worker a notification burst, a read and a completion: with millisecond tasks, rounds of 100
 * split over 8 workers gave each worker ~12 tasks per wake-up, and the farm spent most of its CPU on
 * per-round work (rounds of 800 with up to 64 × capacity prefetch: ZooKeeper requests per task 0.26 → 0.08;
 * what it bought is in benchmarks/README.md). Rounds are still bounded by the free slots.
 */
const ROUND_TASKS = 800;

/** How old a listing of /tasks may get while `known` queued tasks are known: 200 ms, up to 2 s for 20,000. */
function relistAfterMs(known: number): number {
  return Math.min(2000, Math.max(200, known / 10));
}
