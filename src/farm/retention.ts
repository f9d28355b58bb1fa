/**
 * Status retention: results do not pile up for ever.
 *
 * The leading master sweeps /status every `intervalMs`: it removes the results that finished first
 * beyond `maxCount`, then those that finished more than `maxAgeMs` ago. A status is written once, when
 * its task ends, and never changed: its node's creation is the finish (czxid orders them, ctime ages
 * them). Task ids say nothing about it: a long task, or one retried, finishes long after younger ids.
 *
 * Znodes: lists /status; reads the stat of each status not seen before (a sweeper keeps the stats from
 * one sweep to the next, since they never change); deletes in multis (MultiBatcher), where a status
 * already gone is fine.
 *
 * A sweep racing a reader at worst makes it find no result for a task older than the retention; a
 * waiter then learns that its task is nowhere (submitter.ts). Keep `maxCount` well under ~50,000: a
 * listing of /status must fit ZooKeeper's 1 MB packet limit.
 */
import { MultiBatcher } from '../recipes/multi-batcher.js';
import { isZkError, type Stat, type ZkClient } from '../zk/index.js';
import { PATHS, statusPath } from './protocol.js';

export interface RetentionOptions {
  /** Keep at most this many statuses. @defaultValue 10000 */
  maxCount?: number;
  /** Delete statuses older than this (ms). @defaultValue 86400000 (one day) */
  maxAgeMs?: number;
  /** Sweep interval (ms). @defaultValue 60000 */
  intervalMs?: number;
}

/** Stats read at once, at most. */
const READ_WINDOW = 256;

export class RetentionSweeper {
  readonly #client: ZkClient;
  readonly #maxCount: number;
  readonly #maxAge: number;
  readonly #signal: AbortSignal | undefined;
  /** id → [czxid, ctime] of statuses seen. */
  readonly #seen = new Map<string, [bigint, number]>();

  constructor(client: ZkClient, options: RetentionOptions = {}, signal?: AbortSignal) {
    this.#client = client;
    this.#maxCount = options.maxCount ?? 10_000;
    this.#maxAge = options.maxAgeMs ?? 86_400_000;
    this.#signal = signal;
  }

  /** One sweep; returns how many statuses were removed. */
  async sweep(now = Date.now()): Promise<number> {
    const stat = await this.#client.exists(PATHS.status);
    if (!stat || stat.numChildren === 0) return 0;
    const ids = await this.#client.getChildren(PATHS.status);
    const present = new Set(ids);
    for (const id of this.#seen.keys()) if (!present.has(id)) this.#seen.delete(id);
    await this.#readStats(ids.filter((id) => !this.#seen.has(id)));
    // Oldest finish first.
    const byFinish = [...this.#seen].sort((a, b) => (a[1][0] < b[1][0] ? -1 : a[1][0] > b[1][0] ? 1 : 0));
    const doomed: string[] = [];
    const excess = Math.max(0, byFinish.length - this.#maxCount);
    for (const [i, [id, [, ctime]]] of byFinish.entries()) {
      if (i < excess || now - ctime > this.#maxAge) doomed.push(id);
      else break;
    }
    if (doomed.length === 0) return 0;
    const batcher = new MultiBatcher(this.#client, this.#signal ? { signal: this.#signal } : {});
    const r = await batcher.write(
      doomed.map((id) => ({ id, ops: [{ op: 'delete' as const, path: statusPath(id) }] })),
    );
    if (r.stoppedBy !== undefined && r.written.length === 0) throw r.stoppedBy;
    for (const { id } of r.written) this.#seen.delete(id);
    for (const { item } of r.refused) this.#seen.delete(item.id);
    return r.written.length;
  }

  async #readStats(ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += READ_WINDOW) {
      const part = ids.slice(i, i + READ_WINDOW);
      const stats = await Promise.all(
        part.map((id) =>
          this.#client.exists(statusPath(id)).catch((err: unknown): Stat | null => {
            if (isZkError(err, 'NO_NODE')) return null;
            throw err;
          }),
        ),
      );
      stats.forEach((s, k) => {
        if (s) this.#seen.set(part[k]!, [s.czxid, s.ctime]);
      });
    }
  }
}

/** One sweep with a sweeper of its own (reads every status's stat). */
export function sweepStatuses(
  client: ZkClient,
  options: RetentionOptions = {},
  now = Date.now(),
): Promise<number> {
  return new RetentionSweeper(client, options).sweep(now);
}
