/**
 * A worker's completion queue: the moves that end its tasks (complete, requeue, give back, fail,
 * discard: moves.ts), written on whatever session is live until each is written or refused.
 *
 * Znodes: creates /status/<bucket>/<id> (and its bucket when missing: status-store.ts) or /tasks/<id>,
 * deletes /assign/<worker>/<id>.
 *
 * Guarantees:
 * - Moves pushed in one turn of the event loop share a multi, one multi at a time, each as full as
 *   the limits allow (MultiBatcher: operation count and bytes, so a burst of large results or a pause
 *   handing back many large tasks stays under ZooKeeper's request limit); moves that come while it is
 *   on its way go in the next.
 * - No move is dropped for connection trouble: it is written on the current session, or, when that
 *   session is lost, on the next one, where it succeeds only if the assignment is still ours (its
 *   delete fences it).
 * - A refusal is sorted out by the operation that failed: the assignment gone, or the task back in
 *   /tasks, means the task moved on (the result is fenced, not recorded, and a new assignment of it
 *   here is read); a status already there means the task has its result (the assignment is
 *   discarded); anything else is reported once, with the reason.
 *
 * SUSPENDED: the MultiBatcher sends again after a backoff, on the resumed connection.
 * LOST: what was not written waits for the next session (the worker calls `flush()` on it).
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Backoff } from '../backoff.js';
import { describeError } from '../errors.js';
import { MultiBatcher, type Refusal } from '../recipes/multi-batcher.js';
import { objectArray } from '../v8-shapes.js';
import type { Logger } from '../zk/connect-options.js';
import type { Session } from '../zk/session.js';
import { discard, type Move } from './moves.js';
import { assignPath, statusPath, taskPath } from './protocol.js';
import { writeMoves } from './status-store.js';

export interface CompletionHooks {
  /** The move is written (or, after a lost answer, its assignment is gone: it was ours). */
  written(move: Move): void;
  /**
   * The task had moved on: the move did nothing. `assignmentGone`: its assignment here was gone, so a
   * new assignment of the same task to this worker may already be there, reported while it was held.
   */
  fenced(move: Move, why: string, assignmentGone?: boolean): void;
  /** The move cannot be written; its task is let go (the reason is logged). */
  dropped(move: Move): void;
  /** A discard found no result after all: the task must be read and run. */
  retake(id: string): void;
}

/** Events: 'idle' when nothing waits or is being written. */
export class CompletionQueue extends EventEmitter {
  readonly #worker: string;
  readonly #session: () => Session | undefined;
  readonly #hooks: CompletionHooks;
  readonly #log: Logger;
  #pending: Move[] = objectArray();
  #writing = 0;
  #flushing = false;
  #scheduled = false;
  #batcher: { session: Session; batcher: MultiBatcher } | undefined;

  constructor(worker: string, session: () => Session | undefined, hooks: CompletionHooks, log: Logger) {
    super();
    this.#worker = worker;
    this.#session = session;
    this.#hooks = hooks;
    this.#log = log;
  }

  /** Moves waiting or being written. */
  get size(): number {
    return this.#pending.length + this.#writing;
  }

  push(move: Move): void {
    this.#pending.push(move);
    this.flush();
  }

  /** Write what waits (soon: moves pushed in this turn go together). */
  flush(): void {
    if (this.#scheduled || this.#flushing || this.#pending.length === 0) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    const backoff = new Backoff({ initialMs: 100, maxMs: 2000 });
    try {
      while (this.#pending.length > 0) {
        const session = this.#session();
        if (!session) return; // the next session flushes
        // One full multi at a time: moves that finish while it is on its way fill the next one.
        const batcher = this.#batcherOf(session);
        const batch = this.#pending.splice(0, batcher.firstMulti(this.#pending));
        this.#writing = batch.length;
        const r = await writeMoves(batcher, session.client, batch);
        this.#writing = 0;
        for (const m of r.written) this.#hooks.written(m);
        for (const x of r.refused) this.#refused(x);
        if (r.unsent.length === 0) continue;
        this.#pending.unshift(...r.unsent);
        if (!session.alive) return;
        this.#log.warn(
          { err: r.stoppedBy },
          `writing completions failed: ${describeError(r.stoppedBy)}; retrying`,
        );
        await sleep(backoff.next());
      }
    } finally {
      this.#writing = 0;
      this.#flushing = false;
      if (this.size === 0) this.emit('idle');
      else if (this.#session()) this.flush();
    }
  }

  /** One batcher per session (it is bound to the session's client and signal). */
  #batcherOf(session: Session): MultiBatcher {
    if (this.#batcher?.session !== session)
      this.#batcher = { session, batcher: new MultiBatcher(session.client, { signal: session.signal }) };
    return this.#batcher.batcher;
  }

  #refused({ item: m, error, afterLoss }: Refusal<Move>): void {
    const path = error.path;
    if (error.code === 'NO_NODE' && path === assignPath(this.#worker, m.id)) {
      // The assignment is gone. After a lost answer, by our own write (a live worker's tasks are not
      // taken away); otherwise the task moved on while it ran here.
      if (afterLoss) this.#hooks.written(m);
      else
        this.#hooks.fenced(
          m,
          `task ${m.id} was reassigned while it ran here; not recording a second result`,
          true,
        );
    } else if (error.code === 'NO_NODE' && m.kind === 'discard') {
      this.#hooks.retake(m.id);
    } else if (error.code === 'NODE_EXISTS' && path === statusPath(m.id)) {
      // It has its result already (an earlier run recorded it): our assignment goes, fenced by the result.
      if (m.kind !== 'discard') this.push(discard(m.id, this.#worker));
      this.#hooks.fenced(m, `task ${m.id} already has a result; not recording a second one`);
    } else if (error.code === 'NODE_EXISTS' && path === taskPath(m.id)) {
      // Queued already. After a lost answer, by our own write. Otherwise the master gave the assignment
      // back first (an earlier run's, which we were giving back too), and may have assigned it here again.
      if (afterLoss) this.#hooks.written(m);
      else this.#hooks.fenced(m, `task ${m.id} was given back to the queue already`, true);
    } else {
      this.#log.error(
        { task: m.id, move: m.kind, code: error.code, path },
        `could not ${m.kind} ${m.id}: ZooKeeper refused it (${error.code} on ${path}); its assignment stays in ` +
          `/assign/${this.#worker} until this worker goes and the master gives it back`,
      );
      this.#hooks.dropped(m);
    }
  }
}
