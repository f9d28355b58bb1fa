/**
 * Which worker gets the next task: pure logic, no I/O, unit-tested alone.
 *
 * Least-loaded: each task goes to a live, unpaused worker that can run it with the lowest load ratio
 * (outstanding / capacity), as long as it has a free slot (outstanding < capacity + prefetch). Ties go
 * to the worker with fewer outstanding tasks, then round-robin from `startAt`, so equal workers share
 * work evenly instead of the first name taking everything.
 *
 * What a task needs (`needOf`): a shell task needs a worker that runs shell; a handler task a worker
 * that has that handler (a worker that does not say which handlers it has is taken to have them all).
 * When no live worker at all can run it, any worker may take it: the worker refuses it with a failed
 * status that says why (shell not allowed, no such handler), never a silent wait. When some can, but
 * none of those has a free slot (paused, draining, busy), the task waits, and says why (`blockedReason`).
 */
import type { Task } from './protocol.js';

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
  /** The handlers it has; undefined: it did not say (taken to have them all). */
  handlers?: ReadonlySet<string>;
}

/** What a task needs of a worker: `shell`, or `handler:<name>`. */
export type Need = string;

export const SHELL: Need = 'shell';

export function needOf(task: Pick<Task, 'cmd' | 'handler'>): Need {
  if (task.cmd !== undefined) return SHELL;
  const handler = task.handler ?? '';
  let need = handlerNeeds.get(handler);
  if (need === undefined) {
    if (handlerNeeds.size > 10_000) handlerNeeds.clear();
    need = `handler:${handler}`;
    handlerNeeds.set(handler, need);
  }
  return need;
}

/** The need of each handler name seen (one string per name, not one per task). */
const handlerNeeds = new Map<string, Need>();

export function canRun(w: WorkerLoad, need: Need): boolean {
  if (need === SHELL) return w.shell === true;
  return w.handlers === undefined || w.handlers.has(need.slice('handler:'.length));
}

/** The workers that may take a task with this need: those that can run it, or all when none can. */
export function eligible(workers: readonly WorkerLoad[], need: Need): WorkerLoad[] {
  const able = workers.filter((w) => canRun(w, need));
  return able.length > 0 ? able : [...workers];
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

/** Free slots for tasks with this need. */
export function roomFor(workers: readonly WorkerLoad[], need: Need): number {
  return totalFreeSlots(eligible(workers, need));
}

/** Why tasks with this need wait although the queue is moving, or undefined when they can go. */
export function blockedReason(workers: readonly WorkerLoad[], need: Need): string | undefined {
  const pool = eligible(workers, need);
  if (totalFreeSlots(pool) > 0) return undefined;
  const what = need === SHELL ? 'shell tasks' : `handler "${need.slice('handler:'.length)}"`;
  if (workers.length === 0) return 'no worker is registered';
  if (pool.length < workers.length) {
    if (pool.every((w) => w.paused)) return `every worker that runs ${what} is paused or draining`;
    return `every worker that runs ${what} is busy`;
  }
  if (pool.every((w) => w.paused)) return 'every worker is paused or draining';
  return 'every worker is busy';
}

/**
 * Plan assignments for `tasks` (in queue order). Does not modify `workers`. `startAt` rotates
 * tie-breaking between calls; `need` says what each task needs (undefined: any worker will do).
 */
export function planAssignments(
  tasks: readonly string[],
  workers: readonly WorkerLoad[],
  startAt = 0,
  need: (task: string) => Need | undefined = () => undefined,
): Plan {
  const n = workers.length;
  const state = workers.map((w) => ({ w, out: w.outstanding }));
  // Per need, the workers that may take it; undefined when every worker may (the common case).
  const pools = new Map<Need, Set<WorkerLoad> | undefined>();
  const poolOf = (k: Need) => {
    if (pools.has(k)) return pools.get(k);
    const able = eligible(workers, k);
    const p = able.length === workers.length ? undefined : new Set(able);
    pools.set(k, p);
    return p;
  };
  const assignments: Plan['assignments'] = [];
  const unassigned: string[] = [];
  for (const task of tasks) {
    const k = need(task);
    const pool = k === undefined ? undefined : poolOf(k);
    let best: (typeof state)[number] | undefined;
    let bestRatio = Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const s = state[(startAt + i) % n]!;
      if (s.w.paused || s.out >= s.w.capacity + s.w.prefetch) continue;
      if (pool && !pool.has(s.w)) continue;
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
