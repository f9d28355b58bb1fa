/**
 * When was a task submitted? An estimate from ZooKeeper alone, for the submit-to-status latency.
 *
 * A task id's number is not a time, but it is not arbitrary either: ZooKeeper names a sequential node
 * after its parent's `cversion` at the moment of the create (the count of child creates and deletes
 * under /tasks so far). So `task-0000000042` was created while /tasks' cversion went from 42 to 43.
 * The dashboard reads /tasks' stat (one cheap `exists`) a few times a second anyway for the queue
 * depth; every reading pairs a cversion with a time. A task whose number lies between two readings
 * was created between their times; we interpolate linearly inside that interval.
 *
 * Precision: within one reading interval (250 ms by default), better under steady load. Tasks created
 * before the first reading are unknown (`undefined`). Times are this process's clock; a worker's
 * `finishedAt` is its own machine's clock, so clock skew between machines adds to the error.
 *
 * A status that carries `submittedAt` (the task znode's ctime, copied by the worker) needs none of this.
 */

interface Reading {
  /** cversion seen. */
  c: number;
  /** First and last time (ms) this cversion was seen. */
  first: number;
  last: number;
}

export class SubmitClock {
  readonly #readings: Reading[] = [];
  readonly #max: number;

  /** @param maxReadings readings kept (the oldest go first). @defaultValue 20000 (≈ 80 min at 4 a second) */
  constructor(maxReadings = 20_000) {
    this.#max = maxReadings;
  }

  /** Record that /tasks had `cversion` at time `at` (ms). Readings must come in time order. */
  record(cversion: number, at: number): void {
    const last = this.#readings.at(-1);
    if (last && last.c === cversion) {
      last.last = at;
      return;
    }
    // A smaller cversion means /tasks was deleted and made again: start over.
    if (last && cversion < last.c) this.#readings.length = 0;
    this.#readings.push({ c: cversion, first: at, last: at });
    if (this.#readings.length > this.#max) this.#readings.splice(0, this.#readings.length - this.#max);
  }

  /** Estimated creation time (ms) of the task with sequence number `seq`, or undefined when unknown. */
  timeOf(seq: number): number | undefined {
    const r = this.#readings;
    if (r.length === 0 || !Number.isFinite(seq)) return undefined;
    // Created before our first reading: unknown (it may be hours old).
    if (seq < r[0]!.c) return undefined;
    // Find the last reading with c <= seq (binary search).
    let lo = 0;
    let hi = r.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (r[mid]!.c <= seq) lo = mid;
      else hi = mid - 1;
    }
    const a = r[lo]!;
    const b = r[lo + 1];
    // Created after the newest reading: it happened after `a.last`; that is the best bound we have.
    if (!b) return a.last;
    // Created while cversion went a.c → b.c, i.e. in (a.last, b.first].
    const frac = (seq - a.c + 0.5) / (b.c - a.c);
    return a.last + frac * (b.first - a.last);
  }

  get size(): number {
    return this.#readings.length;
  }
}

/** The sequence number of a task id (`task-0000000042` → 42), or NaN. */
export function taskSequence(id: string): number {
  const m = /^task-(\d{10})$/.exec(id);
  return m ? Number(m[1]) : Number.NaN;
}
