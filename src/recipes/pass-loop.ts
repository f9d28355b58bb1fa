/**
 * PassLoop: run a "look at everything and act" pass again whenever something may have changed, one
 * pass at a time, the way a reconciler does (a leader's schedules, services).
 *
 * Guarantees:
 * - Single flight: at most one pass runs at a time. A `kick()` during a pass makes exactly one more
 *   pass follow it (kicks coalesce), so a change seen while a pass runs is never lost.
 * - `wakeAt(time)` runs a pass at that time (ms since the epoch); the earliest wake asked for wins
 *   until it fires, so a pass can ask for the next time it has work without undoing an earlier one.
 * - A pass that throws is logged and retried after a backoff (src/backoff.ts, 100 ms doubling to 5 s),
 *   reset by the next pass that succeeds.
 * - Once `signal` aborts nothing more runs: timers are cleared, a pass in flight finishes on its own
 *   (its ZooKeeper writes fail or are fenced by the caller).
 *
 * No znodes of its own: the pass does the I/O. On SUSPENDED the pass's requests fail or wait, and the
 * backoff retries it; on LOST the owner's signal aborts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Backoff, type BackoffPolicy } from '../backoff.js';
import { describeError } from '../errors.js';
import type { Logger } from '../zk/connect-options.js';

export interface PassLoopOptions {
  /** What the log says failed ("schedule pass", "service reconciliation"). */
  what: string;
  signal: AbortSignal;
  log: Logger;
  /** @defaultValue 100 ms doubling to 5 s */
  backoff?: BackoffPolicy;
}

const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 5000 };
/** Node's timers hold 32-bit delays: a longer one fires at once. */
const MAX_TIMER_MS = 2_147_483_647;

export class PassLoop {
  readonly #pass: () => Promise<void>;
  readonly #opts: PassLoopOptions;
  #running = false;
  #again = false;
  #wake: NodeJS.Timeout | undefined;
  #wakeTime = Infinity;
  /** Passes that ran to the end (for tests and stats). */
  passes = 0;

  constructor(pass: () => Promise<void>, options: PassLoopOptions) {
    this.#pass = pass;
    this.#opts = options;
    options.signal.addEventListener('abort', () => this.#clearWake(), { once: true });
  }

  get #active(): boolean {
    return !this.#opts.signal.aborted;
  }

  /** Run a pass now, or right after the one running. */
  kick(): void {
    if (!this.#active) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    void this.#loop().finally(() => {
      this.#running = false;
    });
  }

  /** Run a pass at `time` (ms since the epoch), unless an earlier wake is already set. */
  wakeAt(time: number): void {
    if (!this.#active || (this.#wake && time >= this.#wakeTime)) return;
    this.#clearWake();
    this.#wakeTime = time;
    // A few ms late rather than early: a pass that wakes before its time would only sleep again.
    const delay = Math.min(Math.max(0, time - Date.now()) + 5, MAX_TIMER_MS);
    this.#wake = setTimeout(() => {
      this.#wake = undefined;
      this.#wakeTime = Infinity;
      this.kick();
    }, delay);
    this.#wake.unref();
  }

  #clearWake(): void {
    clearTimeout(this.#wake);
    this.#wake = undefined;
    this.#wakeTime = Infinity;
  }

  async #loop(): Promise<void> {
    const backoff = new Backoff(this.#opts.backoff ?? DEFAULT_BACKOFF);
    do {
      this.#again = false;
      try {
        await this.#pass();
        this.passes++;
        backoff.reset();
      } catch (err) {
        if (!this.#active) return;
        this.#opts.log.warn({ err }, `${this.#opts.what} failed; trying again: ${describeError(err)}`);
        this.#again = true;
        await sleep(backoff.next(), undefined, { signal: this.#opts.signal }).catch(() => {});
      }
    } while (this.#again && this.#active);
  }
}
