/**
 * The signals `runtime` answers while it runs a farm (SIGINT, SIGTERM, SIGHUP): the first asks for a
 * stop and arms its bound, a second ends everything at once.
 */
import { ROLE_STOP_GRACE_MS } from '../host/host.js';
import { EXIT_FAILURE, type Io } from './common.js';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * How long past --drain-timeout a stop may take before runtime ends at once: the roles' own grace
 * (ROLE_STOP_GRACE_MS, after which their threads are terminated), then the dashboard and the embedded
 * ZooKeeper (stopped with SIGTERM, then SIGKILL after 5 s).
 */
export const STOP_BOUND_MS = ROLE_STOP_GRACE_MS + 10_000;

/**
 * The signals runtime answers. The first asks for a stop and arms its bound (--drain-timeout +
 * STOP_BOUND_MS, docs/reliability.md), past which runtime stops at once; a second stops at once.
 */
export class StopSignals {
  count = 0;
  readonly requested: Promise<'stop'>;
  #request!: () => void;

  constructor(
    private readonly io: Io,
    private readonly drainTimeout: number,
    private readonly atOnce: (code: number) => void,
  ) {
    this.requested = new Promise((resolve) => {
      this.#request = () => resolve('stop');
    });
    for (const sig of SIGNALS) process.on(sig, this.#onSignal);
  }

  readonly #onSignal = (sig: NodeJS.Signals) => {
    if (++this.count > 1) {
      this.io.err(`runtime: ${sig} again: stopping at once`);
      this.atOnce(130);
      return;
    }
    this.io.err(
      `runtime: ${sig}: stopping (workers drain up to ${this.drainTimeout} ms); press Ctrl-C again to stop at once`,
    );
    const bound = this.drainTimeout + STOP_BOUND_MS;
    setTimeout(() => {
      this.io.err(`runtime: the stop did not end within ${bound} ms; stopping at once`);
      this.atOnce(EXIT_FAILURE);
    }, bound).unref();
    this.#request();
  };

  close(): void {
    for (const sig of SIGNALS) process.removeListener(sig, this.#onSignal);
  }
}
