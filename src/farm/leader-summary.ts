/**
 * What the leading master says about its queues (master.ts writes it in /master, under "queue"): per
 * queue, what waits and why, what runs, and the tasks due later; looked at once a second at most after
 * rounds (a summary walks the whole queue) and published only when it changed.
 *
 * Znodes: none of its own; the counts of tasks out come from the queue gate (queue-gate.ts, which reads
 * the tasks under /assign whose queue it does not know), and `publish` writes /master.
 *
 * SUSPENDED: a count that fails leaves the last one in use. LOST, or the term's end: nothing is published
 * once the leader is no longer active, and the leader calls `stop()` when its term's signal aborts.
 */
import { blockedReason, servingCache } from './assignment-policy.js';
import type { Backlog } from './backlog.js';
import type { DelayedArea } from './delayed-area.js';
import type { QueueGate } from './queue-gate.js';
import type { QueueSummary, QueueView } from './queue-view.js';
import type { WorkerRoster } from './worker-roster.js';

/** A published summary is rewritten at most this often. */
const PUBLISH_EVERY_MS = 1000;

/** The leader's parts a summary reads. */
export interface SummaryParts {
  view: QueueView;
  gate: QueueGate;
  roster: WorkerRoster;
  backlog: Backlog;
  delays: DelayedArea;
}

/** What waits in /tasks for a reason, and why, and what runs, per queue (`counts`: each queue's tasks out). */
export function queueSummary(
  { view, gate, roster, backlog, delays }: SummaryParts,
  counts: ReadonlyMap<string, number>,
): QueueSummary {
  const now = Date.now();
  const serving = servingCache(roster.loads());
  const running = Object.fromEntries([...counts].filter(([q, n]) => q !== '' && n > 0));
  const summary = view.summary(
    now,
    (queue, need) => {
      // Paused first: an operator's choice says more than a missing worker.
      const held = gate.why(queue, now, counts.get(queue) ?? 0);
      if (held === undefined && !roster.serves(queue))
        return { reason: `no live worker serves queue "${queue}"`, byNeed: false };
      if (held !== undefined) return { reason: held, byNeed: false };
      const r = blockedReason(serving(queue), need);
      return r === undefined ? undefined : { reason: r, byNeed: true };
    },
    backlog.index.lanes(),
  );
  // The due-time area's tasks count as delayed (by slot: their queues are not read until due).
  return {
    ...summary,
    running,
    delayed: summary.delayed + delays.count(),
    delayedArea: delays.count(),
  };
}

/** What the publisher needs of its leader. */
export interface PublishHost {
  /** The leader's `active`: its term goes on and its session is alive. */
  active(): boolean;
  /** Each queue's tasks out, counted again; undefined when the count failed. */
  count(): Promise<Map<string, number> | undefined>;
  /** The summary to publish, with the new count when there is one (the leader keeps it). */
  summary(running: Map<string, number> | undefined): QueueSummary;
}

/** Publishes the leader's summary after rounds, when it changed, at most once every PUBLISH_EVERY_MS. */
export class SummaryPublisher {
  readonly #publish: (summary: QueueSummary) => void;
  readonly #host: PublishHost;
  #timer: NodeJS.Timeout | undefined;
  #published = '';
  #publishedAt = 0;

  constructor(publish: (summary: QueueSummary) => void, host: PublishHost) {
    this.#publish = publish;
    this.#host = host;
  }

  /** Called after rounds: one pending look at the summary at a time. */
  schedule(): void {
    if (!this.#host.active() || this.#timer) return;
    const wait = Math.max(0, this.#publishedAt + PUBLISH_EVERY_MS - Date.now());
    this.#timer = setTimeout(async () => {
      if (!this.#host.active()) return;
      this.#publishedAt = Date.now();
      const running = await this.#host.count();
      this.#timer = undefined;
      if (!this.#host.active()) return;
      const summary = this.#host.summary(running);
      const text = JSON.stringify(summary);
      if (text === this.#published) return;
      this.#published = text;
      this.#publish(summary);
    }, wait);
    this.#timer.unref?.();
  }

  stop(): void {
    clearTimeout(this.#timer);
  }
}
