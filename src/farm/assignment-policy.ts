/**
 * Which worker gets the next task: pure logic, no I/O, unit-tested alone.
 *
 * Least-loaded: each task goes to the live, unpaused worker with the lowest load ratio
 * (outstanding / capacity), as long as it has a free slot (outstanding < capacity + prefetch).
 * Ties go to the worker with fewer outstanding tasks, then round-robin from `startAt`, so equal workers
 * share work evenly instead of the first name taking everything.
 *
 * Shell tasks go only to workers that run shell, when any live worker does; when none does, they go to
 * any worker, which refuses them with a failed status that says how to allow shell (never a silent wait).
 */

export interface WorkerLoad {
  name: string;
  capacity: number;
  /** Extra tasks it may hold beyond capacity (queued at the worker). */
  prefetch: number;
  /** Tasks assigned to it and not yet completed. */
  outstanding: number;
  paused: boolean;
  /** Runs shell tasks. */
  shell?: boolean;
}

export interface Plan {
  /** task id → worker name, in task order. */
  assignments: Array<{ task: string; worker: string }>;
  /** Tasks no worker had room for. */
  unassigned: string[];
}

/** Free slots of a worker (0 when paused). */
export function freeSlots(w: WorkerLoad): number {
  if (w.paused) return 0;
  return Math.max(0, w.capacity + w.prefetch - w.outstanding);
}

export function totalFreeSlots(workers: Iterable<WorkerLoad>): number {
  let n = 0;
  for (const w of workers) n += freeSlots(w);
  return n;
}

/**
 * Plan assignments for `tasks` (in queue order). Does not modify `workers`.
 * `startAt` rotates tie-breaking between calls.
 */
export function planAssignments(
  tasks: readonly string[],
  workers: readonly WorkerLoad[],
  startAt = 0,
  needsShell: (task: string) => boolean = () => false,
): Plan {
  const n = workers.length;
  const anyShell = workers.some((w) => w.shell === true);
  const state = workers.map((w, i) => ({ w, i, out: w.outstanding }));
  const assignments: Plan['assignments'] = [];
  const unassigned: string[] = [];
  for (const task of tasks) {
    let best: (typeof state)[number] | undefined;
    let bestRatio = Number.POSITIVE_INFINITY;
    const shellOnly = anyShell && needsShell(task);
    for (let k = 0; k < n; k++) {
      const s = state[(startAt + k) % n]!;
      if (s.w.paused || s.out >= s.w.capacity + s.w.prefetch) continue;
      if (shellOnly && s.w.shell !== true) continue;
      const ratio = s.out / s.w.capacity;
      if (ratio < bestRatio || (ratio === bestRatio && best !== undefined && s.out < best.out)) {
        best = s;
        bestRatio = ratio;
      }
    }
    if (!best) {
      unassigned.push(task);
      continue;
    }
    best.out++;
    assignments.push({ task, worker: best.w.name });
  }
  return { assignments, unassigned };
}
