/**
 * Which worker gets the next task: pure logic, no I/O, unit-tested alone.
 *
 * Least-loaded: the next free slot is the one of the live, unpaused worker with the lowest load ratio
 * (outstanding / capacity) that has a free slot (outstanding < capacity + prefetch) and a task it may
 * take. Ties go to the worker with fewer outstanding tasks, then round-robin from `startAt`, so equal
 * workers share work evenly instead of the first name taking everything.
 *
 * Queues: a worker takes tasks only from the queues it serves. Among those with a task it may take, it
 * takes from the first listed (`strict`), or by smooth weighted round robin (`weighted`, nginx's: each
 * queue earns its weight, the richest goes and pays the sum of the weights), so a worker serving a:3
 * and b:1 takes three of a for one of b while both have tasks. Within a queue it takes the task that
 * comes first (highest priority, then lowest id) among those whose need it meets.
 *
 * What a task needs (`needOf`): a shell task needs a worker that runs shell; a handler task a worker
 * that has that handler (a worker that does not say which handlers it has is taken to have them all).
 * When no live worker at all can run it, any worker may take it: the worker refuses it with a failed
 * status that says why (shell not allowed, no such handler), never a silent wait. When some can, but
 * none of those has a free slot (paused, draining, busy), the task waits, and says why (`blockedReason`).
 */
import type { Task } from './protocol.js';
import type { Candidate } from './queue-view.js';
import type { QueueOrder, ServedQueue } from './queues.js';

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
  /** The queues it serves. */
  queues: readonly ServedQueue[];
  queueOrder: QueueOrder;
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

/** The workers that serve `queue`. */
export function servingOf(workers: readonly WorkerLoad[], queue: string): WorkerLoad[] {
  return workers.filter((w) => w.queues.some((q) => q.name === queue));
}

/** Per worker, the weights its queues have earned so far (smooth weighted round robin); kept across rounds. */
export type RoundRobin = Map<string, Map<string, number>>;

export interface Plan {
  /** task id → worker name, in the order they were planned. */
  assignments: Array<{ task: string; worker: string; queue: string }>;
}

/** One queue's candidates split by need, each list consumed from its front. */
interface NeedGroup {
  need: Need;
  tasks: Candidate[];
  at: number;
  /** The workers that may take this need in this queue; undefined: every worker serving it. */
  pool: ReadonlySet<WorkerLoad> | undefined;
}

function groupsOf(candidates: Map<string, Candidate[]>, workers: readonly WorkerLoad[]) {
  const groups = new Map<string, NeedGroup[]>();
  for (const [queue, tasks] of candidates) {
    const serving = servingOf(workers, queue);
    const byNeed = new Map<Need, NeedGroup>();
    for (const t of tasks) {
      let g = byNeed.get(t.need);
      if (!g) {
        const able = eligible(serving, t.need);
        g = {
          need: t.need,
          tasks: [],
          at: 0,
          pool: able.length === serving.length ? undefined : new Set(able),
        };
        byNeed.set(t.need, g);
      }
      g.tasks.push(t);
    }
    groups.set(queue, [...byNeed.values()]);
  }
  return groups;
}

/** The group whose next task comes first in its queue (priority, then id) that `w` may take. */
function headFor(groups: NeedGroup[] | undefined, w: WorkerLoad): NeedGroup | undefined {
  let best: NeedGroup | undefined;
  for (const g of groups ?? []) {
    if (g.at >= g.tasks.length || (g.pool && !g.pool.has(w))) continue;
    const t = g.tasks[g.at]!;
    const b = best?.tasks[best.at];
    if (!b || t.priority > b.priority || (t.priority === b.priority && t.id < b.id)) best = g;
  }
  return best;
}

/** Which of its queues `w` takes from next, by its order; undefined when none has a task for it. */
function chooseQueue(w: WorkerLoad, groups: Map<string, NeedGroup[]>, rr: RoundRobin): string | undefined {
  if (w.queueOrder === 'strict' || w.queues.length === 1) {
    for (const q of w.queues) if (headFor(groups.get(q.name), w)) return q.name;
    return undefined;
  }
  let earned = rr.get(w.name);
  if (!earned) {
    earned = new Map();
    rr.set(w.name, earned);
  }
  let best: ServedQueue | undefined;
  let total = 0;
  for (const q of w.queues) {
    if (!headFor(groups.get(q.name), w)) continue;
    total += q.weight;
    earned.set(q.name, (earned.get(q.name) ?? 0) + q.weight);
    if (!best || earned.get(q.name)! > earned.get(best.name)!) best = q;
  }
  if (best) earned.set(best.name, earned.get(best.name)! - total);
  return best?.name;
}

/**
 * Plan assignments of `candidates` (per queue, in queue order) over `workers`. Does not modify
 * `workers`; `rr` carries the weighted round robin from round to round; `startAt` rotates tie-breaking.
 */
export function planAssignments(
  candidates: Map<string, Candidate[]>,
  workers: readonly WorkerLoad[],
  startAt = 0,
  rr: RoundRobin = new Map(),
): Plan {
  const n = workers.length;
  const groups = groupsOf(candidates, workers);
  const state = workers.map((w) => ({ w, out: w.outstanding, done: w.paused }));
  const assignments: Plan['assignments'] = [];
  for (;;) {
    let best: (typeof state)[number] | undefined;
    let bestRatio = Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const s = state[(startAt + i) % n]!;
      if (s.done || s.out >= s.w.capacity + s.w.prefetch) continue;
      const ratio = s.out / s.w.capacity;
      if (ratio < bestRatio || (ratio === bestRatio && best !== undefined && s.out < best.out)) {
        best = s;
        bestRatio = ratio;
      }
    }
    if (!best) break;
    const queue = chooseQueue(best.w, groups, rr);
    const g = queue === undefined ? undefined : headFor(groups.get(queue), best.w);
    if (!g) {
      best.done = true; // nothing left that it may take
      continue;
    }
    assignments.push({ task: g.tasks[g.at++]!.id, worker: best.w.name, queue: queue! });
    best.out++;
  }
  return { assignments };
}
/** Tasks picked, every queue together. */
export function countOf(picked: Map<string, Candidate[]>): number {
  let n = 0;
  for (const c of picked.values()) n += c.length;
  return n;
}

/** The workers serving each queue, worked out once per round. */
export function servingCache(loads: WorkerLoad[]): (queue: string) => WorkerLoad[] {
  const cache = new Map<string, WorkerLoad[]>();
  return (q) => {
    let s = cache.get(q);
    if (!s) {
      s = servingOf(loads, q);
      cache.set(q, s);
    }
    return s;
  };
}
