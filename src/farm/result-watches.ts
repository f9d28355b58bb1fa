/**
 * How a Submitter watches for results: a data watch on /status/<bucket>/<id> while few of its waits are
 * in a bucket; once MANY_IN_BUCKET are, one NodeWaits on the bucket (recipes/node-waits.ts) for every
 * later wait in it. `runtime submit --wait` of 20,000 tasks made ~75,000 requests with a watch each,
 * three times the farm's own ZooKeeper CPU; with the bucket's watch, a notification per result and a
 * multiRead per hundred (benchmarks/README.md, "Waiting for many results").
 *
 * Znodes: watches /status/<bucket>/<id> (a data watch), or /status/<bucket> recursively; reads results.
 *
 * A bucket's NodeWaits is closed once none of its waits is left for IDLE_MS, which removes its watch
 * from the server (the client's `addWatch` remover): a long-lived Submitter that once waited for many
 * results does not hear every later result of the bucket. The pause keeps the watch across the gaps of
 * a stream of waits (a `--wait` whose batches the farm finishes before the next is in). Waits that began
 * on a data watch stay on it.
 *
 * SUSPENDED / LOST: both kinds of watch read again after a reconnection or on the next session.
 */
import { NodeWaits } from '../recipes/node-waits.js';
import type { Supervisor } from '../zk/supervisor.js';
import { PATHS, statusBucket, statusPath } from './protocol.js';

/** Waits in one bucket at once from which the bucket's watch pays (a data watch costs 2–3 requests). */
export const MANY_IN_BUCKET = 16;

/** How long a bucket's watch outlives its last wait (ms). */
export const IDLE_MS = 10_000;

export interface ResultWatch {
  close(): void;
}

export class ResultWatches {
  readonly #sup: Supervisor;
  /** Open data watches per bucket. */
  readonly #few = new Map<string, number>();
  readonly #many = new Map<string, NodeWaits>();
  /** Buckets whose watch has no wait left, and the timer that closes it. */
  readonly #idle = new Map<string, NodeJS.Timeout>();
  readonly #idleMs: number;

  constructor(supervisor: Supervisor, idleMs = IDLE_MS) {
    this.#sup = supervisor;
    this.#idleMs = idleMs;
  }

  /** Buckets watched as a whole now. */
  get bucketsWatched(): number {
    return this.#many.size;
  }

  /** Call `onData` once with the result of task `id` when it is recorded; `close()` stops waiting. */
  watch(id: string, onData: (data: Buffer) => void): ResultWatch {
    const bucket = statusBucket(id);
    const few = this.#few.get(bucket) ?? 0;
    let waits = this.#many.get(bucket);
    if (!waits && few + 1 >= MANY_IN_BUCKET) {
      waits = new NodeWaits(this.#sup, `${PATHS.status}/${bucket}`);
      this.#many.set(bucket, waits);
    }
    if (waits) return this.#inBucket(bucket, waits, id, onData);
    this.#few.set(bucket, few + 1);
    const watch = this.#sup.watchData(statusPath(id), ({ data }) => {
      if (data) onData(data);
    });
    let open = true;
    return {
      close: () => {
        watch.close();
        if (!open) return;
        open = false;
        const left = (this.#few.get(bucket) ?? 1) - 1;
        if (left > 0) this.#few.set(bucket, left);
        else this.#few.delete(bucket);
      },
    };
  }

  #inBucket(bucket: string, waits: NodeWaits, id: string, onData: (data: Buffer) => void): ResultWatch {
    clearTimeout(this.#idle.get(bucket));
    this.#idle.delete(bucket);
    const stop = waits.add(id, onData);
    return {
      close: () => {
        stop();
        if (waits.size > 0 || this.#many.get(bucket) !== waits || this.#idle.has(bucket)) return;
        const timer = setTimeout(() => {
          this.#idle.delete(bucket);
          this.#many.delete(bucket);
          waits.close();
        }, this.#idleMs);
        timer.unref?.();
        this.#idle.set(bucket, timer);
      },
    };
  }

  close(): void {
    for (const t of this.#idle.values()) clearTimeout(t);
    this.#idle.clear();
    for (const w of this.#many.values()) w.close();
    this.#many.clear();
  }
}
