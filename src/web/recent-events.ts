/**
 * The dashboard's recent task events: one event stream of the farm (farm/event-stream.ts, a session of
 * its own), the last `keep` events for a page that opens (`GET /api/events`), and every new event sent to
 * the open pages as `task-events` on the live feed, in batches (one frame per `BATCH_MS`, not one per
 * event: a farm running thousands of tasks a second must not flood the pages).
 *
 * The stream stops when it overflows (the dashboard fell behind) or its session cannot be had; it is
 * opened again after a pause, and the page is told (`{ gap: true }`) that events were missed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '../errors.js';
import { type EventStream, watchEvents } from '../farm/event-stream.js';
import type { TaskEvent } from '../farm/task-events.js';
import type { ConnectOptions, Logger } from '../zk/connect-options.js';
import type { EventHub } from './event-hub.js';

const BATCH_MS = 250;
const REOPEN_MS = 2000;

export class RecentEvents {
  readonly #options: ConnectOptions;
  readonly #hub: EventHub;
  readonly #log: Logger;
  readonly #keep: number;
  readonly #recent: TaskEvent[] = [];
  #batch: TaskEvent[] = [];
  #timer: NodeJS.Timeout | undefined;
  #stream: EventStream | undefined;
  #closed = false;
  /** Resolves once the first stream watches (or could not start). */
  readonly ready: Promise<void>;
  #resolveReady!: () => void;

  constructor(options: ConnectOptions, hub: EventHub, log: Logger, keep = 100) {
    this.#options = options;
    this.#hub = hub;
    this.#log = log;
    this.#keep = keep;
    this.ready = new Promise((r) => {
      this.#resolveReady = r;
    });
  }

  /** The last events, oldest first. */
  recent(): TaskEvent[] {
    return [...this.#recent];
  }

  start(): void {
    void this.#run();
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      this.#stream = watchEvents(this.#options);
      this.#stream.ready.then(this.#resolveReady, this.#resolveReady);
      try {
        for await (const ev of this.#stream) this.#add(ev);
      } catch (err) {
        if (this.#closed) return;
        this.#log.warn({ err }, `dashboard: task events stopped (${describeError(err)}); watching again`);
        this.#hub.broadcast('task-events', { gap: true, events: [] });
      }
      if (!this.#closed) await sleep(REOPEN_MS);
    }
  }

  #add(ev: TaskEvent): void {
    this.#recent.push(ev);
    if (this.#recent.length > this.#keep) this.#recent.shift();
    this.#batch.push(ev);
    // A batch carries at most `keep` events (the page shows no more than that): drop the older ones now.
    if (this.#batch.length > 2 * this.#keep) this.#batch = this.#batch.slice(-this.#keep);
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      const events = this.#batch.slice(-this.#keep);
      this.#batch = [];
      this.#hub.broadcast('task-events', { gap: false, events });
    }, BATCH_MS);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#resolveReady();
    clearTimeout(this.#timer);
    await this.#stream?.close();
  }
}
