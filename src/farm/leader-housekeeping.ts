/**
 * The leader's housekeeping of results and keys, at the start of its term and then every
 * `retention.intervalMs` (default a minute): results still at flat /status paths moved into their
 * buckets (status-upgrade.ts), old results removed (retention.ts), the key buckets made and old
 * idempotency keys removed (key-sweeper.ts).
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
import { type RetentionOptions, RetentionSweeper } from './retention.js';
import { upgradeStatusLayout } from './status-upgrade.js';

export class LeaderHousekeeping {
  readonly #client: ZkClient;
  readonly #retention: RetentionOptions;
  readonly #log: Logger;
  readonly #signal: AbortSignal;
  /** The leader's `active`: its term goes on and its session is alive. */
  readonly #active: () => boolean;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    client: ZkClient,
    retention: RetentionOptions,
    log: Logger,
    signal: AbortSignal,
    active: () => boolean,
  ) {
    this.#client = client;
    this.#retention = retention;
    this.#log = log;
    this.#signal = signal;
    this.#active = active;
  }

  /** The first layout upgrade and key buckets now, then a pass every interval. */
  start(): void {
    void this.#upgradeLayout();
    const sweeper = new RetentionSweeper(this.#client, this.#retention, this.#signal);
    const keys = new KeySweeper(this.#client, this.#retention.keyWindowMs, this.#log, this.#signal);
    void keys.makeBuckets();
    this.#timer = setInterval(
      () => void this.#sweep(sweeper).then(() => keys.sweep()),
      this.#retention.intervalMs ?? 60_000,
    );
    this.#timer.unref?.();
  }

  stop(): void {
    clearInterval(this.#timer);
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
      const removed = await sweeper.sweep();
      if (removed > 0) this.#log.info({ removed }, 'removed old statuses');
    } catch (err) {
      if (this.#active()) this.#log.warn({ err }, `status retention sweep failed: ${describeError(err)}`);
    }
  }
}
