/**
 * The leader's per-queue controls, for one term: what /queues/<queue> says (pause, rate limit,
 * concurrency cap) and how much of each queue may go now.
 *
 * Znodes: watches the children of /queues (a one-shot watch, re-armed: a recursive one would hear of
 * every task of the backlog below it) and the data of each /queues/<queue> (a data watch each); reads /assign/<worker>/<task-id> of assignments it did not make itself (a former
 * leader's), once each, when a queue has a concurrency cap.
 *
 * - Pause: nothing of the queue is handed out; its tasks stay queued.
 * - Rate limit: a token bucket per queue (queues.ts) that starts empty with the term, so a new leader
 *   never lets a burst through. A task handed out takes a token.
 * - Concurrency cap: the queue's tasks assigned and not finished across the farm, counted from every
 *   worker's /assign listing (the roster's caches), the queue of each known from the assignment made
 *   (or read once). With a cap, a task handed out beyond it waits until one of the queue finishes.
 *
 * SUSPENDED: the controls stand as last seen. LOST, or the term's end (`signal`): every watch closes.
 */
import type { Logger } from '../zk/connect-options.js';
import type { Session } from '../zk/session.js';
import type { ChildrenWatcher, DataWatch } from '../zk/watchers.js';
import { assignPath, PATHS, parseTask, queueOf, queuePath } from './protocol.js';
import { NO_CONTROLS, parseControls, type QueueControls, TokenBucket } from './queues.js';

/** Assignments per worker, as the roster's caches hold them. */
export type AssignedIds = Iterable<[worker: string, ids: ReadonlySet<string>]>;

export class QueueGate {
  readonly #session: Session;
  readonly #signal: AbortSignal;
  readonly #changed: () => void;
  readonly #log: Logger;
  readonly #controls = new Map<string, QueueControls>();
  readonly #watches = new Map<string, DataWatch>();
  readonly #buckets = new Map<string, TokenBucket>();
  /** Queues whose rate limit held back tasks in the last round (they need a wake-up for their next token). */
  readonly #throttled = new Set<string>();
  /** Task id → its queue, for the assignments out there. */
  readonly #queueOfTask = new Map<string, string>();
  #list: ChildrenWatcher | undefined;
  #closed = false;

  constructor(session: Session, signal: AbortSignal, changed: () => void, log: Logger) {
    this.#session = session;
    this.#signal = signal;
    this.#changed = changed;
    this.#log = log;
    const close = () => this.#close();
    if (signal.aborted) close();
    else signal.addEventListener('abort', close, { once: true });
  }

  /** Watch /queues; resolves once it was listed. */
  async start(): Promise<void> {
    if (this.#closed) return;
    await this.#session.client.ensurePath(PATHS.queues);
    const list = this.#session.watchChildren(PATHS.queues, (c) => this.#sync(new Set(c.children)));
    this.#list = list;
    // Every queue's controls are known before the first round: a new leader never starts unlimited.
    await list.ready;
    const ended = new Promise<void>((r) => this.#signal.addEventListener('abort', () => r(), { once: true }));
    if (!this.#signal.aborted)
      await Promise.race([Promise.all([...this.#watches.values()].map((w) => w.ready)), ended]);
  }

  controls(queue: string): QueueControls {
    return this.#controls.get(queue) ?? NO_CONTROLS;
  }

  /** Some queue has a concurrency cap (then `counts` is needed). */
  get hasCaps(): boolean {
    for (const c of this.#controls.values()) if (c.concurrency !== null) return true;
    return false;
  }

  /** An assignment made now: its queue is known. */
  assigned(id: string, queue: string): void {
    this.#queueOfTask.set(id, queue);
  }

  /**
   * Tasks assigned and not finished, per queue. Assignments not made by this leader are read once to
   * learn their queue (one that cannot be read counts in the queue named '').
   */
  async counts(assignedIds: AssignedIds): Promise<Map<string, number>> {
    const assigned = [...assignedIds]; // walked more than once
    const unknown: Array<[string, string]> = [];
    let total = 0;
    for (const [worker, ids] of assigned) {
      total += ids.size;
      for (const id of ids) if (!this.#queueOfTask.has(id)) unknown.push([worker, id]);
    }
    if (unknown.length > 0) {
      const reads = await this.#session.client.getDataMany(unknown.map(([w, id]) => assignPath(w, id)));
      reads.forEach((r, i) => {
        const parsed = r instanceof Error ? undefined : parseTask(r.data);
        this.#queueOfTask.set(unknown[i]![1], parsed?.ok ? queueOf(parsed.task) : '');
      });
    }
    const out = new Map<string, number>();
    for (const [, ids] of assigned)
      for (const id of ids) {
        const q = this.#queueOfTask.get(id)!;
        out.set(q, (out.get(q) ?? 0) + 1);
      }
    // Finished assignments are forgotten now and then: the map stays about as large as what is out.
    if (this.#queueOfTask.size > 2 * total + 1000) {
      const live = new Set<string>();
      for (const [, ids] of assigned) for (const id of ids) live.add(id);
      for (const id of this.#queueOfTask.keys()) if (!live.has(id)) this.#queueOfTask.delete(id);
    }
    return out;
  }

  /** A round starts: the queues its rate limit holds back are counted again. */
  beginRound(): void {
    this.#throttled.clear();
  }

  /** How many tasks of `queue` may be handed out now (`running`: its assignments out, when capped). */
  allowance(queue: string, now: number, running: number): number {
    const c = this.controls(queue);
    if (c.paused) return 0;
    let n = Number.POSITIVE_INFINITY;
    if (c.concurrency !== null) n = Math.max(0, c.concurrency - running);
    const bucket = this.#buckets.get(queue);
    if (bucket) {
      const tokens = bucket.available(now);
      if (tokens === 0 && n > 0) this.#throttled.add(queue);
      n = Math.min(n, tokens);
    }
    return n;
  }

  /** `n` tasks of `queue` were handed out now. */
  took(queue: string, n: number, now: number): void {
    this.#buckets.get(queue)?.take(n, now);
  }

  /** Why `queue` holds its tasks back now, if it does. */
  why(queue: string, now: number, running: number): string | undefined {
    const c = this.controls(queue);
    if (c.paused) return `queue "${queue}" is paused`;
    if (c.concurrency !== null && running >= c.concurrency)
      return `queue "${queue}" has ${running} tasks out, its concurrency cap`;
    if (this.#buckets.get(queue)?.available(now) === 0)
      return `queue "${queue}" is held to its rate limit of ${c.rateLimit} tasks per second`;
    return undefined;
  }

  /**
   * Ms until a queue the last round held back for its rate limit earns a token (at least 1: a token
   * earned since that round still needs a round to hand it out); undefined: none was held back.
   */
  wakeIn(now: number): number | undefined {
    let soonest: number | undefined;
    for (const q of this.#throttled) {
      const b = this.#buckets.get(q);
      if (!b) continue;
      const ms = Math.max(1, b.msUntilToken(now));
      if (soonest === undefined || ms < soonest) soonest = ms;
    }
    return soonest;
  }

  /** Watch the queues listed; forget those gone. */
  #sync(children: ReadonlySet<string>): void {
    if (this.#closed) return;
    for (const name of children) if (!this.#watches.has(name)) this.#watch(name);
    for (const [name, w] of this.#watches) {
      if (children.has(name)) continue;
      w.close();
      this.#watches.delete(name);
      this.#set(name, undefined);
    }
  }

  #watch(name: string): void {
    this.#watches.set(
      name,
      this.#session.watchData(queuePath(name), ({ data }) => {
        if (this.#closed) return;
        if (data === null) return this.#set(name, undefined);
        const { controls, problem } = parseControls(data);
        if (problem)
          this.#log.warn(
            { queue: name },
            `${queuePath(name)}: ${problem}; those controls count as unset: write them again with \`runtime queue set\``,
          );
        this.#set(name, controls);
      }),
    );
  }

  #set(queue: string, c: QueueControls | undefined): void {
    const now = Date.now();
    if (c) this.#controls.set(queue, c);
    else this.#controls.delete(queue);
    const rate = c?.rateLimit ?? null;
    const bucket = this.#buckets.get(queue);
    if (rate === null) this.#buckets.delete(queue);
    else if (bucket) bucket.setRate(rate, now);
    else this.#buckets.set(queue, new TokenBucket(rate, now));
    this.#log.info({ queue, controls: c ?? NO_CONTROLS }, `queue "${queue}" controls`);
    this.#changed();
  }

  #close(): void {
    this.#closed = true;
    this.#list?.close();
    for (const w of this.#watches.values()) w.close();
  }
}
