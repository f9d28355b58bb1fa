/**
 * The leader's view of /tasks: pure bookkeeping, no I/O, unit-tested alone.
 *
 * A task listed in /tasks is first unread: the leader knows its id only. It reads the unread oldest
 * first (`toRead`) and files each one it read (`ready`) by its queue and priority, keeping its data, so
 * that the order of a queue is known before any of it is handed out:
 *
 * - Order: per queue, the highest priority first, the lowest id first within one priority. Ids grow
 *   with submission; a task given back or retried keeps its id, so it goes ahead of newer ones of its
 *   priority. Priorities are strict: while a queue has ready tasks of a higher priority that can go,
 *   lower ones wait (a share between kinds of work is what separate queues with weights give).
 * - Read ahead, bounded: at most READ_AHEAD_TASKS tasks and READ_AHEAD_BYTES of their data are held
 *   read; the rest stays unread (in id order) until room frees. The order is exact among the tasks read.
 *   Tasks read from the inbox take at most INBOX_SHARE of it: the rest is kept for tasks loaded from the
 *   deep-queue backlog (`load`, backlog.ts), so a full read-ahead never stops a backlog from flowing.
 * - Backlog: a lane (queue, priority) with a backlog has a frontier, the lowest backlog id not loaded
 *   yet (backlog-index.ts); `pick` hands out nothing of the lane at or above it, so FIFO holds across
 *   inbox and backlog.
 * - Listings and our own moves: a listing sent before one of our multis may still show a task that
 *   multi moved. Each move records the client's request number of its multi (`mark`); a listing sent
 *   earlier does not bring the task back.
 * - In flight: ids being read or moved right now are not handed out twice.
 * - Delayed: a task whose `notBefore` is ahead is unread again, not read before its time. `nextWake`
 *   says when to look again, never more than MAX_SLEEP_MS ahead (a timer set further overflows Node's
 *   32-bit delay and fires at once).
 * - Needs: `pick` passes over ready tasks whose queue and need have no room now (`hasRoom`), so they do
 *   not hold back the tasks behind them, and `summary` counts them with the reason.
 * - Set aside: a task the leader cannot move (unreadable, undeletable, refused) is passed over, with its
 *   reason, until a retry time that backs off (src/backoff.ts).
 */
import { type BackoffPolicy, backoffDelay } from '../backoff.js';
import type { Need } from './assignment-policy.js';
import { backlogSummary } from './backlog-index.js';
import { IdLane as Lane } from './id-lane.js';
import type { BacklogLane, BlockedNeed, QueueSummary, QueueWait } from './queue-summary.js';
import { MAX_PRIORITY } from './queues.js';

export type { BacklogLane, BlockedNeed, QueueSummary, QueueWait } from './queue-summary.js';

/** The longest a leader sleeps before looking at delayed or set-aside tasks again. */
export const MAX_SLEEP_MS = 60_000;
/** Retries of a task set aside: 5 s, doubling to 5 minutes. */
export const SET_ASIDE_BACKOFF: BackoffPolicy = { initialMs: 5000, maxMs: 300_000, jitter: 'none' };
/** Most tasks held read (their data kept) at once. */
export const READ_AHEAD_TASKS = 10_000;
/** Most bytes of task data held read at once. */
export const READ_AHEAD_BYTES = 64 * 1024 * 1024;
/** The share of the read-ahead that tasks read from the inbox may take (the rest: the backlog's). */
export const INBOX_SHARE = 0.8;
/** Tasks listed by name in a summary's `setAside` (the count is exact). */
const LISTED_ASIDE = 20;

/** A task the leader may hand out, as `pick` offers it. */
export interface Candidate {
  id: string;
  need: Need;
  priority: number;
}

/** A task read and held: what it needs, and the data to move. */
export interface ReadyTask {
  queue: string;
  priority: number;
  need: Need;
  data: Buffer;
  version: number;
  /** Its backlog node, when it was loaded from the backlog (else it is /tasks/<id>). */
  from?: string;
}

/**
 * Why tasks of `queue` with `need` cannot go now (undefined: they can). A reason that holds back the
 * whole queue (paused, a cap) is the same for every need.
 */
export type WhyWaiting = (queue: string, need: Need) => { reason: string; byNeed: boolean } | undefined;

interface Aside {
  reason: string;
  retryAt: number;
  tries: number;
}

export class QueueView {
  #queue = new Set<string>();
  /** Unread ids in id order (ids read, moved or forgotten are skipped as they come up). */
  readonly #unread = new Lane();
  readonly #ready = new Map<string, ReadyTask>();
  #readyBytes = 0;
  /** Of the ready tasks, those loaded from the backlog (and their bytes). */
  #loaded = 0;
  #loadedBytes = 0;
  /** Queue → one lane per priority, for the ready tasks. */
  readonly #lanes = new Map<string, Lane[]>();
  readonly #moved = new Map<string, number>();
  readonly #inflight = new Set<string>();
  readonly #delayed = new Map<string, { at: number; queue: string }>();
  readonly #aside = new Map<string, Aside>();

  /** Tasks in /tasks as last listed, less those moved since. */
  get size(): number {
    return this.#queue.size;
  }

  /** Tasks read and held. */
  get readyCount(): number {
    return this.#ready.size;
  }

  has(id: string): boolean {
    return this.#queue.has(id);
  }

  /**
   * Take a listing of /tasks, sent when the client's request count was `mark`. Ids our multis moved
   * after that are left out; ids gone from the listing are forgotten. Returns the ids new to the view.
   */
  listed(children: Iterable<string>, mark: number): string[] {
    const next = new Set<string>();
    for (const id of children) {
      const movedAt = this.#moved.get(id);
      if (movedAt !== undefined && movedAt > mark) continue;
      next.add(id);
    }
    for (const [id, at] of this.#moved) if (at <= mark) this.#moved.delete(id);
    for (const id of this.#queue) if (!next.has(id)) this.#forget(id);
    const added: string[] = [];
    for (const id of next) if (!this.#queue.has(id)) added.push(id);
    this.#queue = next;
    added.sort();
    for (const id of added) this.#unread.add(id);
    return added;
  }

  /** The task left /tasks or the backlog (moved by us: `mark` is that multi's request number). */
  moved(id: string, mark?: number): void {
    const inbox = this.#queue.delete(id);
    this.#forget(id);
    if (mark !== undefined && inbox) this.#moved.set(id, mark);
  }

  begin(ids: Iterable<string>): void {
    for (const id of ids) this.#inflight.add(id);
  }

  end(ids: Iterable<string>): void {
    for (const id of ids) this.#inflight.delete(id);
  }

  /**
   * The oldest `n` unread tasks to read now (not in flight, not waiting for their time or a retry),
   * within the read-ahead bounds.
   */
  toRead(n: number, now: number): string[] {
    const inboxReady = this.#ready.size - this.#loaded;
    const room = Math.min(n, Math.floor(READ_AHEAD_TASKS * INBOX_SHARE) - inboxReady);
    if (room <= 0 || this.#readyBytes - this.#loadedBytes >= READ_AHEAD_BYTES * INBOX_SHARE) return [];
    const ids = this.#unread.live((id) => this.#queue.has(id) && !this.#ready.has(id));
    const out: string[] = [];
    for (let i = this.#unread.head; i < ids.length && out.length < room; i++) {
      const id = ids[i]!;
      if (!this.#queue.has(id) || this.#ready.has(id) || this.#inflight.has(id)) continue;
      if ((this.#delayed.get(id)?.at ?? 0) > now || (this.#aside.get(id)?.retryAt ?? 0) > now) continue;
      out.push(id);
    }
    return out;
  }

  /** Room for tasks loaded from the backlog (the whole read-ahead, less what is held). */
  get loadRoom(): number {
    if (this.#readyBytes >= READ_AHEAD_BYTES) return 0;
    return Math.max(0, READ_AHEAD_TASKS - this.#ready.size);
  }

  /** A task loaded from the backlog (`task.from`): hold it like one read from the inbox. */
  load(id: string, task: ReadyTask): void {
    if (this.#ready.has(id) || this.#queue.has(id)) return;
    this.#file(id, task);
  }

  /** The queues that have had tasks read (their lanes). */
  queues(): Iterable<string> {
    return this.#lanes.keys();
  }

  /** Tasks read from the inbox and held, not in flight (what the leader may shelve). */
  *inboxReady(): Iterable<[string, ReadyTask]> {
    for (const e of this.#ready) if (e[1].from === undefined && !this.#inflight.has(e[0])) yield e;
  }

  /** Held ready (read, or loaded) or being moved: not to be loaded again. */
  holds(id: string): boolean {
    return this.#ready.has(id) || this.#inflight.has(id);
  }

  /** The task was read: hold it, filed by its queue and priority. */
  ready(id: string, task: ReadyTask): void {
    if (!this.#queue.has(id)) return;
    this.#unready(id);
    this.#delayed.delete(id);
    this.#file(id, task);
  }

  #file(id: string, task: ReadyTask): void {
    this.#ready.set(id, task);
    this.#readyBytes += task.data.length;
    if (task.from !== undefined) {
      this.#loaded++;
      this.#loadedBytes += task.data.length;
    }
    let lanes = this.#lanes.get(task.queue);
    if (!lanes) {
      lanes = Array.from({ length: MAX_PRIORITY + 1 }, () => new Lane());
      this.#lanes.set(task.queue, lanes);
    }
    lanes[task.priority]!.add(id);
  }

  /** A ready task's data and place, if held. */
  get(id: string): ReadyTask | undefined {
    return this.#ready.get(id);
  }

  /** Read the task again (it changed since it was read); a backlog task is loaded again. */
  reread(id: string): void {
    const t = this.#ready.get(id);
    if (t === undefined) return;
    this.#unready(id);
    if (t.from === undefined) this.#unread.add(id);
  }

  /** The task may not run before `at` (ms since the epoch): unread until then. */
  delay(id: string, at: number, queue: string): void {
    if (!this.#queue.has(id)) return;
    if (this.#ready.has(id)) this.reread(id);
    this.#delayed.set(id, { at, queue });
  }

  /** Pass the task over, for `reason`, until a retry time that backs off with each time. */
  setAside(id: string, reason: string, now: number): Aside | undefined {
    if (!this.#queue.has(id)) return undefined;
    const tries = (this.#aside.get(id)?.tries ?? -1) + 1;
    const a: Aside = { reason, tries, retryAt: now + backoffDelay(SET_ASIDE_BACKOFF, tries) };
    this.#aside.set(id, a);
    return a;
  }

  /** The task was set aside before (and for what). */
  asideReason(id: string): string | undefined {
    return this.#aside.get(id)?.reason;
  }

  /**
   * Per queue, the ready tasks to hand out now, in order: at most `limit(queue)` of them, none in
   * flight or waiting for a retry, passing over those whose need has no room in their queue (`hasRoom`),
   * none at or above its lane's backlog frontier (`frontier`).
   */
  pick(
    now: number,
    limit: (queue: string) => number,
    hasRoom: (queue: string, need: Need) => boolean,
    frontier: (queue: string, priority: number) => string | undefined = () => undefined,
  ): Map<string, Candidate[]> {
    const out = new Map<string, Candidate[]>();
    const keep = (id: string) => this.#ready.has(id);
    for (const [queue, lanes] of this.#lanes) {
      const max = limit(queue);
      if (max <= 0) continue;
      const picked: Candidate[] = [];
      const room = new Map<Need, boolean>();
      for (let p = MAX_PRIORITY; p >= 0 && picked.length < max; p--) {
        const lane = lanes[p]!;
        if (lane.ids.length === lane.head) continue;
        const ids = lane.live(keep);
        const stop = frontier(queue, p);
        for (let i = lane.head; i < ids.length && picked.length < max; i++) {
          const id = ids[i]!;
          if (stop !== undefined && id >= stop) break;
          const t = this.#ready.get(id);
          if (t === undefined || t.priority !== p || this.#inflight.has(id)) continue;
          if ((this.#aside.get(id)?.retryAt ?? 0) > now) continue;
          let ok = room.get(t.need);
          if (ok === undefined) {
            ok = hasRoom(queue, t.need);
            room.set(t.need, ok);
          }
          if (ok) picked.push({ id, need: t.need, priority: p });
        }
      }
      if (picked.length > 0) out.set(queue, picked);
    }
    return out;
  }

  /** How long until a delayed or set-aside task may go (ms, at most MAX_SLEEP_MS); undefined: none waits. */
  nextWake(now: number): number | undefined {
    let soonest = Number.POSITIVE_INFINITY;
    for (const d of this.#delayed.values()) if (d.at < soonest) soonest = d.at;
    for (const a of this.#aside.values()) if (a.retryAt < soonest) soonest = a.retryAt;
    if (soonest === Number.POSITIVE_INFINITY) return undefined;
    return Math.min(MAX_SLEEP_MS, Math.max(0, soonest - now));
  }

  /**
   * What waits and why, per queue and per need; `why` says why a queue's tasks with a need wait.
   * `backlog`: each backlog lane's size (its tasks not loaded count as waiting, by the queue's reason).
   */
  summary(now: number, why: WhyWaiting, backlog: Iterable<BacklogLane> = []): QueueSummary {
    const queues = new Map<string, QueueWait>();
    const waitOf = (queue: string) => {
      let w = queues.get(queue);
      if (!w) {
        w = { queue, byPriority: {}, waiting: 0, delayed: 0, blocked: [] };
        queues.set(queue, w);
      }
      return w;
    };
    const byNeed = new Map<Need, BlockedNeed>();
    const reasons = new Map<string, ReturnType<WhyWaiting>>();
    let delayed = 0;
    for (const d of this.#delayed.values()) {
      if (d.at <= now) continue;
      delayed++;
      waitOf(d.queue).delayed++;
    }
    for (const [id, t] of this.#ready) {
      const w = waitOf(t.queue);
      w.waiting++;
      w.byPriority[t.priority] = (w.byPriority[t.priority] ?? 0) + 1;
      if (this.#aside.has(id)) continue;
      const key = `${t.queue}\n${t.need}`;
      if (!reasons.has(key)) reasons.set(key, why(t.queue, t.need));
      const r = reasons.get(key);
      if (r === undefined) continue;
      const needs = r.byNeed ? t.need : undefined;
      const b = w.blocked.find((x) => x.reason === r.reason && x.needs === needs);
      if (b) b.tasks++;
      else w.blocked.push({ reason: r.reason, tasks: 1, ...(needs ? { needs } : {}) });
      if (r.byNeed) {
        const n = byNeed.get(t.need) ?? { needs: t.need, tasks: 0, reason: r.reason };
        n.tasks++;
        byNeed.set(t.need, n);
      }
    }
    backlogSummary(this.#ready.values(), backlog, waitOf, why);
    const aside = [...this.#aside].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    return {
      blocked: [...byNeed.values()],
      delayed,
      setAside: aside.slice(0, LISTED_ASIDE).map(([id, a]) => ({ id, reason: a.reason })),
      setAsideCount: aside.length,
      unread: this.#queue.size - (this.#ready.size - this.#loaded),
      queues: [...queues.values()].sort((a, b) => (a.queue < b.queue ? -1 : 1)),
    };
  }

  #unready(id: string): void {
    const t = this.#ready.get(id);
    if (t === undefined) return;
    this.#ready.delete(id);
    this.#readyBytes -= t.data.length;
    if (t.from !== undefined) {
      this.#loaded--;
      this.#loadedBytes -= t.data.length;
    }
  }

  #forget(id: string): void {
    this.#unready(id);
    this.#delayed.delete(id);
    this.#aside.delete(id);
  }
}
