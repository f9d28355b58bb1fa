/**
 * A worker's side of cancellation: the requests under /cancel for the tasks it holds.
 *
 * Znodes: watches /cancel (a ChildrenCache per session); reads /cancel/<id> (who asked, why) for a task
 * it holds; deletes it once the task's `cancelled` status is written (the leading master deletes the
 * requests of tasks that finished first: cancel-desk.ts).
 *
 * What the worker does with a request (worker.ts):
 * - a task held but not started (being read, or prefetched): it never starts; its assignment ends
 *   with the `cancel` move (`cancelledWhile: "assigned"`).
 * - a running task: stopped as a timeout stops it (Executor.stop: a shell command's process group, a
 *   handler's `context.signal`, a pool task's thread); its outcome carries ZKFARM_TASK_CANCELLED, and
 *   it ends with the `cancel` move (`cancelledWhile: "running"`).
 * - a task whose run ended first: its outcome is recorded as it is; the request only finds it finished.
 * The move deletes the assignment in the same multi as it creates the status, so a cancel that races
 * the task's completion ends with one status, the first written.
 *
 * SUSPENDED: the cache lists again on the resumed connection (requests made meanwhile are delivered).
 * LOST: the cache closes with its session; the next session's cache lists /cancel anew.
 */
import { ErrorCodes } from '../errors.js';
import { TaskFailure } from '../exec/failure.js';
import type { ExecOutcome } from '../exec/index.js';
import { ChildrenCache } from '../recipes/children-cache.js';
import type { Logger } from '../zk/connect-options.js';
import { isZkError } from '../zk/errors.js';
import type { Session } from '../zk/session.js';
import { type CancelledWhile, type CancelRequest, cancelPath, parseCancelRequest } from './cancel-request.js';
import type { Held } from './held-tasks.js';
import { cancel, type Move } from './moves.js';
import { assignPath, PATHS } from './protocol.js';

/** The abort reason of a cancelled run: its outcome's errorCode says it was cancelled. */
export function cancelReason(): TaskFailure {
  return new TaskFailure(ErrorCodes.TASK_CANCELLED, 'the task was cancelled on request', {
    retryable: false,
  });
}

/** What of the worker a cancel acts on. */
export interface CancelPortsOfWorker {
  held(id: string): Held | undefined;
  /** Stop a running task (Executor.stop). */
  stop(id: string, reason: unknown): void;
  /** Queue the move that ends a held task (it is `completing` by then), and start what may start. */
  end(h: Held, move: Move): void;
}

export class WorkerCancels {
  readonly #worker: string;
  readonly #ports: CancelPortsOfWorker;
  readonly #log: Logger;
  #cache: ChildrenCache | undefined;
  #session: Session | undefined;

  constructor(worker: string, ports: CancelPortsOfWorker, log: Logger) {
    this.#worker = worker;
    this.#ports = ports;
    this.#log = log;
  }

  watch(session: Session): void {
    if (this.#cache?.closed === false) this.#cache.close();
    this.#session = session;
    this.#cache = new ChildrenCache(session, PATHS.cancel, (u) => {
      // After a listing, every child: one deleted and made again while disconnected is new to us too.
      const ids = u.listed ? [...u.children] : u.events.filter((e) => e.type === 'added').map((e) => e.name);
      for (const id of ids) this.#requested(id);
    });
  }

  /** A request for a task held here: one not started ends at once, a running one is stopped. */
  #requested(id: string): void {
    const h = this.#ports.held(id);
    if (h?.state === 'queued') this.#endCancelled(h, 'assigned');
    else if (h?.state === 'running') this.#ports.stop(id, cancelReason());
  }

  /** Before a held task starts: true when it was asked to cancel (it ends now instead). */
  endIfRequested(h: Held): boolean {
    if (!this.requested(h.id)) return false;
    this.#endCancelled(h, 'assigned');
    return true;
  }

  /** After a run: true when it was stopped by a cancel (it ends cancelled); else its outcome stands. */
  endIfCancelled(h: Held, outcome: ExecOutcome): boolean {
    if (outcome.errorCode !== ErrorCodes.TASK_CANCELLED) return false;
    this.#endCancelled(h, 'running', outcome.startedAt);
    return true;
  }

  #endCancelled(h: Held, state: CancelledWhile, startedAt?: number): void {
    h.state = 'completing';
    void this.#moveFor(h, state, startedAt).then((m) => this.#ports.end(h, m));
  }

  /** A cancel of this task has been requested (as far as this session's cache knows). */
  requested(id: string): boolean {
    return this.#cache?.has(id) === true;
  }

  /** The move that ends a held task as cancelled (its request read for who and why). */
  async #moveFor(h: Held, state: CancelledWhile, startedAt?: number): Promise<Move> {
    const request = await this.#request(h.id);
    return cancel(h.id, h.task, request, {
      from: assignPath(this.#worker, h.id),
      // As `complete` does after a run (the assignment's delete fences a task that moved on); a task
      // not started is taken at the version read, as a give-back takes it.
      version: state === 'running' ? -1 : h.version,
      while: state,
      worker: this.#worker,
      startedAt: startedAt ?? null,
    });
  }

  /** The task's cancelled status is written: its request is settled. */
  settled(id: string): void {
    this.#session?.client.remove(cancelPath(id)).catch((err: unknown) => {
      // The leading master deletes it on its next pass (cancel-desk.ts).
      if (!isZkError(err, 'NO_NODE'))
        this.#log.debug({ err, task: id }, 'cancel request left for the master');
    });
  }

  close(): void {
    this.#cache?.close();
  }

  async #request(id: string): Promise<CancelRequest> {
    try {
      const got = await this.#session?.client.getData(cancelPath(id));
      return got ? parseCancelRequest(got.data) : {};
    } catch (err) {
      // Who and why are for people; the task is cancelled all the same.
      this.#log.debug({ err, task: id }, 'cancel request not readable; cancelling without who and why');
      return {};
    }
  }
}
