/**
 * The leading master's side of cancellation: it answers the requests under /cancel for tasks that no
 * worker holds, and cleans up the requests that are settled.
 *
 * Znodes: watches /cancel (a ChildrenCache); reads each requested task where it is (task-locator.ts
 * `whereIs`: /tasks, the backlog, any waiting place listed there) and its request's data; writes the
 * `cancel` move (moves.ts) through the leader's commit, so the leader's own view of the queue forgets
 * the task; deletes /cancel/<id> once the task has a status.
 *
 * Per request, by where its task is:
 * - waiting: one multi creates the `cancelled` status (`cancelledWhile: "queued"`) and deletes the task
 *   at the version read. If the task moved meanwhile (handed out, changed), the multi is refused and
 *   the next pass looks again.
 * - assigned: left to the worker holding it (worker-cancels.ts). If that worker dies the task comes
 *   back to /tasks and the next pass cancels it there.
 * - finished (its own status, or the cancelled one just written): the request is deleted; the status
 *   says which came first.
 * - nowhere: kept `unknownAfterMs` after it was first found nowhere (a task given back between two
 *   reads is found on a later pass), then deleted.
 * A pass runs when requests come and again every `everyMs` while any is unsettled.
 *
 * SUSPENDED: a pass that fails is retried after a backoff (PassLoop). LOST, or the term's end: the
 * loop stops with the term's signal, and the cache closes (with its session, or by `close()`).
 */
import { ChildrenCache } from '../recipes/children-cache.js';
import { PassLoop } from '../recipes/pass-loop.js';
import type { ZkClient } from '../zk/client.js';
import type { Logger } from '../zk/connect-options.js';
import { isZkError } from '../zk/errors.js';
import type { Session } from '../zk/session.js';
import { cancelPath, parseCancelRequest } from './cancel-request.js';
import { cancel, type Move } from './moves.js';
import { PATHS, parseTask, type Task } from './protocol.js';
import { whereIs } from './task-locator.js';

export interface CancelDeskOptions {
  /** A request whose task is found nowhere is dropped after this long (ms). @defaultValue 60000 */
  unknownAfterMs?: number;
  /** Between passes while requests are unsettled (ms). @defaultValue 2000 */
  everyMs?: number;
}

/** Requests looked at in one pass (the rest wait for the next one). */
const PER_PASS = 1000;
/** Requests read at once within a pass. */
const WINDOW = 32;

export class CancelDesk {
  readonly #client: ZkClient;
  readonly #session: Session;
  readonly #signal: AbortSignal;
  readonly #commit: (moves: Move[]) => Promise<void>;
  readonly #loop: PassLoop;
  readonly #unknownAfterMs: number;
  readonly #everyMs: number;
  /** id → when it was first found nowhere. */
  readonly #nowhere = new Map<string, number>();
  #cache: ChildrenCache | undefined;
  /** Requests cancelled (their status written) this term. */
  cancelled = 0;

  constructor(
    session: Session,
    signal: AbortSignal,
    commit: (moves: Move[]) => Promise<void>,
    log: Logger,
    options: CancelDeskOptions = {},
  ) {
    this.#session = session;
    this.#client = session.client;
    this.#signal = signal;
    this.#commit = commit;
    this.#unknownAfterMs = options.unknownAfterMs ?? 60_000;
    this.#everyMs = options.everyMs ?? 2000;
    this.#loop = new PassLoop(() => this.#pass(), { what: 'cancel pass', signal, log });
  }

  async start(): Promise<void> {
    await this.#client.ensurePath(PATHS.cancel);
    if (this.#signal.aborted) return;
    this.#cache = new ChildrenCache(this.#session, PATHS.cancel, (u) => {
      if (u.events.some((e) => e.type === 'added')) this.#loop.kick();
    });
  }

  /** The term ended (the leader calls it: one listener on the term's signal for all its parts). */
  close(): void {
    this.#cache?.close();
  }

  async #pass(): Promise<void> {
    const ids = [...(this.#cache?.children ?? [])].slice(0, PER_PASS);
    for (const id of this.#nowhere.keys()) if (!this.#cache?.has(id)) this.#nowhere.delete(id);
    const moves: Move[] = [];
    let unsettled = false;
    for (let i = 0; i < ids.length && !this.#signal.aborted; i += WINDOW) {
      const settled = await Promise.all(ids.slice(i, i + WINDOW).map((id) => this.#look(id, moves)));
      if (settled.includes(false)) unsettled = true;
    }
    if (moves.length > 0) {
      await this.#commit(moves);
      this.cancelled += moves.length;
      // Their requests are deleted by the pass that finds them finished: at once.
      this.#loop.kick();
    }
    if (unsettled || (this.#cache?.size ?? 0) > ids.length) this.#loop.wakeAt(Date.now() + this.#everyMs);
  }

  /** Act on one request; true when it is settled (deleted, or its cancel move is on its way). */
  async #look(id: string, moves: Move[]): Promise<boolean> {
    const place = await whereIs(this.#client, id);
    if (place.kind === 'finished') return this.#drop(id);
    if (place.kind === 'nowhere') {
      const first = this.#nowhere.get(id);
      if (first === undefined) this.#nowhere.set(id, Date.now());
      else if (Date.now() - first >= this.#unknownAfterMs) return this.#drop(id);
      return false;
    }
    this.#nowhere.delete(id);
    if (place.kind === 'assigned') return false; // its worker stops it (worker-cancels.ts)
    const request = await this.#client.getData(cancelPath(id)).catch((err: unknown) => {
      if (isZkError(err, 'NO_NODE')) return undefined;
      throw err;
    });
    if (!request) return true;
    const parsed = parseTask(place.data);
    // Data that is not a task is cancelled all the same; its status keeps nothing of it.
    const task: Task = parsed.ok ? parsed.task : ({} as Task);
    moves.push(
      cancel(id, task, parseCancelRequest(request.data), {
        from: place.path,
        version: place.version,
        while: 'queued',
      }),
    );
    return true;
  }

  async #drop(id: string): Promise<boolean> {
    this.#nowhere.delete(id);
    try {
      await this.#client.remove(cancelPath(id));
    } catch (err) {
      if (!isZkError(err, 'NO_NODE')) throw err;
    }
    return true;
  }
}
