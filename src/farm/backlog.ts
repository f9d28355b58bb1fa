/**
 * The deep-queue backlog, for one leader term: tasks the leader has read from a deep inbox but cannot
 * hand out now wait in `/queues/<queue>/p<priority>/<bucket>/<id>` (same data, statusBucket's rule), so
 * that /tasks stays shallow (its listing small, other queues' submitters not held back) and the leader's
 * memory bounded; they are handed out from there as from the inbox. The bookkeeping is backlog-index.ts.
 *
 * Znodes: lists /queues, /queues/<q> and /queues/<q>/p<p> and stats each bucket once per term; creates
 * /queues/<q>/p<p>/<bucket> (ahead of a shelve, idempotently); lists one bucket per lane at a time and
 * reads its tasks (multiReads); removes a bucket once empty. The moves (moves.ts `shelve`, and `assign`
 * or `reject` from a backlog node) go through the leader's commit (one MultiBatcher): each is one multi
 * item, so a leader change at any instant leaves every task in exactly one place, and the next leader
 * finds the backlog by listing it.
 *
 * Memory per lane: its buckets (one entry per 10,000 ids) and at most one bucket listing (at most 10,000
 * ids); the tasks loaded share the queue view's read-ahead (queue-view.ts).
 *
 * SUSPENDED: reads and creates fail; the leader's round goes again after a backoff. LOST, or the term's
 * end: the leader stops; nothing here outlives the term.
 */
import { describeError } from '../errors.js';
import type { ZkClient } from '../zk/client.js';
import type { Logger } from '../zk/connect-options.js';
import { isZkError, type ZkError } from '../zk/errors.js';
import { admit } from './admission.js';
import { BacklogIndex } from './backlog-index.js';
import { type Move, reject, shelve } from './moves.js';
import {
  backlogBucketPath,
  backlogLanePath,
  backlogPath,
  isStatusBucket,
  lanePriority,
  PATHS,
  queuePath,
  statusBucket,
} from './protocol.js';
import type { QueueView, ReadyTask } from './queue-view.js';

/** Tasks of a held-back queue go into the backlog once /tasks holds more than this. */
export const SHELVE_HELD_AFTER = 1000;
/** Every task read and not handed out goes into the backlog once /tasks holds more than this. */
export const SHELVE_ALL_AFTER = 20_000;
/** Most tasks loaded from one lane per round. */
const LOAD_PER_LANE = 1000;
/** Requests in flight while the backlog is found at the start of a term. */
const SCAN_WINDOW = 200;

export class Backlog {
  readonly index = new BacklogIndex();
  readonly #client: ZkClient;
  readonly #view: QueueView;
  readonly #log: Logger;
  readonly #commit: (moves: Move[]) => Promise<void>;

  constructor(client: ZkClient, view: QueueView, log: Logger, commit: (moves: Move[]) => Promise<void>) {
    this.#client = client;
    this.#view = view;
    this.#log = log;
    this.#commit = commit;
  }

  /** Find the backlog a former term left: every lane's buckets and their sizes. */
  async start(): Promise<void> {
    const queues = await this.#children(PATHS.queues);
    const lanes: Array<{ queue: string; priority: number }> = [];
    for (const [i, names] of (await inWindows(queues, (q) => this.#children(queuePath(q)))).entries())
      for (const name of names) {
        const priority = lanePriority(name);
        if (priority !== undefined) lanes.push({ queue: queues[i]!, priority });
      }
    const buckets = await inWindows(lanes, (l) => this.#children(backlogLanePath(l.queue, l.priority)));
    const found = lanes.flatMap((l, i) =>
      buckets[i]!.filter(isStatusBucket).map((bucket) => ({ ...l, bucket })),
    );
    const stats = await inWindows(found, (b) =>
      this.#client.exists(backlogBucketPath(b.queue, b.priority, b.bucket)),
    );
    let tasks = 0;
    found.forEach((b, i) => {
      const s = stats[i];
      if (!s) return;
      this.index.known(b.queue, b.priority, b.bucket, s.numChildren);
      tasks += s.numChildren;
    });
    for (const e of this.index.emptyBuckets()) this.#removeBucket(e.queue, e.priority, e.bucket);
    if (tasks > 0) this.#log.info({ tasks, buckets: found.length }, `the backlog holds ${tasks} tasks`);
  }

  /**
   * Load tasks of the lanes whose queue `may` go now into the view, in id order (a bucket listed when
   * the lane needs it), within the view's room. True when it loaded or listed anything.
   */
  async load(may: (queue: string) => boolean): Promise<boolean> {
    let worked = false;
    for (const { queue, priority } of [...this.index.lanes()]) {
      if (this.#view.loadRoom === 0) break;
      if (!may(queue)) continue;
      const bucket = this.index.toList(queue, priority);
      if (bucket !== undefined) {
        worked = true;
        await this.#list(queue, priority, bucket);
      }
      const n = Math.min(this.#view.loadRoom, LOAD_PER_LANE);
      const ids = this.index.toLoad(queue, priority, n, (id) => this.#view.holds(id));
      if (ids.length === 0) continue;
      worked = true;
      await this.#read(queue, priority, ids);
    }
    return worked;
  }

  /**
   * Tasks read from the inbox and not handed out that go into the backlog now: every one when /tasks is
   * deep (past SHELVE_ALL_AFTER), those of queues held back (`held`: paused, unserved, at their rate
   * limit or cap) when it is not shallow (past SHELVE_HELD_AFTER). A shallow inbox keeps its tasks: a
   * round trip more per task buys nothing there.
   */
  toShelve(held: (queue: string) => boolean): Array<[string, ReadyTask]> {
    const depth = this.#view.size;
    if (depth <= SHELVE_HELD_AFTER) return [];
    const heldQueues = new Map<string, boolean>();
    // The common case, a busy farm whose queues all flow: nothing to walk.
    if (depth <= SHELVE_ALL_AFTER && ![...this.#view.queues()].some((q) => held(q))) return [];
    const out: Array<[string, ReadyTask]> = [];
    for (const e of this.#view.inboxReady()) {
      const q = e[1].queue;
      let h = heldQueues.get(q);
      if (h === undefined) {
        h = depth > SHELVE_ALL_AFTER || held(q);
        heldQueues.set(q, h);
      }
      if (h) out.push(e);
    }
    return out;
  }

  /** Moves that put these tasks (read from the inbox) into their lanes' backlog, their buckets made. */
  async shelve(tasks: Array<[string, ReadyTask]>): Promise<Move[]> {
    const missing = new Map<string, { queue: string; priority: number; bucket: string }>();
    for (const [id, t] of tasks) {
      const bucket = statusBucket(id);
      if (!this.index.hasBucket(t.queue, t.priority, bucket))
        missing.set(backlogBucketPath(t.queue, t.priority, bucket), {
          queue: t.queue,
          priority: t.priority,
          bucket,
        });
    }
    await Promise.all([...missing.keys()].map((p) => this.#client.ensurePath(p)));
    for (const b of missing.values()) this.index.known(b.queue, b.priority, b.bucket, 0);
    return tasks.map(([id, t]) => shelve(id, backlogPath(t.queue, t.priority, id), t.data, t.version));
  }

  /** A move was written: a task entered or left the backlog. */
  written(m: Move): void {
    if (m.kind === 'shelve') {
      const lane = laneOf(m.to!);
      if (lane) this.index.added(lane.queue, lane.priority, m.id);
    } else if (m.from !== undefined) this.#left(m.from, m.id);
  }

  /** A move ZooKeeper refused, as far as the backlog is concerned (the leader sorts out the rest). */
  refused(m: Move, error: ZkError): void {
    if (m.kind === 'shelve' && m.to !== undefined && error.code === 'NO_NODE' && error.path === m.to) {
      const lane = laneOf(m.to);
      if (lane) this.index.forgetBucket(lane.queue, lane.priority, statusBucket(m.id));
      return;
    }
    if (m.from === undefined) return;
    if (error.code === 'NO_NODE' && error.path === m.from) {
      this.#left(m.from, m.id);
      return;
    }
    // Still in its node: loaded again unless the view keeps it (set aside, to be tried later).
    const lane = laneOf(m.from);
    if (lane && this.#view.get(m.id) === undefined) this.index.unload(lane.queue, lane.priority, [m.id]);
  }

  #left(from: string, id: string): void {
    const lane = laneOf(from);
    if (!lane) return;
    const empty = this.index.removed(lane.queue, lane.priority, id);
    if (empty !== undefined) this.#removeBucket(lane.queue, lane.priority, empty);
  }

  async #list(queue: string, priority: number, bucket: string): Promise<void> {
    try {
      const ids = await this.#client.getChildren(backlogBucketPath(queue, priority, bucket));
      this.index.listed(queue, priority, bucket, ids);
      if (ids.length > 0) return;
      this.index.forgetBucket(queue, priority, bucket);
      this.#removeBucket(queue, priority, bucket);
    } catch (err) {
      if (!isZkError(err, 'NO_NODE')) throw err;
      this.index.forgetBucket(queue, priority, bucket);
    }
  }

  /** Read loaded ids (one round trip) into the view; a task that is no longer a task is rejected. */
  async #read(queue: string, priority: number, ids: string[]): Promise<void> {
    const paths = ids.map((id) => backlogPath(queue, priority, id));
    let reads: Awaited<ReturnType<ZkClient['getDataMany']>>;
    try {
      reads = await this.#client.getDataMany(paths);
    } catch (err) {
      this.index.unload(queue, priority, ids);
      throw err;
    }
    const moves: Move[] = [];
    const now = Date.now();
    reads.forEach((r, i) => {
      const id = ids[i]!;
      const from = paths[i]!;
      if (r instanceof Error) {
        if (r.code === 'NO_NODE') this.#left(from, id);
        else {
          this.#log.warn(
            { task: id, err: r },
            `reading ${from} failed: ${describeError(r)}; tried again later`,
          );
          this.index.unload(queue, priority, [id]);
        }
        return;
      }
      const a = admit(r.data, r.stat.ctime, now);
      if (a.verdict === 'reject') moves.push(reject(id, a.failure, r.stat.version, from));
      else {
        // Only tasks that were due were shelved: one read back is due still.
        const data = a.verdict === 'run' ? a.data : r.data;
        this.#view.load(id, { queue, priority, need: a.need, data, version: r.stat.version, from });
      }
    });
    if (moves.length > 0) await this.#commit(moves);
  }

  /** Remove an empty bucket; one that is not empty after all is counted again. */
  #removeBucket(queue: string, priority: number, bucket: string): void {
    const path = backlogBucketPath(queue, priority, bucket);
    this.#client.remove(path).catch(async (err: unknown) => {
      if (!isZkError(err, 'NOT_EMPTY')) return; // gone already, or the session ended: the next term looks
      const s = await this.#client.exists(path).catch(() => null);
      if (s) this.index.known(queue, priority, bucket, s.numChildren);
    });
  }

  async #children(path: string): Promise<string[]> {
    try {
      return await this.#client.getChildren(path);
    } catch (err) {
      if (isZkError(err, 'NO_NODE')) return [];
      throw err;
    }
  }
}

/** The lane of a backlog path (`/queues/<q>/p<p>/<bucket>/<id>`, or a bucket's path). */
function laneOf(path: string): { queue: string; priority: number } | undefined {
  const parts = path.split('/');
  const priority = lanePriority(parts[3] ?? '');
  if (parts[1] !== PATHS.queues.slice(1) || priority === undefined) return undefined;
  return { queue: parts[2]!, priority };
}

/** Run `fn` over `items`, SCAN_WINDOW at a time; the answers in order. */
async function inWindows<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += SCAN_WINDOW)
    out.push(...(await Promise.all(items.slice(i, i + SCAN_WINDOW).map(fn))));
  return out;
}
