/**
 * The window of idempotency keys (task-keys.ts): the leading master keeps /keys' 256 buckets and removes
 * the key nodes older than `windowMs`.
 *
 * Znodes: makes /keys and /keys/00 … /keys/ff when it takes the lead (a create that finds the node is
 * fine; buckets are never removed, so a foreign client's one-multi submission always finds its bucket);
 * lists a few buckets per sweep, reads their key nodes (multiRead) and deletes those created more than
 * `windowMs` ago, each at the version read (MultiBatcher), so a key node whose id was being filled in
 * meanwhile stays until the next pass.
 *
 * The window: a key is remembered for at least `windowMs` after its task was submitted, and forgotten
 * within `windowMs` + one pass over the buckets (BUCKETS_PER_SWEEP a sweep: every bucket each 16 sweeps,
 * 16 minutes at the default interval). Its age is its node's ctime against the leader's clock.
 *
 * SUSPENDED / LOST: a sweep (or the making of the buckets) that fails is logged and the next sweep goes
 * on; removals are single deletes at a version, safe to repeat.
 */
import { describeError } from '../errors.js';
import { MultiBatcher } from '../recipes/multi-batcher.js';
import type { ZkClient } from '../zk/client.js';
import type { Logger } from '../zk/connect-options.js';
import { isZkError } from '../zk/errors.js';
import { KEY_BUCKETS, KEYS_PATH, keyBucketPath } from './task-keys.js';

/** Buckets read by one sweep. */
export const BUCKETS_PER_SWEEP = 16;

export class KeySweeper {
  readonly #client: ZkClient;
  readonly #windowMs: number;
  readonly #signal: AbortSignal | undefined;
  readonly #log: Logger;
  /** The next bucket to read (round robin over KEY_BUCKETS). */
  #next = 0;
  #bucketsMade = false;

  /** `windowMs`: @defaultValue 86400000 (a day) */
  constructor(client: ZkClient, windowMs: number | undefined, log: Logger, signal?: AbortSignal) {
    this.#client = client;
    this.#windowMs = windowMs ?? 86_400_000;
    this.#log = log;
    this.#signal = signal;
  }

  /** Make /keys and its 256 buckets (those missing); never rejects (a failure is logged). */
  async makeBuckets(): Promise<void> {
    try {
      await this.#makeBuckets();
    } catch (err) {
      if (!this.#signal?.aborted)
        this.#log.warn(
          { err },
          `making /keys' buckets failed: ${describeError(err)}; the next sweep tries again`,
        );
    }
  }

  async #makeBuckets(): Promise<void> {
    await this.#client.ensurePath(KEYS_PATH);
    const have = new Set(await this.#client.getChildren(KEYS_PATH));
    await Promise.all(
      KEY_BUCKETS.filter((b) => !have.has(b)).map((b) =>
        this.#client.create(keyBucketPath(b)).catch((err: unknown) => {
          if (!isZkError(err, 'NODE_EXISTS')) throw err;
        }),
      ),
    );
    this.#bucketsMade = true;
  }

  /** One sweep (see #sweep); never rejects (a failure is logged); returns how many keys it removed. */
  async sweep(now = Date.now()): Promise<number> {
    try {
      const removed = await this.#sweep(now);
      if (removed > 0) this.#log.info({ removed }, 'removed idempotency keys past their window');
      return removed;
    } catch (err) {
      if (!this.#signal?.aborted) this.#log.warn({ err }, `key sweep failed: ${describeError(err)}`);
      return 0;
    }
  }

  /** The next BUCKETS_PER_SWEEP buckets: their keys older than the window are removed. */
  async #sweep(now: number): Promise<number> {
    if (!this.#bucketsMade) await this.#makeBuckets();
    const buckets = Array.from(
      { length: BUCKETS_PER_SWEEP },
      (_, i) => KEY_BUCKETS[(this.#next + i) % KEY_BUCKETS.length]!,
    );
    this.#next = (this.#next + BUCKETS_PER_SWEEP) % KEY_BUCKETS.length;
    let removed = 0;
    for (const bucket of buckets) {
      if (this.#signal?.aborted) break;
      removed += await this.#sweepBucket(bucket, now);
    }
    return removed;
  }

  async #sweepBucket(bucket: string, now: number): Promise<number> {
    const dir = keyBucketPath(bucket);
    let names: string[];
    try {
      names = await this.#client.getChildren(dir);
    } catch (err) {
      if (isZkError(err, 'NO_NODE')) return 0;
      throw err;
    }
    if (names.length === 0) return 0;
    const paths = names.map((n) => `${dir}/${n}`);
    const reads = await this.#client.getDataMany(paths);
    const old = paths.flatMap((path, i) => {
      const r = reads[i]!;
      if (r instanceof Error || now - r.stat.ctime <= this.#windowMs) return [];
      return [{ ops: [{ op: 'delete' as const, path, version: r.stat.version }] }];
    });
    if (old.length === 0) return 0;
    const batcher = new MultiBatcher(this.#client, this.#signal ? { signal: this.#signal } : {});
    const r = await batcher.write(old);
    if (r.stoppedBy !== undefined && r.written.length === 0) throw r.stoppedBy;
    return r.written.length;
  }
}
