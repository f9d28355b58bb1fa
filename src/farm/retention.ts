/**
 * Status retention: results do not pile up for ever.
 *
 * The leading master sweeps /status every `intervalMs`: it removes the results that finished first
 * beyond `maxCount`, then those that finished more than `maxAgeMs` ago, across all buckets. A status is
 * written once, when its task ends, and never changed: its node's creation is the finish (czxid orders
 * them, ctime ages them). Task ids say nothing about it: a long task, or one retried, finishes long after
 * younger ids, so its result sits in an old bucket with a young finish.
 *
 * Bounded memory and reads whatever the number of results: to pick the oldest results the sweeper
 * merges the buckets in the order of their oldest result, reading a bucket's stats only while it may
 * hold a result older than the next candidate: at most LOADED_MAX buckets (10,000 stats each) at once,
 * at most SWEEP_MAX removals per sweep (`behind` then says so, and the next sweep goes on: the leader
 * sweeps again at once, see `sweepUntilCaughtUp`). A bucket's oldest result is known
 * exactly once its stats were read (kept, one number per bucket, while its cversion is unchanged);
 * before that, the bucket node's own czxid stands for it: a child is always created after its parent,
 * so it is a lower bound, and the merge reads the bucket rather than miss an older result. In a steady
 * farm a sweep reads the one or two lowest buckets.
 *
 * Znodes: lists /status and the buckets it reads; `exists` on each bucket and on each result of a bucket
 * read; deletes results in multis (MultiBatcher, SWEEP_WINDOW in flight: ZooKeeper answers requests
 * in the order they arrive, so a farm's moves wait behind every delete sent before them), where a
 * status already gone is fine; deletes empty
 * buckets but the highest (the one being written), a bucket with children being refused by ZooKeeper
 * (NOT_EMPTY), so no result is lost to a race; a writer that finds its bucket gone makes it again
 * (status-store.ts).
 *
 * A sweep racing a reader at worst makes it find no result for a task older than the retention; a
 * waiter then learns that its task is nowhere (submitter.ts). Results still at flat paths (a farm not
 * yet upgraded) are not swept: the leader moves them into buckets first (status-upgrade.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { MultiBatcher } from '../recipes/multi-batcher.js';
import type { Stat, ZkClient } from '../zk/client.js';
import { isZkError } from '../zk/errors.js';
import { OTHER_BUCKET, statusBucketPath } from './protocol.js';
import { bucketIds, forgetBucket, statusChildren } from './status-store.js';

export interface RetentionOptions {
  /** Keep at most this many statuses. @defaultValue 10000 */
  maxCount?: number;
  /** Delete statuses older than this (ms). @defaultValue 86400000 (one day) */
  maxAgeMs?: number;
  /**
   * Keep every status at least this long after its task finished (ms), even over `maxCount`: a waiter
   * that starts waiting within it finds the result. @defaultValue 10000
   */
  minAgeMs?: number;
  /** Sweep interval (ms). @defaultValue 60000 */
  intervalMs?: number;
  /** How long an idempotency key is remembered at least (key-sweeper.ts). @defaultValue 86400000 (one day) */
  keyWindowMs?: number;
}

/** Results read at once, at most (in multiReads of MULTI_READ_PATHS, sent together). */
const READ_WINDOW = 256;
/** Buckets whose stats are held at once while merging (10,000 results each at most). */
const LOADED_MAX = 8;
/** A result is kept at least this long after it finished (ms), whatever the count (RetentionOptions). */
export const MIN_AGE_MS = 10_000;
/** Results removed by one sweep at most (the next sweep goes on). */
export const SWEEP_MAX = 50_000;
/**
 * Delete multis in flight at once. Each holds up to MULTI_MAX_OPS deletes; with the batcher's default
 * window of 16 a farm's next move could wait behind 3,200 of them (tens of ms), once per sweep.
 */
const SWEEP_WINDOW = 2;
/**
 * Between the sweeps of a sweeper that is behind, at least this long (ms), and at least as long as the
 * last sweep took: catching up takes at most half of the time, and the farm's requests the rest.
 */
export const CATCH_UP_PAUSE_MS = 100;

/** What the leader may tune besides RetentionOptions (tests). */
export interface SweepTuning {
  /** Removals per sweep at most. @defaultValue SWEEP_MAX */
  sweepMax?: number;
  /** @defaultValue CATCH_UP_PAUSE_MS */
  catchUpPauseMs?: number;
}

interface Summary {
  /** The cversion its stats were read at (-1: not read; `oldestZxid` and `oldestCtime` are then lower bounds). */
  cversion: number;
  oldestZxid: bigint;
  oldestCtime: number;
  /** The bucket's stat at this sweep. */
  stat: Stat;
}

interface Entry {
  bucket: string;
  id: string;
  zxid: bigint;
  ctime: number;
}

export class RetentionSweeper {
  readonly #client: ZkClient;
  readonly #maxCount: number;
  readonly #maxAge: number;
  readonly #minAge: number;
  readonly #signal: AbortSignal | undefined;
  readonly #sweepMax: number;
  /** bucket → its summary as of its cversion. */
  readonly #summaries = new Map<string, Summary>();
  #behind = false;

  constructor(
    client: ZkClient,
    options: RetentionOptions = {},
    signal?: AbortSignal,
    tuning: SweepTuning = {},
  ) {
    this.#client = client;
    this.#maxCount = options.maxCount ?? 10_000;
    this.#maxAge = options.maxAgeMs ?? 86_400_000;
    this.#minAge = Math.min(options.minAgeMs ?? MIN_AGE_MS, this.#maxAge);
    this.#signal = signal;
    this.#sweepMax = tuning.sweepMax ?? SWEEP_MAX;
  }

  /**
   * The last sweep stopped at its bounds (SWEEP_MAX removals, LOADED_MAX buckets) with more to remove,
   * or was refused some removals: a farm that finishes more than SWEEP_MAX results per interval needs
   * the next sweep before the interval is up.
   */
  get behind(): boolean {
    return this.#behind;
  }

  /** One sweep; returns how many statuses were removed. */
  async sweep(now = Date.now()): Promise<number> {
    this.#behind = false;
    const { buckets } = await statusChildren(this.#client);
    const stats = await Promise.all(buckets.map((b) => this.#client.exists(statusBucketPath(b))));
    const live: string[] = [];
    const empty: string[] = [];
    let total = 0;
    const highest = buckets.filter((b) => b !== OTHER_BUCKET).at(-1);
    for (const [i, b] of buckets.entries()) {
      const s = stats[i];
      if (!s || s.numChildren === 0) {
        this.#summaries.delete(b);
        if (s && b !== highest) empty.push(b);
        continue;
      }
      total += s.numChildren;
      live.push(b);
      // Not read since it changed: its own creation bounds its oldest result from below.
      if (this.#summaries.get(b)?.cversion !== s.cversion)
        this.#summaries.set(b, { cversion: -1, oldestZxid: s.czxid, oldestCtime: s.ctime, stat: s });
      else this.#summaries.get(b)!.stat = s;
    }
    for (const b of this.#summaries.keys()) if (!live.includes(b)) this.#summaries.delete(b);
    await this.#removeBuckets(empty);
    const excess = Math.max(0, total - this.#maxCount);
    // Under the count, and nothing can be older than maxAge: no bucket needs reading (a busy farm's
    // leader passes every few thousand tasks, leader-housekeeping.ts).
    const aged = live.some((b) => now - this.#summaries.get(b)!.oldestCtime > this.#maxAge);
    if (excess === 0 && !aged) return 0;
    // Nothing can be older than minAge (a new farm's first seconds): none may go, none needs reading.
    if (live.every((b) => now - this.#summaries.get(b)!.oldestCtime < this.#minAge)) return 0;
    const { doomed, young } = await this.#oldest(live, excess, now);
    if (doomed.length === 0) return 0;
    const batcher = new MultiBatcher(this.#client, {
      window: SWEEP_WINDOW,
      ...(this.#signal ? { signal: this.#signal } : {}),
    });
    const r = await batcher.write(
      doomed.map((e) => ({
        id: e.id,
        ops: [{ op: 'delete' as const, path: `${statusBucketPath(e.bucket)}/${e.id}` }],
      })),
    );
    if (r.stoppedBy !== undefined && r.written.length === 0) throw r.stoppedBy;
    // Over the count still, or every removal allowed was made (more may be older than maxAge); not
    // when the rest is younger than minAge: the next pass removes it once it has aged.
    this.#behind =
      (excess > r.written.length && !young) ||
      r.written.length >= this.#sweepMax ||
      r.written.length < doomed.length;
    return r.written.length;
  }

  /**
   * The results to remove: the `excess` that finished first, then any older than maxAge, in finish
   * order across buckets (a merge of the buckets, read lazily in the order of their oldest result),
   * none younger than minAge (`young`: the merge stopped at one).
   */
  async #oldest(
    buckets: string[],
    excess: number,
    now: number,
  ): Promise<{ doomed: Entry[]; young: boolean }> {
    const order = buckets
      .map((b) => ({ b, oldest: this.#summaries.get(b)!.oldestZxid }))
      .sort((x, y) => (x.oldest < y.oldest ? -1 : x.oldest > y.oldest ? 1 : 0));
    let next = 0;
    let loaded = 0;
    let candidates: Entry[] = [];
    let head = 0;
    const doomed: Entry[] = [];
    while (doomed.length < this.#sweepMax) {
      // Read the next bucket while it may hold a result older than the next candidate.
      while (
        next < order.length &&
        (head >= candidates.length || order[next]!.oldest < candidates[head]!.zxid)
      ) {
        if (loaded >= LOADED_MAX) return { doomed, young: false }; // the next sweep goes on
        candidates = [...candidates.slice(head), ...(await this.#entries(order[next]!.b))].sort(byZxid);
        head = 0;
        next++;
        loaded++;
      }
      const e = candidates[head];
      if (!e || !(doomed.length < excess || now - e.ctime > this.#maxAge)) break;
      // Finish order: every later candidate is younger still.
      if (now - e.ctime < this.#minAge) return { doomed, young: true };
      doomed.push(e);
      head++;
    }
    return { doomed, young: false };
  }

  /** The stats of one bucket's results; its summary becomes exact. */
  async #entries(bucket: string): Promise<Entry[]> {
    const ids = await bucketIds(this.#client, bucket);
    const out: Entry[] = [];
    // Stats come with the data of multiReads: a request per MULTI_READ_PATHS results, not one each.
    for (let i = 0; i < ids.length; i += READ_WINDOW) {
      const part = ids.slice(i, i + READ_WINDOW);
      const read = await this.#client.getDataMany(part.map((id) => `${statusBucketPath(bucket)}/${id}`));
      read.forEach((r, k) => {
        if (!isZkError(r)) out.push({ bucket, id: part[k]!, zxid: r.stat.czxid, ctime: r.stat.ctime });
        else if (!isZkError(r, 'NO_NODE')) throw r;
      });
    }
    const summary = this.#summaries.get(bucket);
    if (summary && out.length > 0) {
      let oldest = out[0]!;
      for (const e of out) if (e.zxid < oldest.zxid) oldest = e;
      summary.cversion = summary.stat.cversion;
      summary.oldestZxid = oldest.zxid;
      summary.oldestCtime = oldest.ctime;
    }
    return out;
  }

  /** Remove empty buckets (one that got a result meanwhile is refused: NOT_EMPTY, and kept). */
  async #removeBuckets(buckets: string[]): Promise<void> {
    await Promise.all(
      buckets.map(async (b) => {
        try {
          await this.#client.remove(statusBucketPath(b));
          forgetBucket(this.#client, b);
          this.#summaries.delete(b);
        } catch (err) {
          if (!isZkError(err, 'NOT_EMPTY', 'NO_NODE')) throw err;
        }
      }),
    );
  }
}

function byZxid(a: Entry, b: Entry): number {
  return a.zxid < b.zxid ? -1 : a.zxid > b.zxid ? 1 : 0;
}

/**
 * Sweeps with `sweeper` until it is no longer behind, pausing between sweeps for `pauseMs` or as long
 * as the last sweep took, whichever is longer; stops when a sweep removes nothing (what is left cannot
 * be removed now: the next interval tries again) or `signal` aborts. Returns how many statuses were
 * removed in all.
 */
export async function sweepUntilCaughtUp(
  sweeper: RetentionSweeper,
  pauseMs: number = CATCH_UP_PAUSE_MS,
  signal?: AbortSignal,
): Promise<number> {
  let total = 0;
  for (;;) {
    const began = Date.now();
    const removed = await sweeper.sweep();
    total += removed;
    if (!sweeper.behind || removed === 0 || signal?.aborted) return total;
    const pause = Math.max(pauseMs, Date.now() - began);
    await sleep(pause, undefined, signal ? { signal } : {}).catch(() => {});
    if (signal?.aborted) return total;
  }
}

/** One sweep with a sweeper of its own (reads the stats of every bucket). */
export function sweepStatuses(
  client: ZkClient,
  options: RetentionOptions = {},
  now = Date.now(),
): Promise<number> {
  return new RetentionSweeper(client, options).sweep(now);
}
