/**
 * A worker's intake: the assignments its ChildrenCache reports on /assign/<worker>, read and checked.
 *
 * Znodes: reads /assign/<worker>/<id> (a burst in one multiRead) and, for a task that ran before,
 * checks /status/<bucket>/<id> (and the flat /status/<id> of a farm not yet upgraded).
 *
 * What becomes of an assignment:
 * - gone before it was read, or gone while held and not started: let go (the master gave it back or
 *   moved it); one that is running or completing is kept (its completion is fenced, or was our own);
 * - data that is not a task: failed (moves.fail);
 * - made before this session registered (`registeredZxid`) and not held by this process: it belongs to
 *   an earlier run under our name that died: back to the queue with the loss counted (moves.afterLoss);
 * - ran before (attempts > 0, or lost with a worker) and has its result: discarded (moves.discard);
 * - otherwise: queued, to run when a slot is free.
 * After a listing (the first, or after a reconnection) every child not held is new to us, even one
 * whose name we saw before (it may have been deleted and created again meanwhile).
 *
 * SUSPENDED: a read that fails is tried again after a backoff (src/backoff.ts) while the session lives.
 * LOST: reads stop; the next session's cache lists the assignments again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffDelay } from '../backoff.js';
import { describeError, ErrorCodes } from '../errors.js';
import type { ChildrenUpdate } from '../recipes/children-cache.js';
import type { Logger } from '../zk/connect-options.js';
import type { Session } from '../zk/session.js';
import type { Held, HeldTasks } from './held-tasks.js';
import { afterLoss, discard, fail, type Move } from './moves.js';
import { assignPath, parseTask, taskMeta } from './protocol.js';
import { hasResult } from './status-store.js';

export interface IntakeHooks {
  /** The task will not run here: its move goes to the completion queue. */
  end(h: Held, move: Move): void;
  /** A burst of assignments was read: start what fits (or give it back when paused). */
  read(): void;
}

const READ_RETRY = { initialMs: 250, maxMs: 5000 };

export class Intake {
  readonly #worker: string;
  readonly #held: HeldTasks;
  readonly #hooks: IntakeHooks;
  readonly #log: Logger;

  constructor(worker: string, held: HeldTasks, hooks: IntakeHooks, log: Logger) {
    this.#worker = worker;
    this.#held = held;
    this.#hooks = hooks;
    this.#log = log;
  }

  /** What the cache reports: assignments gone are let go unless started; new ones are read. */
  update(session: Session, registeredZxid: bigint, u: ChildrenUpdate): void {
    const fresh = new Set<string>();
    for (const e of u.events) {
      if (e.type === 'added') fresh.add(e.name);
      else {
        fresh.delete(e.name);
        this.#held.removed(e.name);
      }
    }
    if (u.listed) for (const id of u.children) if (!this.#held.has(id)) fresh.add(id);
    if (fresh.size > 0) void this.take(session, [...fresh], registeredZxid);
  }

  /**
   * Read assignments (one multiRead), check them, queue them. `stale`: the czxid of an assignment this
   * worker could not move (its task is queued too); found again, it is left where it is.
   */
  async take(
    session: Session,
    ids: string[],
    registeredZxid: bigint,
    attempt = 0,
    stale?: bigint,
  ): Promise<void> {
    const mine = this.#held.reserve(ids, session.id);
    if (mine.length === 0) return;
    let reads: Awaited<ReturnType<typeof session.client.getDataMany>>;
    try {
      reads = await session.client.getDataMany(mine.map((h) => assignPath(this.#worker, h.id)));
    } catch (err) {
      for (const h of mine) this.#held.release(h.id, h);
      return this.#retry(
        session,
        mine.map((h) => h.id),
        registeredZxid,
        err,
        attempt,
      );
    }
    const checks: Array<Promise<void>> = [];
    for (let i = 0; i < reads.length; i++) {
      const h = mine[i]!;
      const r = reads[i]!;
      if (!this.#held.current(h)) continue; // its assignment went while we read it
      if (r instanceof Error) {
        this.#held.release(h.id, h);
        if (r.code !== 'NO_NODE') void this.#retry(session, [h.id], registeredZxid, r, attempt);
        continue;
      }
      if (r.stat.czxid === stale) {
        this.#stranded(h);
        continue;
      }
      const parsed = parseTask(r.data);
      if (!parsed.ok) {
        const why = { error: parsed.error, errorCode: ErrorCodes.INVALID_TASK, attempts: 1 };
        this.#hooks.end(h, fail(h.id, this.#worker, why));
        continue;
      }
      h.task = parsed.task;
      h.version = r.stat.version;
      h.czxid = r.stat.czxid;
      const meta = taskMeta(parsed.task);
      if (r.stat.czxid < registeredZxid) this.#inherited(h);
      else if (meta.attempts > 0 || meta.lostOn?.length) checks.push(this.#unlessFinished(session, h));
      else h.state = 'queued';
    }
    await Promise.all(checks);
    this.#hooks.read();
  }

  /** Assignments we could not read (connection trouble): read them again after a backoff. */
  async #retry(session: Session, ids: string[], zxid: bigint, err: unknown, attempt: number): Promise<void> {
    if (!session.alive) return; // the next session lists them again
    this.#log.warn(
      { err, tasks: ids.length },
      `reading ${ids.length} assignments failed: ${describeError(err)}; retrying`,
    );
    await sleep(backoffDelay(READ_RETRY, attempt), undefined, { signal: session.signal }).catch(() => {});
    if (session.alive) await this.take(session, ids, zxid, attempt + 1);
  }

  /** A task that ran before: run it only if it has no result yet. */
  async #unlessFinished(session: Session, h: Held): Promise<void> {
    let done: boolean;
    try {
      done = await hasResult(session.client, h.id);
    } catch (err) {
      this.#held.release(h.id, h);
      return this.#retry(session, [h.id], 0n, err, 0);
    }
    if (!this.#held.current(h)) return;
    if (!done) {
      h.state = 'queued';
      return;
    }
    this.#log.info({ task: h.id }, 'task already has a status; dropping the duplicate assignment');
    this.#hooks.end(h, discard(h.id, this.#worker));
  }

  /** The assignment of a task that is also queued: neither runs it here nor loops on moving it. */
  #stranded(h: Held): void {
    this.#held.release(h.id, h);
    this.#log.error(
      { task: h.id },
      `task ${h.id} is both queued in /tasks and assigned in ${assignPath(this.#worker, h.id)}; the ` +
        'queued copy runs, and the assignment stays until this worker goes and the master gives it back',
    );
  }

  /** An assignment of an earlier run under our name: back to the queue, the loss counted. */
  #inherited(h: Held): void {
    const move = afterLoss(h.id, this.#worker, h.task, h.version);
    this.#log.warn(
      { task: h.id },
      `task ${h.id} was assigned to an earlier run of ${this.#worker} that ended without finishing it; ` +
        (move.kind === 'fail' ? 'it was lost too often: failing it' : 'giving it back to the queue'),
    );
    this.#hooks.end(h, move);
  }
}
