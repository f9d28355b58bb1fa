/**
 * The leader's housekeeping of results and keys, at the start of its term and then every
 * `retention.intervalMs` (default a minute): results still at flat /status paths moved into their
 * buckets (status-upgrade.ts), old results removed (retention.ts), the key buckets made and old
 * idempotency keys removed (key-sweeper.ts).
 *
 * A pass removes old results until the sweeper has caught up (`sweepUntilCaughtUp`), not one bounded
 * sweep per interval: a farm finishing more than SWEEP_MAX results a minute would otherwise keep more
 * each minute, without end. A busy farm also gets a pass sooner than the interval: once the leader has
 * assigned `max(RESULTS_PER_PASS_MIN, maxCount)` tasks since the last one (checked every second), so
 * that its results are removed about maxCount at a time, not hundreds of thousands at the minute, and
 * a busy farm keeps at most about twice maxCount.
 * One pass at a time: a tick that finds the last pass still going is skipped.
 *
 * Znodes: /status (its buckets and the results in them), /keys.
 *
 * SUSPENDED: a pass that fails is logged and the next one tries again. LOST, or the term's end: the
 * leader calls `stop()` when its term's signal aborts, which ends the timer; a pass under way ends with
 * the signal, and its failure is not logged once the leader is no longer active.
 */
import { describeError } from '../errors.js';
import type { ZkClient } from '../zk/client.js';
import type { Logger } from '../zk/connect-options.js';
import { KeySweeper } from './key-sweeper.js';
import {
  type RetentionOptions,
  RetentionSweeper,
  type SweepTuning,
  sweepUntilCaughtUp,
} from './retention.js';
import { upgradeStatusLayout } from './status-upgrade.js';

/** How often the leader looks at how many tasks it assigned since the last pass (ms). */
const BUSY_CHECK_MS = 1000;
/** A pass after this many assigned tasks at least, whatever `maxCount`. */
const RESULTS_PER_PASS_MIN = 1000;

/** What the leader gives its housekeeping besides the retention options. */
export interface HousekeepingHooks extends SweepTuning {
  /** Tasks assigned so far this term: a pass once enough were (see the module comment). */
  assigned?: () => number;
}

export class LeaderHousekeeping {
  readonly #client: ZkClient;
  readonly #retention: RetentionOptions;
  readonly #log: Logger;
  readonly #signal: AbortSignal;
  /** The leader's `active`: its term goes on and its session is alive. */
  readonly #active: () => boolean;
  readonly #hooks: HousekeepingHooks;
  #timer: NodeJS.Timeout | undefined;
  #busyTimer: NodeJS.Timeout | undefined;
  #passing = false;
  /** The leader's `assigned` when the last pass started. */
  #assignedAtPass = 0;

  constructor(
    client: ZkClient,
    retention: RetentionOptions,
    log: Logger,
    signal: AbortSignal,
    active: () => boolean,
    hooks: HousekeepingHooks = {},
  ) {
    this.#client = client;
    this.#retention = retention;
    this.#log = log;
    this.#signal = signal;
    this.#active = active;
    this.#hooks = hooks;
  }

  /** The first layout upgrade and key buckets now, then a pass every interval. */
  start(): void {
    void this.#upgradeLayout();
    const sweeper = new RetentionSweeper(this.#client, this.#retention, this.#signal, this.#hooks);
    const keys = new KeySweeper(this.#client, this.#retention.keyWindowMs, this.#log, this.#signal);
    void keys.makeBuckets();
    const pass = async () => {
      if (this.#passing) return;
      this.#passing = true;
      this.#assignedAtPass = this.#hooks.assigned?.() ?? 0;
      try {
        await this.#sweep(sweeper);
        await keys.sweep();
      } finally {
        this.#passing = false;
      }
    };
    this.#timer = setInterval(() => void pass(), this.#retention.intervalMs ?? 60_000);
    this.#timer.unref?.();
    this.#busyTimer = this.#whenBusy(pass);
  }

  stop(): void {
    clearInterval(this.#timer);
    clearInterval(this.#busyTimer);
  }

  /** A pass once the leader has assigned enough tasks since the last look that started one. */
  #whenBusy(pass: () => Promise<void>): NodeJS.Timeout | undefined {
    const assigned = this.#hooks.assigned;
    if (!assigned) return undefined;
    const every = Math.max(RESULTS_PER_PASS_MIN, this.#retention.maxCount ?? 10_000);
    const timer = setInterval(() => {
      if (!this.#passing && assigned() - this.#assignedAtPass >= every) void pass();
    }, BUSY_CHECK_MS);
    timer.unref?.();
    return timer;
  }

  /** Move results still at flat /status paths into their buckets (status-upgrade.ts). */
  async #upgradeLayout(): Promise<void> {
    try {
      await upgradeStatusLayout(this.#client, this.#log, this.#signal);
    } catch (err) {
      if (this.#active())
        this.#log.warn(
          { err },
          `moving results into buckets failed: ${describeError(err)}; the next sweep retries`,
        );
    }
  }

  async #sweep(sweeper: RetentionSweeper): Promise<void> {
    await this.#upgradeLayout();
    try {
      const pause = this.#hooks.catchUpPauseMs;
      const removed = await sweepUntilCaughtUp(sweeper, pause, this.#signal);
      if (removed > 0) this.#log.info({ removed }, 'removed old statuses');
    } catch (err) {
      if (this.#active()) this.#log.warn({ err }, `status retention sweep failed: ${describeError(err)}`);
    }
  }
}
