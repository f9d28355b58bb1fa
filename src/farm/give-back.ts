/**
 * Giving back the tasks of workers that are gone, for one leader term.
 *
 * Znodes: lists /assign (recovery) and /assign/<w>, reads /assign/<w>/<id>; moves each task back to
 * /tasks with its loss counted, or to /status failed once lost too often or when its data is not a task
 * (moves.ts: afterLoss, fail); then removes /assign/<w> when it is empty and the worker is still gone.
 *
 * Guarantees:
 * - A give-back is retried until it is done or the term ends: connection trouble and timeouts wait a
 *   backoff (src/backoff.ts) and go again; nothing is only logged and dropped.
 * - A task that cannot be moved (its node has children, a queued copy with its id exists, the farm may
 *   not read it) is reported once, with the reason, and counted; the others go on. It is that
 *   assignment (its czxid) that is set aside: the same task assigned to the worker again is given back.
 * - A move refused because the task is in /tasks already is tried once more: the worker's restarted
 *   run gives back what its earlier run held too, and usually it was first (its move deleted the
 *   assignment). Only an assignment still there beside a queued copy is set aside.
 * - Recovery (at the start of a term) lists /assign: the directories of workers that are not registered
 *   are given back. A failure to list fails the term (the election then retries it cleanly).
 *
 * SUSPENDED: requests fail or wait; the give-back goes again after a backoff.
 * LOST, or the term's end (`signal`): it stops; the next leader recovers what is left.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type BackoffPolicy, backoffDelay } from '../backoff.js';
import { describeError, ErrorCodes } from '../errors.js';
import type { MultiBatcher, Refusal } from '../recipes/multi-batcher.js';
import type { Logger } from '../zk/connect-options.js';
import { isZkError } from '../zk/errors.js';
import type { Session } from '../zk/session.js';
import { afterLoss, fail, type Move } from './moves.js';
import { assignDir, assignPath, PATHS, parseTask, taskPath } from './protocol.js';
import { writeMoves } from './status-store.js';

export interface GiveBackOptions {
  /** A task lost with this many workers ends failed (see task-schema.ts lostOnWorker). */
  maxLost?: number;
  /** Is this worker registered now? */
  isLive(worker: string): boolean;
  /** After each pass that moved tasks (the leader assigns them again). */
  moved(moves: Move[]): void;
  log: Logger;
}

const RETRY: BackoffPolicy = { initialMs: 100, maxMs: 5000 };

export class GiveBacks {
  readonly #session: Session;
  readonly #signal: AbortSignal;
  readonly #batcher: MultiBatcher;
  readonly #opts: GiveBackOptions;
  readonly #running = new Map<string, Promise<void>>();
  /** Assignments (worker/id@czxid) that could not be moved this term (reported once). */
  readonly #stuck = new Set<string>();
  /** Assignments whose move found the task queued already (set aside when it happens again). */
  readonly #queued = new Set<string>();

  constructor(session: Session, signal: AbortSignal, batcher: MultiBatcher, options: GiveBackOptions) {
    this.#session = session;
    this.#signal = signal;
    this.#batcher = batcher;
    this.#opts = options;
  }

  /** Tasks this term could not give back. */
  get stuck(): number {
    return this.#stuck.size;
  }

  /** The directories in /assign of workers that are not registered: give them back (in the background). */
  async recover(): Promise<string[]> {
    let dirs: string[];
    try {
      dirs = await this.#session.client.getChildren(PATHS.assign);
    } catch (err) {
      if (isZkError(err, 'NO_NODE')) return [];
      throw err;
    }
    const dead = dirs.filter((w) => !this.#opts.isLive(w));
    if (dead.length)
      this.#opts.log.info({ workers: dead }, 'recovering the assignments of workers that are gone');
    for (const w of dead) void this.start(w);
    return dead;
  }

  /** Give back `worker`'s tasks, retrying until done or the term ends (one at a time per worker). */
  start(worker: string): Promise<void> {
    let run = this.#running.get(worker);
    if (!run) {
      run = this.#run(worker).finally(() => this.#running.delete(worker));
      this.#running.set(worker, run);
    }
    return run;
  }

  async #run(worker: string): Promise<void> {
    for (let attempt = 0; !this.#signal.aborted; attempt++) {
      try {
        if (await this.#pass(worker)) return;
      } catch (err) {
        if (this.#signal.aborted) return;
        if (!isZkError(err) || !err.transient) {
          this.#opts.log.error(
            { err, worker },
            `cannot give back the tasks of ${worker}: ${describeError(err)}; they stay in ${assignDir(worker)} ` +
              'until the next leader tries again',
          );
          return;
        }
        this.#opts.log.warn(
          { err, worker },
          `giving back the tasks of ${worker} failed: ${describeError(err)}; retrying`,
        );
      }
      await sleep(backoffDelay(RETRY, attempt), undefined, { signal: this.#signal }).catch(() => {});
    }
  }

  /** One pass: list, read, move. True when the directory is done with. */
  async #pass(worker: string): Promise<boolean> {
    const c = this.#session.client;
    let ids: string[];
    try {
      ids = await c.getChildren(assignDir(worker));
    } catch (err) {
      if (isZkError(err, 'NO_NODE')) return true;
      throw err;
    }
    const keys = new Map<Move, string>();
    const moves = await this.#plan(worker, ids, keys);
    let again = false;
    if (moves.length > 0) {
      this.#opts.log.info({ worker, tasks: moves.length }, 'giving back tasks');
      const r = await writeMoves(this.#batcher, this.#session.client, moves);
      if (r.stoppedBy !== undefined) throw r.stoppedBy;
      if (r.written.length > 0) this.#opts.moved(r.written);
      for (const refusal of r.refused) again = this.#refused(worker, refusal, keys) || again;
    }
    if (again) return false;
    // Its directory goes when it is empty and the worker is still gone (NOT_EMPTY, NO_NODE: leave it).
    if (!this.#opts.isLive(worker)) await c.remove(assignDir(worker)).catch(() => {});
    return true;
  }

  /** Read the tasks and decide each one's move (`keys`: each move's assignment, as worker/id@czxid). */
  async #plan(worker: string, ids: string[], keys: Map<Move, string>): Promise<Move[]> {
    const reads = await this.#session.client.getDataMany(ids.map((id) => assignPath(worker, id)));
    const moves: Move[] = [];
    reads.forEach((r, i) => {
      const id = ids[i]!;
      if (r instanceof Error) {
        if (r.code === 'NO_NODE') return;
        if (r.transient) throw r;
        this.#stuckOnce(`${worker}/${id}`, worker, id, `it cannot be read (${r.code})`);
        return;
      }
      const key = `${worker}/${id}@${r.stat.czxid}`;
      if (this.#stuck.has(key)) return;
      const parsed = parseTask(r.data);
      const move = parsed.ok
        ? afterLoss(id, worker, parsed.task, r.stat.version, this.#opts.maxLost)
        : fail(
            id,
            worker,
            { error: parsed.error, errorCode: ErrorCodes.INVALID_TASK, attempts: 1 },
            r.stat.version,
          );
      keys.set(move, key);
      moves.push(move);
    });
    return moves;
  }

  /** A move refused: true when another pass may do it (changed meanwhile, or an unknown outcome). */
  #refused(worker: string, r: Refusal<Move>, keys: Map<Move, string>): boolean {
    const { code, path } = r.error;
    const id = r.item.id;
    if (code === 'NO_NODE' && path === assignPath(worker, id)) return false; // gone already
    if (code === 'BAD_VERSION' || r.afterLoss) return true;
    const key = keys.get(r.item) ?? `${worker}/${id}`;
    if (code === 'NODE_EXISTS' && path === taskPath(id) && !this.#queued.has(key)) {
      this.#queued.add(key);
      return true; // queued by the worker's own give-back, most likely: the next pass finds it gone
    }
    this.#stuckOnce(key, worker, id, `ZooKeeper refused the move (${code} on ${path})`);
    return false;
  }

  #stuckOnce(key: string, worker: string, id: string, why: string): void {
    if (this.#stuck.has(key)) return;
    this.#stuck.add(key);
    this.#opts.log.warn(
      { worker, task: id },
      `cannot give back ${id} from ${assignDir(worker)}: ${why}; it stays there until it is fixed and a new leader recovers it`,
    );
  }
}
