/**
 * What a worker counts (Worker.stats(), shown by the host and the dashboard): its tasks' ends as
 * ZooKeeper confirms them, and the durations of its last runs. Plain counters; `running` and `queued`
 * are filled in by the worker when asked.
 *
 * Znodes: none. SUSPENDED / LOST: the counts go on over sessions (`dropped` counts the held tasks a
 * lost session took away).
 */
import type { Move } from './moves.js';

export interface WorkerStats {
  running: number;
  queued: number;
  succeeded: number;
  failed: number;
  retried: number;
  /** Tasks cancelled here (worker-cancels.ts). */
  cancelled?: number;
  /** Completions refused because the task had moved on (fenced). */
  fenced: number;
  /** Tasks held but not started when a session was lost (the master gave them back). */
  dropped: number;
  paused: boolean;
  /** Durations of the last tasks (ms), newest last, at most 1000. */
  durations: number[];
}

export function emptyWorkerStats(): WorkerStats {
  return {
    running: 0,
    queued: 0,
    succeeded: 0,
    failed: 0,
    retried: 0,
    fenced: 0,
    dropped: 0,
    paused: false,
    durations: [],
  };
}

/** Count a move that ended a task here and that ZooKeeper confirmed, by its kind and result. */
export function countWritten(stats: WorkerStats, m: Move): void {
  if (m.kind === 'cancel') stats.cancelled = (stats.cancelled ?? 0) + 1;
  else if (m.kind === 'requeue') stats.retried++;
  else if (m.status?.state === 'succeeded') stats.succeeded++;
  else if (m.status) stats.failed++;
}

/**
 * The durations of a worker's last runs (ms), at most `size`, in a ring of doubles: recording one
 * allocates nothing and never shifts an array. (An array that starts empty holds small integers until its
 * first duration, so each new worker's first run threw away the run path's optimized code, compiled
 * for an array of doubles during the rehearsal: benchmarks/README.md, "Warm code across the switch".)
 */
export class RecentDurations {
  readonly #ring: Float64Array;
  #count = 0;
  #next = 0;

  constructor(size = 1000) {
    this.#ring = new Float64Array(size);
  }

  record(ms: number): void {
    this.#ring[this.#next] = ms;
    this.#next = this.#next + 1 === this.#ring.length ? 0 : this.#next + 1;
    if (this.#count < this.#ring.length) this.#count++;
  }

  /** Oldest first. */
  list(): number[] {
    const size = this.#ring.length;
    const first = (this.#next - this.#count + size) % size;
    return Array.from({ length: this.#count }, (_, i) => this.#ring[(first + i) % size]!);
  }
}
