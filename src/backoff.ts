/**
 * The one backoff policy of zkfarm: exponential growth with jitter and a cap, as the Java client's
 * reconnects and Kazoo's `KazooRetry` do. Every loop that waits before trying again (reconnecting,
 * a failed assignment round, a completion that could not be written, a role thread restarted) asks a
 * `Backoff` for its next delay instead of computing its own.
 *
 * Pure: no timers, no clock. `random` is injectable so the delays can be tested exactly. It sits beside
 * errors.ts, below every layer, because the ZooKeeper client (the lowest layer) backs off too.
 *
 * Delay of attempt n (n = 0, 1, 2, ...): base = min(maxMs, initialMs × factor^n), then
 *   jitter 'full'  → uniform in [0, base]            (spreads a herd of clients the most)
 *   jitter 'equal' → uniform in [base/2, base]       (never retries at once; still spreads)
 *   jitter 'none'  → base
 */

export interface BackoffPolicy {
  /** Delay before the first retry, before jitter (ms). */
  initialMs: number;
  /** Largest delay, before jitter (ms). */
  maxMs: number;
  /** Growth per attempt. @defaultValue 2 */
  factor?: number;
  /** How the delay is spread. @defaultValue 'equal' */
  jitter?: 'full' | 'equal' | 'none';
}

/** The delay (ms) before retry number `attempt` (0 for the first retry) under `policy`. */
export function backoffDelay(
  policy: BackoffPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const factor = policy.factor ?? 2;
  // factor^attempt overflows to Infinity for large attempts; min() then gives maxMs, as wanted.
  const base = Math.min(policy.maxMs, policy.initialMs * factor ** Math.max(0, attempt));
  switch (policy.jitter ?? 'equal') {
    case 'none':
      return base;
    case 'full':
      return random() * base;
    case 'equal':
      return base / 2 + (random() * base) / 2;
  }
}

/** A sequence of delays for one retry loop: `next()` for each failure, `reset()` after a success. */
export class Backoff {
  readonly policy: BackoffPolicy;
  readonly #random: () => number;
  #attempt = 0;

  constructor(policy: BackoffPolicy, random: () => number = Math.random) {
    checkPolicy(policy);
    this.policy = policy;
    this.#random = random;
  }

  /** Failures since the last reset. */
  get attempts(): number {
    return this.#attempt;
  }

  /** The delay before the next try (ms); counts one more failure. */
  next(): number {
    return backoffDelay(this.policy, this.#attempt++, this.#random);
  }

  reset(): void {
    this.#attempt = 0;
  }
}

function checkPolicy(p: BackoffPolicy): void {
  const bad = (what: string, v: unknown) => {
    throw new RangeError(`backoff ${what}: expected a finite number, got ${String(v)}`);
  };
  if (!Number.isFinite(p.initialMs) || p.initialMs < 0) bad('initialMs ≥ 0', p.initialMs);
  if (!Number.isFinite(p.maxMs) || p.maxMs < p.initialMs) bad('maxMs ≥ initialMs', p.maxMs);
  if (p.factor !== undefined && (!Number.isFinite(p.factor) || p.factor < 1)) bad('factor ≥ 1', p.factor);
}
