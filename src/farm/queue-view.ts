/**
 * The leader's view of /tasks: pure bookkeeping, no I/O, unit-tested alone.
 *
 * - Order: oldest id first. Ids grow with submission; a task given back or retried keeps its id, so
 *   it goes ahead of newer ones.
 * - Listings and our own moves: a listing sent before one of our multis may still show a task that
 *   multi moved. Each move records the client's request number of its multi (`mark`); a listing sent
 *   earlier does not bring the task back.
 * - In flight: ids being read or moved right now are not handed out twice.
 * - Delayed: a task whose `notBefore` is ahead waits. `nextWake` says when to look again, never more
 *   than MAX_SLEEP_MS ahead (a timer set further overflows Node's 32-bit delay and fires at once).
 * - Needs: a task read once is remembered by what it needs (assignment-policy.ts); `pick` passes over
 *   those no ready worker can take now, so they do not hold back the tasks behind them, and
 *   `summary` counts them with the reason.
 * - Set aside: a task the leader cannot move (unreadable, undeletable, refused) is passed over, with its
 *   reason, until a retry time that backs off (src/backoff.ts).
 */
import { type BackoffPolicy, backoffDelay } from '../backoff.js';
import type { Need } from './assignment-policy.js';

/** The longest a leader sleeps before looking at delayed or set-aside tasks again. */
export const MAX_SLEEP_MS = 60_000;
/** Retries of a task set aside: 5 s, doubling to 5 minutes. */
export const SET_ASIDE_BACKOFF: BackoffPolicy = { initialMs: 5000, maxMs: 300_000, jitter: 'none' };
/** Tasks listed by name in a summary's `setAside` (the count is exact). */
const LISTED_ASIDE = 20;

export interface BlockedNeed {
  /** What the waiting tasks need: `shell` or `handler:<name>`. */
  needs: Need;
  tasks: number;
  /** Why no worker takes them now. */
  reason: string;
}

/** What the leader publishes about tasks that wait for a reason (in /master, for status and the dashboard). */
export interface QueueSummary {
  /** Tasks no ready worker can take now, by need. */
  blocked: BlockedNeed[];
  /** Tasks waiting for their `notBefore`. */
  delayed: number;
  /** Tasks the leader cannot move, the oldest first (at most 20 listed; `setAsideCount` is exact). */
  setAside: Array<{ id: string; reason: string }>;
  setAsideCount: number;
}

interface Aside {
  reason: string;
  retryAt: number;
  tries: number;
}

export class QueueView {
  #queue = new Set<string>();
  #order: string[] = [];
  #head = 0;
  #stale = false;
  readonly #moved = new Map<string, number>();
  readonly #inflight = new Set<string>();
  readonly #delayed = new Map<string, number>();
  readonly #needs = new Map<string, Need>();
  readonly #aside = new Map<string, Aside>();

  get size(): number {
    return this.#queue.size;
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
    this.#addToOrder(added);
    return added;
  }

  /** The task left /tasks (moved by us: `mark` is that multi's request number). */
  moved(id: string, mark?: number): void {
    this.#queue.delete(id);
    this.#forget(id);
    if (mark !== undefined) this.#moved.set(id, mark);
  }

  begin(ids: Iterable<string>): void {
    for (const id of ids) this.#inflight.add(id);
  }

  end(ids: Iterable<string>): void {
    for (const id of ids) this.#inflight.delete(id);
  }

  /** The task may not run before `at` (ms since the epoch). */
  delay(id: string, at: number): void {
    if (this.#queue.has(id)) this.#delayed.set(id, at);
  }

  /** Remember what the task needs (it was read). */
  need(id: string, need: Need): void {
    if (this.#queue.has(id)) this.#needs.set(id, need);
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
   * The oldest `n` tasks to read now: queued, not in flight, not waiting for their time or a retry,
   * and not known to need what no ready worker offers (`hasRoom`).
   */
  pick(n: number, now: number, hasRoom: (need: Need) => boolean): string[] {
    if (this.#stale) this.#resort();
    const out: string[] = [];
    const order = this.#order;
    while (this.#head < order.length && !this.#queue.has(order[this.#head]!)) this.#head++;
    const room = new Map<Need, boolean>();
    for (let i = this.#head; i < order.length && out.length < n; i++) {
      const id = order[i]!;
      if (!this.#queue.has(id) || this.#inflight.has(id)) continue;
      if ((this.#delayed.get(id) ?? 0) > now || (this.#aside.get(id)?.retryAt ?? 0) > now) continue;
      const need = this.#needs.get(id);
      if (need !== undefined) {
        let ok = room.get(need);
        if (ok === undefined) {
          ok = hasRoom(need);
          room.set(need, ok);
        }
        if (!ok) continue;
      }
      out.push(id);
    }
    if (this.#head > 4096 && this.#head > order.length / 2) {
      this.#order = order.slice(this.#head);
      this.#head = 0;
    }
    return out;
  }

  /** How long until a delayed or set-aside task may go (ms, at most MAX_SLEEP_MS); undefined: none waits. */
  nextWake(now: number): number | undefined {
    let soonest = Number.POSITIVE_INFINITY;
    for (const at of this.#delayed.values()) if (at < soonest) soonest = at;
    for (const a of this.#aside.values()) if (a.retryAt < soonest) soonest = a.retryAt;
    if (soonest === Number.POSITIVE_INFINITY) return undefined;
    return Math.min(MAX_SLEEP_MS, Math.max(0, soonest - now));
  }

  /** What waits and why; `blocked(need)` gives the reason a need cannot be served now, if so. */
  summary(now: number, blocked: (need: Need) => string | undefined): QueueSummary {
    const byNeed = new Map<Need, BlockedNeed>();
    const reasons = new Map<Need, string | undefined>();
    let delayed = 0;
    for (const id of this.#queue) {
      if ((this.#delayed.get(id) ?? 0) > now) {
        delayed++;
        continue;
      }
      const need = this.#needs.get(id);
      if (need === undefined || this.#aside.has(id)) continue;
      if (!reasons.has(need)) reasons.set(need, blocked(need));
      const reason = reasons.get(need);
      if (reason === undefined) continue;
      const b = byNeed.get(need) ?? { needs: need, tasks: 0, reason };
      b.tasks++;
      byNeed.set(need, b);
    }
    const aside = [...this.#aside].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    return {
      blocked: [...byNeed.values()],
      delayed,
      setAside: aside.slice(0, LISTED_ASIDE).map(([id, a]) => ({ id, reason: a.reason })),
      setAsideCount: aside.length,
    };
  }

  #forget(id: string): void {
    this.#delayed.delete(id);
    this.#needs.delete(id);
    this.#aside.delete(id);
  }

  /** New ids go at the end; an older id (a task given back or retried) makes the order sort again. */
  #addToOrder(added: string[]): void {
    if (added.length === 0 || this.#stale) {
      if (added.length > 0) this.#stale = true;
      return;
    }
    added.sort();
    const last = this.#order.length > this.#head ? this.#order[this.#order.length - 1]! : undefined;
    if (last !== undefined && added[0]! <= last) this.#stale = true;
    else for (const id of added) this.#order.push(id);
  }

  #resort(): void {
    this.#order = [...this.#queue].sort();
    this.#head = 0;
    this.#stale = false;
  }
}
