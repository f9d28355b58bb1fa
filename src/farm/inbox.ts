/**
 * The leader's reading of the inbox, /tasks, for one term: it lists /tasks, reads the tasks it does not
 * know yet (oldest first, within the view's read-ahead bounds) and files each by queue and priority in
 * the queue view (queue-view.ts), or sorts it out (admission.ts): data that is not a task, or is too
 * large, or may not be read, gets a failed status; a task not due yet waits for its `notBefore`, or when
 * due beyond the due-time area's threshold is moved there (delayed-area.ts); a task that cannot be read
 * now is set aside and tried again later.
 *
 * Znodes: lists /tasks (with a child watch: a change marks the listing stale, see `list`), reads
 * /tasks/<id>; the moves it needs (rejections) go through the leader's `commit`.
 *
 * SUSPENDED: reads fail or wait; the leader's round goes again after a backoff.
 */
import { ErrorCodes } from '../errors.js';
import type { ZkClient } from '../zk/client.js';
import type { Logger } from '../zk/connect-options.js';
import type { ZkError } from '../zk/errors.js';
import type { ReadResult } from '../zk/multi-read.js';
import { admit } from './admission.js';
import type { DueLater } from './delayed-area.js';
import { type Move, reject } from './moves.js';
import { idNumber, isTaskId, PATHS, priorityOf, queueOf, taskIdOf, taskPath } from './protocol.js';
import { QueueView } from './queue-view.js';

export interface InboxHooks {
  /** /tasks changed, or a timer is due: run a round. */
  kick(): void;
  /** Look again at when to wake (a task was delayed or set aside). */
  wake(): void;
  /** Write moves (rejections of tasks that are not tasks). */
  commit(moves: Move[]): Promise<void>;
  /** A task was set aside for the first time. */
  setAside(): void;
  /** The due-time area (delayed-area.ts): tasks due beyond its threshold are moved there. */
  delays?: { readonly thresholdMs: number; delayMoves(tasks: readonly DueLater[]): Promise<Move[]> };
}

export class Inbox {
  readonly view = new QueueView();
  readonly #client: ZkClient;
  readonly #log: Logger;
  readonly #hooks: InboxHooks;
  /** /tasks changed since the last listing (its watch fired). */
  dirty = true;
  #lastListAt = 0;
  /** The highest sequence number of a task id listed so far (-1: none yet). */
  #highest = -1;
  /** How many ids the next early read guesses. */
  #guess = EARLY_MIN;
  /** Tasks the last listing's early read brought, by id, until the next read takes them. */
  readonly #early = new Map<string, Exclude<ReadResult, Error>>();

  constructor(client: ZkClient, log: Logger, hooks: InboxHooks) {
    this.#client = client;
    this.#log = log;
    this.#hooks = hooks;
  }

  /** The listing is stale and old enough to be taken again. */
  get listDue(): boolean {
    return this.dirty && Date.now() - this.#lastListAt > relistAfterMs(this.view.size);
  }

  /** Ms until a stale listing is due (undefined: it is not stale). */
  relistIn(now: number): number | undefined {
    return this.dirty ? this.#lastListAt + relistAfterMs(this.view.size) - now : undefined;
  }

  /**
   * List /tasks (and re-arm its watch). Lazily: when the watch fires the queue is only marked dirty,
   * and listed again when a round needs more tasks than it knows of, or when the listing is older than
   * `relistAfterMs` (a listing of 20,000 ids is 300 KB for ZooKeeper to write and the leader to read,
   * and the ids it adds are newer than those known, so they would wait their turn anyway).
   */
  async list(): Promise<void> {
    this.dirty = false;
    this.#lastListAt = Date.now();
    const mark = this.#client.requests;
    const listing = this.#client.getChildren(PATHS.tasks, () => {
      this.dirty = true;
      this.#hooks.kick();
    });
    const early = this.#readEarly();
    const children = await listing.catch((err: unknown) => {
      // No watch was set (e.g. /tasks deleted, to be made again): list again on the next round.
      this.dirty = true;
      throw err;
    });
    const added = this.view.listed(children, mark);
    this.#guess = Math.min(EARLY_MAX, Math.max(EARLY_MIN, 2 * added.length));
    // `added` is sorted, and task ids have one width: the last task id in it is the highest.
    for (let i = added.length - 1; i >= 0; i--)
      if (isTaskId(added[i]!)) {
        this.#highest = Math.max(this.#highest, idNumber(added[i]!));
        break;
      }
    const reads = await early.reads;
    this.#early.clear();
    for (let i = 0; i < reads.length; i++) {
      const r = reads[i]!;
      // Kept only for tasks the listing names, read without error: any other is read the usual way.
      if (!(r instanceof Error) && this.view.has(early.ids[i]!)) this.#early.set(early.ids[i]!, r);
    }
  }

  /**
   * With the listing, when the view holds no task (the leader has caught up): read the ids ZooKeeper
   * gives next (task ids are /tasks' sequence numbers), so that a task submitted to an idle farm is known
   * and read in one round trip instead of two. Sent right after the listing, so answered right after it.
   * A guess that does not exist yet costs ZooKeeper a lookup; the guess grows with the last listing's news.
   */
  #readEarly(): { ids: string[]; reads: Promise<ReadResult[]> } {
    const ids: string[] = [];
    if (this.view.size === 0 && this.#highest >= 0)
      for (let n = this.#highest + 1; ids.length < this.#guess && n <= MAX_TASK_SEQ; n++)
        ids.push(taskIdOf(n));
    if (ids.length === 0) return { ids, reads: Promise.resolve([]) };
    // A failed early read only means reading the usual way.
    return { ids, reads: this.#client.getDataMany(ids.map(taskPath)).catch(() => []) };
  }

  /** Read up to `batch` of the oldest unread tasks: file them by queue, or sort them out. */
  async readAhead(batch: number): Promise<boolean> {
    const ids = this.view.toRead(batch, Date.now());
    if (ids.length === 0) return false;
    this.view.begin(ids);
    try {
      const moves = await this.#read(ids);
      if (moves.length > 0) await this.#hooks.commit(moves);
    } finally {
      this.view.end(ids);
    }
    return true;
  }

  /** Pass the task over for `reason`, with a warning the first time; tried again after a backoff. */
  setAside(id: string, reason: string): void {
    const first = this.view.asideReason(id) === undefined;
    const aside = this.view.setAside(id, reason, Date.now());
    if (first && aside) {
      this.#hooks.setAside();
      this.#log.warn(
        { task: id, retryInMs: aside.retryAt - Date.now() },
        `task ${id} is set aside: ${reason}; the queue goes on without it, and it is tried again later`,
      );
    }
    this.#hooks.wake();
  }

  /** Read tasks in one round trip; sort out what cannot run or must wait (admission.ts). */
  async #read(ids: string[]): Promise<Move[]> {
    const reads = await this.#fetch(ids);
    const moves: Move[] = [];
    const later: DueLater[] = [];
    const now = Date.now();
    const farAfter = now + (this.#hooks.delays?.thresholdMs ?? Number.POSITIVE_INFINITY);
    for (let i = 0; i < reads.length; i++) {
      const id = ids[i]!;
      const r = reads[i]!;
      if (r instanceof Error) {
        const m = this.#unreadable(id, r);
        if (m) moves.push(m);
        continue;
      }
      const a = admit(r.data, r.stat.ctime, now);
      if (a.verdict === 'reject') moves.push(reject(id, a.failure, r.stat.version));
      else if (a.verdict === 'wait' && a.until > farAfter)
        later.push({ id, task: a.task, due: a.until, ctime: r.stat.ctime, version: r.stat.version });
      else if (a.verdict === 'wait') this.view.delay(id, a.until, a.queue);
      else {
        const { task, data, need } = a;
        const ready = {
          queue: queueOf(task),
          priority: priorityOf(task),
          need,
          data,
          version: r.stat.version,
        };
        this.view.ready(id, ready);
      }
    }
    if (later.length > 0) moves.push(...(await this.#hooks.delays!.delayMoves(later)));
    this.#hooks.wake();
    return moves;
  }

  /** The tasks' data: what the listing's early read brought (`#readEarly`), the rest in one round trip. */
  async #fetch(ids: string[]): Promise<ReadResult[]> {
    const early = this.#early;
    if (early.size === 0) return this.#client.getDataMany(ids.map(taskPath));
    const out: ReadResult[] = new Array(ids.length);
    const rest: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const r = early.get(ids[i]!);
      if (r === undefined) rest.push(i);
      else out[i] = r;
    }
    early.clear(); // read once: data kept longer could be stale
    if (rest.length > 0) {
      const reads = await this.#client.getDataMany(rest.map((i) => taskPath(ids[i]!)));
      for (let j = 0; j < rest.length; j++) out[rest[j]!] = reads[j]!;
    }
    return out;
  }

  /** A task that could not be read: gone, not ours to read (a failed status says so), or try later. */
  #unreadable(id: string, err: ZkError): Move | undefined {
    if (err.code === 'NO_NODE') {
      this.view.moved(id);
      return undefined;
    }
    if (err.code === 'NO_AUTH') {
      const error =
        `the farm may not read ${taskPath(id)}: its ACL does not give the farm's identity read permission ` +
        '(NO_AUTH); create the task with an ACL the farm can read (or none) and submit it again';
      return reject(id, { error, errorCode: ErrorCodes.TASK_UNREADABLE });
    }
    if (err.transient) throw err;
    this.setAside(id, `it cannot be read (${err.code})`);
    return undefined;
  }
}

/** Ids an early read guesses: at least a few (an idle farm's next task), at most a multiRead's worth. */
const EARLY_MIN = 4;
const EARLY_MAX = 64;
/** ZooKeeper's sequence numbers are signed 32-bit. */
const MAX_TASK_SEQ = 2_147_483_647;

/** How old a listing of /tasks may get while `known` queued tasks are known: 200 ms, up to 2 s. */
function relistAfterMs(known: number): number {
  return Math.min(2000, Math.max(200, known / 10));
}
