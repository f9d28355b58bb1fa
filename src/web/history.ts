/**
 * The dashboard's memory of the last minutes: one bucket per observation tick (about a second), from
 * which the charts' points, the tasks/s rate, the failures of the last 5 minutes and the latency
 * percentiles are computed. Bounded: at most `keepMs` of buckets, at most `maxLatencies` latencies each.
 */

/** One point of the charts (what the page plots). Times in seconds since the epoch, latencies in ms. */
export interface Point {
  t: number;
  queue: number;
  inFlight: number;
  /** Tasks finished per second (succeeded + failed), averaged over the last 5 s. */
  rate: number;
  /** Failed tasks per second, averaged over the last 5 s. */
  failRate: number;
  /** Submit-to-status latency percentiles over the last 10 s (null when no task finished). */
  p50: number | null;
  p95: number | null;
  p99: number | null;
  /** Run time (finishedAt − startedAt) median over the last 10 s. */
  run50: number | null;
}

interface Bucket {
  at: number;
  completed: number;
  failed: number;
  s2s: number[];
  run: number[];
}

export interface TickInput {
  at: number;
  /** Tasks finished in this tick (weighted when sampling: may be fractional). */
  completed: number;
  failed: number;
  /** Submit-to-status latencies (ms) of the statuses read this tick. */
  s2s: number[];
  /** Run times (ms) of the statuses read this tick. */
  run: number[];
  queue: number;
  inFlight: number;
}

export interface HistoryOptions {
  /** How much history the charts keep. @defaultValue 600000 (10 minutes) */
  keepMs?: number;
  /** Latencies kept per bucket (a uniform sample beyond). @defaultValue 500 */
  maxLatencies?: number;
}

export class History {
  readonly #buckets: Bucket[] = [];
  readonly #points: Point[] = [];
  readonly #keepMs: number;
  readonly #maxLatencies: number;
  readonly #startedAt: number;

  constructor(options: HistoryOptions = {}, now = Date.now()) {
    this.#keepMs = options.keepMs ?? 600_000;
    this.#maxLatencies = options.maxLatencies ?? 500;
    this.#startedAt = now;
  }

  /** Add one tick; returns the chart point it makes. */
  push(tick: TickInput): Point {
    this.#buckets.push({
      at: tick.at,
      completed: tick.completed,
      failed: tick.failed,
      s2s: sample(tick.s2s, this.#maxLatencies),
      run: sample(tick.run, this.#maxLatencies),
    });
    const cutoff = tick.at - this.#keepMs;
    while (this.#buckets.length > 0 && this.#buckets[0]!.at < cutoff) this.#buckets.shift();
    const last5 = this.#since(tick.at - 5000);
    const span5 = this.#span(tick.at, 5000);
    const last10 = this.#since(tick.at - 10_000);
    const s2s = sorted(last10.flatMap((b) => b.s2s));
    const run = sorted(last10.flatMap((b) => b.run));
    const point: Point = {
      t: Math.round(tick.at / 100) / 10,
      queue: tick.queue,
      inFlight: tick.inFlight,
      rate: round2(sum(last5, 'completed') / span5),
      failRate: round2(sum(last5, 'failed') / span5),
      p50: percentile(s2s, 50),
      p95: percentile(s2s, 95),
      p99: percentile(s2s, 99),
      run50: percentile(run, 50),
    };
    this.#points.push(point);
    while (this.#points.length > 0 && this.#points[0]!.t * 1000 < cutoff) this.#points.shift();
    return point;
  }

  /** Every point kept, oldest first. */
  points(): Point[] {
    return [...this.#points];
  }

  /** Tasks finished per second over the last `windowMs` (default 10 s). */
  rate(now: number, windowMs = 10_000): number {
    return round2(sum(this.#since(now - windowMs), 'completed') / this.#span(now, windowMs));
  }

  /** Failed tasks in the last `windowMs` (default 5 minutes); fractional when sampling. */
  failedSince(now: number, windowMs = 300_000): number {
    return sum(this.#since(now - windowMs), 'failed');
  }

  /** Submit-to-status latency percentiles over the last `windowMs` (default 60 s). */
  latency(
    now: number,
    windowMs = 60_000,
  ): { p50: number | null; p95: number | null; p99: number | null; count: number } {
    const s = sorted(this.#since(now - windowMs).flatMap((b) => b.s2s));
    return { p50: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99), count: s.length };
  }

  #since(from: number): Bucket[] {
    return this.#buckets.filter((b) => b.at > from);
  }

  /** Seconds covered by a window ending now: less than the window while the dashboard is young. */
  #span(now: number, windowMs: number): number {
    return Math.max(1, Math.min(windowMs, now - this.#startedAt)) / 1000;
  }
}

/** The p-th percentile (nearest rank) of an ascending array, or null when empty. */
export function percentile(ascending: readonly number[], p: number): number | null {
  if (ascending.length === 0) return null;
  const rank = Math.ceil((p / 100) * ascending.length);
  return ascending[Math.min(ascending.length - 1, Math.max(0, rank - 1))]!;
}

function sorted(values: number[]): number[] {
  return values.sort((a, b) => a - b);
}

function sum(buckets: Bucket[], key: 'completed' | 'failed'): number {
  let n = 0;
  for (const b of buckets) n += b[key];
  return n;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

/** A uniform random sample of at most `max` values (the array itself when small enough). */
function sample(values: number[], max: number): number[] {
  if (values.length <= max) return values;
  const out = values.slice(0, max);
  for (let i = max; i < values.length; i++) {
    const j = Math.floor(Math.random() * (i + 1));
    if (j < max) out[j] = values[i]!;
  }
  return out;
}
