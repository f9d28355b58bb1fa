/**
 * Automatic prefetch: how many tasks a worker holds beyond its capacity, chosen from how long its tasks
 * take. Pure logic, no I/O, unit-tested alone.
 *
 * Prefetch trades fairness for batching. A queued task waits at the worker for the ones ahead of it,
 * about (prefetch ÷ capacity) × the task duration, even when another worker has a free slot; but every
 * task held is one the master does not have to hand over one round trip at a time. So:
 *
 *   prefetch = capacity × QUEUE_MS ÷ (recent mean duration), within [capacity, MAX_FACTOR × capacity]
 *
 * A worker of tasks that take 100 ms or more holds `capacity` (one more batch: such a task's own time
 * dwarfs a round trip to the master);
 * one of 2 ms tasks 12 × capacity, one of sub-millisecond tasks up to 64 × capacity (durations are
 * measured to fractions of a millisecond), so that a master's round and a worker's read and completion
 * each carry many tasks: the farm's cost is mostly per round, not per task. Until `capacity` tasks have finished it holds
 * `capacity`. The published value changes only when the target moved by a factor of 2 (or reached a
 * bound), and at most every `minIntervalMs`, so the worker's znode is not rewritten per task.
 */

/** How long a prefetched task may expect to wait at its worker, ms. */
export const AUTO_PREFETCH_QUEUE_MS = 25;
/** Most tasks held beyond capacity, as a multiple of capacity. */
export const AUTO_PREFETCH_MAX_FACTOR = 64;

export interface AutoPrefetchOptions {
  queueMs?: number;
  maxFactor?: number;
  /** Least time between two changes of the published value, ms. @defaultValue 250 */
  minIntervalMs?: number;
}

export class AutoPrefetch {
  readonly #capacity: number;
  readonly #queueMs: number;
  readonly #max: number;
  readonly #minIntervalMs: number;
  #value: number;
  #mean = 0;
  #samples = 0;
  #changedAt = Number.NEGATIVE_INFINITY;

  constructor(capacity: number, options: AutoPrefetchOptions = {}) {
    this.#capacity = capacity;
    this.#queueMs = options.queueMs ?? AUTO_PREFETCH_QUEUE_MS;
    this.#max = capacity * (options.maxFactor ?? AUTO_PREFETCH_MAX_FACTOR);
    this.#minIntervalMs = options.minIntervalMs ?? 250;
    this.#value = capacity;
  }

  /** The prefetch in force (the one published). */
  get value(): number {
    return this.#value;
  }

  /** What the recent durations call for, before hysteresis. */
  target(): number {
    // Every field is read before the choice: a new worker's first runs (fewer than capacity) happen
    // before V8 collects type feedback here, and a field read only on their branch made the optimized
    // code throw itself away at each new worker (benchmarks/README.md, "Warm code across the switch").
    const capacity = this.#capacity;
    // Below 0.1 ms a duration says only "very short".
    const ideal = Math.floor((capacity * this.#queueMs) / Math.max(this.#mean, 0.1));
    const target = Math.min(this.#max, Math.max(capacity, ideal));
    return this.#samples < capacity ? capacity : target;
  }

  /**
   * Record one finished task's duration (ms) at time `now` (ms). Returns the new prefetch when the
   * published value should change, else undefined.
   */
  observe(durationMs: number, now: number): number | undefined {
    const d = Number.isFinite(durationMs) && durationMs > 0 ? durationMs : 0;
    this.#samples++;
    // A mean over roughly the last 10 tasks: follows a change of workload within a few batches.
    this.#mean = this.#samples === 1 ? d : this.#mean + (d - this.#mean) * 0.2;
    const target = this.target();
    if (target === this.#value || now - this.#changedAt < this.#minIntervalMs) return undefined;
    const atBound = target === this.#capacity || target === this.#max;
    if (!atBound && target < this.#value * 2 && target * 2 > this.#value) return undefined;
    this.#value = target;
    this.#changedAt = now;
    return target;
  }
}
