/**
 * The tasks a worker holds: pure bookkeeping, no I/O.
 *
 * A task is held from the moment its assignment is seen until its completion is written: `reading`
 * (its assignment is being read), `queued` (read, waiting for a free slot: prefetched), `running`,
 * `completing` (its outcome waits in the completion queue). Each remembers the session on which its
 * assignment was read and the assignment's creation zxid (which assignment it is).
 *
 * A task that has not started belongs to its session: when that session is lost the master gives it
 * back, so the worker must not start it (`dropUnstarted`). A running task goes on (execution is at
 * least once); its completion goes to the next session, where it is fenced if the task moved on.
 */
import type { Task } from './protocol.js';

export type HeldState = 'reading' | 'queued' | 'running' | 'completing';

export interface Held {
  id: string;
  state: HeldState;
  task: Task;
  /** Version of the assignment node when read. */
  version: number;
  /** Creation zxid of the assignment node: which assignment this is. */
  czxid: bigint;
  /** The session its assignment was read on. */
  session: string;
}

export class HeldTasks {
  readonly #held = new Map<string, Held>();

  get size(): number {
    return this.#held.size;
  }

  get(id: string): Held | undefined {
    return this.#held.get(id);
  }

  has(id: string): boolean {
    return this.#held.has(id);
  }

  /**
   * Reserve ids whose assignments are about to be read (a second report of them is then ignored).
   * Returns a placeholder for each id not held yet.
   */
  reserve(ids: readonly string[], session: string): Held[] {
    const out: Held[] = [];
    for (const id of ids) {
      if (this.#held.has(id)) continue;
      const h: Held = { id, state: 'reading', task: {}, version: -1, czxid: 0n, session };
      this.#held.set(id, h);
      out.push(h);
    }
    return out;
  }

  /** Is `h` still what is held for its id (not dropped, not replaced by a newer assignment)? */
  current(h: Held): boolean {
    return this.#held.get(h.id) === h;
  }

  /** Let go of a task (its completion is written, or it will not run here). */
  release(id: string, only?: Held): void {
    if (only === undefined || this.#held.get(id) === only) this.#held.delete(id);
  }

  /**
   * The assignment node is gone (given back, taken away, replaced): a task that has not started is
   * dropped; one running or completing is not (its completion is fenced, or it was our own delete).
   */
  removed(id: string): boolean {
    const h = this.#held.get(id);
    if (!h || h.state === 'running' || h.state === 'completing') return false;
    this.#held.delete(id);
    return true;
  }

  /** Drop every task not started yet (its session was lost): returns their ids. */
  dropUnstarted(): string[] {
    const dropped: string[] = [];
    for (const h of this.#held.values()) {
      if (h.state === 'queued' || h.state === 'reading') {
        this.#held.delete(h.id);
        dropped.push(h.id);
      }
    }
    return dropped;
  }

  /** Every task held, in the order they were read (queued ones run in that order). */
  values(): IterableIterator<Held> {
    return this.#held.values();
  }

  count(state: HeldState): number {
    let n = 0;
    for (const h of this.#held.values()) if (h.state === state) n++;
    return n;
  }
}
