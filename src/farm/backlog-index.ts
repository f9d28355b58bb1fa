/**
 * The leader's index of the deep-queue backlog (`/queues/<queue>/p<priority>/<bucket>/<id>`): pure
 * bookkeeping, no I/O, unit-tested alone. backlog.ts does the reading and writing.
 *
 * A lane is one priority of one queue. Per lane the leader holds:
 * - its buckets (statusBucket's rule: the six leading digits of the id) and how many tasks each holds:
 *   one entry per 10,000 ids (100 for a million tasks), counted once at the start of a term (a stat per
 *   bucket) and kept by the leader's own moves, since the leader is the backlog's only writer;
 * - at most one bucket listing (at most 10,000 ids), read in id order: `next` ids of it are loaded (read
 *   into the queue view), the rest are not yet.
 *
 * Order: the lowest id not loaded yet is the lane's `frontier`. Every backlog id below it is loaded, so
 * a task of the lane read from the inbox with a lower id may go, and one with a higher id waits: FIFO
 * within a priority holds across inbox and backlog. A task shelved into the listed bucket (or a lower
 * one: a retried task keeps its old id) is put in the listing at once, or the listing is dropped, so the
 * frontier never passes an id that is in the backlog and not loaded.
 */
import { OTHER_BUCKET, statusBucket } from './protocol.js';
import type { BacklogLane, QueueWait, ReadyTask, WhyWaiting } from './queue-view.js';
import { MAX_PRIORITY } from './queues.js';
import { byBucket } from './status-store.js';

interface Listing {
  bucket: string;
  /** The bucket's ids, sorted from `next` on. */
  ids: string[];
  /** Ids before it are loaded (or gone). */
  next: number;
}

interface Lane {
  /** Bucket → tasks in it. */
  buckets: Map<string, number>;
  /** The bucket names in order (undefined: sort again). */
  order: string[] | undefined;
  listing: Listing | undefined;
}

/** One lane's place, for the leader's loops. */
export interface LaneKey {
  queue: string;
  priority: number;
}

export class BacklogIndex {
  readonly #lanes = new Map<string, Array<Lane | undefined>>();

  /** A bucket found at the start of a term, with its child count. */
  known(queue: string, priority: number, bucket: string, tasks: number): void {
    const lane = this.#lane(queue, priority, true)!;
    lane.buckets.set(bucket, tasks);
    lane.order = undefined;
  }

  /** The bucket exists (made or found): a task may be shelved into it. */
  hasBucket(queue: string, priority: number, bucket: string): boolean {
    return this.#lane(queue, priority)?.buckets.has(bucket) ?? false;
  }

  /** A task was shelved (its multi answered). */
  added(queue: string, priority: number, id: string): void {
    const lane = this.#lane(queue, priority, true)!;
    const bucket = statusBucket(id);
    if (!lane.buckets.has(bucket)) lane.order = undefined;
    lane.buckets.set(bucket, (lane.buckets.get(bucket) ?? 0) + 1);
    const l = lane.listing;
    if (l === undefined) return;
    if (bucket === l.bucket) insertFrom(l, id);
    // A lower bucket than the one listed: the frontier must not pass it; list again from the lowest.
    else if (byBucket(bucket, l.bucket) < 0) lane.listing = undefined;
  }

  /**
   * A backlog task left its node (handed out, or gone). Returns its bucket when the bucket is now empty
   * and no longer listed: the caller removes its node.
   */
  removed(queue: string, priority: number, id: string): string | undefined {
    const lane = this.#lane(queue, priority);
    if (!lane) return undefined;
    const bucket = statusBucket(id);
    const n = (lane.buckets.get(bucket) ?? 1) - 1;
    if (n > 0) {
      lane.buckets.set(bucket, n);
      return undefined;
    }
    const l = lane.listing;
    if (l !== undefined && l.bucket === bucket && l.next < l.ids.length) {
      lane.buckets.set(bucket, 0);
      return undefined;
    }
    this.forgetBucket(queue, priority, bucket);
    return bucket;
  }

  /** The bucket is gone (removed, or found missing). */
  forgetBucket(queue: string, priority: number, bucket: string): void {
    const lane = this.#lane(queue, priority);
    if (!lane) return;
    lane.buckets.delete(bucket);
    lane.order = undefined;
    if (lane.listing?.bucket === bucket) lane.listing = undefined;
    if (lane.buckets.size === 0) this.#lanes.get(queue)![priority] = undefined;
  }

  /** The lowest id of the lane not loaded yet (undefined: none, or only foreign names in `other`). */
  frontier(queue: string, priority: number): string | undefined {
    const lane = this.#lane(queue, priority);
    if (!lane || lane.buckets.size === 0) return undefined;
    const l = lane.listing;
    if (l !== undefined && l.next < l.ids.length) return l.ids[l.next];
    const next = this.#nextBucket(lane);
    if (next === undefined || next === OTHER_BUCKET) return undefined;
    return `task-${next}0000`;
  }

  /** The bucket to list next (the listing is used up or missing), if the lane has one. */
  toList(queue: string, priority: number): string | undefined {
    const lane = this.#lane(queue, priority);
    if (!lane) return undefined;
    const l = lane.listing;
    if (l !== undefined && l.next < l.ids.length) return undefined;
    return this.#nextBucket(lane);
  }

  /** A bucket's listing: its ids are loaded from here on, in order. */
  listed(queue: string, priority: number, bucket: string, ids: string[]): void {
    const lane = this.#lane(queue, priority);
    if (!lane?.buckets.has(bucket)) return;
    lane.listing = { bucket, ids: ids.slice().sort(), next: 0 };
    if (ids.length === 0 && (lane.buckets.get(bucket) ?? 0) > 0) lane.buckets.set(bucket, 0);
  }

  /** Up to `n` ids of the listing to load now, in order, passing over those `skip` says are loaded. */
  toLoad(queue: string, priority: number, n: number, skip: (id: string) => boolean): string[] {
    const l = this.#lane(queue, priority)?.listing;
    const out: string[] = [];
    while (l !== undefined && l.next < l.ids.length && out.length < n) {
      const id = l.ids[l.next++]!;
      if (!skip(id)) out.push(id);
    }
    return out;
  }

  /** Put ids back (they could not be read now): they are loaded again next time. */
  unload(queue: string, priority: number, ids: readonly string[]): void {
    const l = this.#lane(queue, priority)?.listing;
    if (!l) return;
    for (const id of ids) insertFrom(l, id);
  }

  /** Every lane with a backlog. */
  *lanes(): Iterable<LaneKey & { tasks: number }> {
    for (const [queue, lanes] of this.#lanes)
      for (let p = MAX_PRIORITY; p >= 0; p--) {
        const lane = lanes[p];
        if (!lane) continue;
        let tasks = 0;
        for (const n of lane.buckets.values()) tasks += n;
        yield { queue, priority: p, tasks };
      }
  }

  /** Buckets empty and not listed (found so at the start of a term): to remove. */
  emptyBuckets(): Array<LaneKey & { bucket: string }> {
    const out: Array<LaneKey & { bucket: string }> = [];
    for (const [queue, lanes] of this.#lanes)
      lanes.forEach((lane, priority) => {
        if (!lane) return;
        for (const [bucket, n] of lane.buckets)
          if (n === 0 && lane.listing?.bucket !== bucket) out.push({ queue, priority, bucket });
      });
    return out;
  }

  #nextBucket(lane: Lane): string | undefined {
    lane.order ??= [...lane.buckets.keys()].sort(byBucket);
    const after = lane.listing?.bucket;
    for (const b of lane.order) if (after === undefined || byBucket(b, after) > 0) return b;
    return undefined;
  }

  #lane(queue: string, priority: number, make = false): Lane | undefined {
    let lanes = this.#lanes.get(queue);
    if (!lanes) {
      if (!make) return undefined;
      lanes = [];
      this.#lanes.set(queue, lanes);
    }
    let lane = lanes[priority];
    if (!lane && make) {
      lane = { buckets: new Map(), order: undefined, listing: undefined };
      lanes[priority] = lane;
    }
    return lane;
  }
}

/** Insert an id into a listing's part not loaded yet, keeping it sorted (an id below it goes first). */
function insertFrom(l: Listing, id: string): void {
  let lo = l.next;
  let hi = l.ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (l.ids[mid]! < id) lo = mid + 1;
    else hi = mid;
  }
  l.ids.splice(lo, 0, id);
}

/** For the view's summary: backlog tasks not loaded are waiting, by priority, held back by their queue's reason if it has one. */
export function backlogSummary(
  ready: Iterable<ReadyTask>,
  backlog: Iterable<BacklogLane>,
  waitOf: (queue: string) => QueueWait,
  why: WhyWaiting,
): void {
  const loaded = new Map<string, number>();
  for (const t of ready)
    if (t.from !== undefined) {
      const key = `${t.queue}\n${t.priority}`;
      loaded.set(key, (loaded.get(key) ?? 0) + 1);
    }
  for (const { queue, priority, tasks } of backlog) {
    const w = waitOf(queue);
    w.backlog = (w.backlog ?? 0) + tasks;
    const n = Math.max(0, tasks - (loaded.get(`${queue}\n${priority}`) ?? 0));
    if (n === 0) continue;
    w.waiting += n;
    w.byPriority[priority] = (w.byPriority[priority] ?? 0) + n;
    const r = why(queue, '');
    if (r === undefined || r.byNeed) continue;
    const b = w.blocked.find((x) => x.reason === r.reason && x.needs === undefined);
    if (b) b.tasks += n;
    else w.blocked.push({ reason: r.reason, tasks: n });
  }
}

/** Tasks in the deep-queue backlog as a leader's summary counts them (0 without one). */
export function backlogTotal(summary: { queues?: Array<{ backlog?: number }> } | undefined): number {
  let n = 0;
  for (const q of summary?.queues ?? []) n += q.backlog ?? 0;
  return n;
}
