/**
 * The fence's bound, in numbers (docs/services.md, "Guarantees and their bounds"): when a worker that
 * hears nothing from ZooKeeper stops an instance (runner.ts), and how long the leader must wait after
 * the worker's session expired before it may place a replacement (reconciler.ts). Pure: no I/O.
 *
 * ZooKeeper expires a session no earlier than T after it last heard from it, and the worker's last
 * answer came after that. A worker stops an instance at S = stopAfterSilence of silence, so it is gone
 * by S + stopGrace; the expiry comes no earlier than T − margin after that same last answer, so the
 * leader waits what is left, S + stopGrace − (T − margin), after it sees the worker gone (0 when the
 * stop fits before the expiry).
 */
/** Stop instances this long before the session's expiry could be reached (ms, at most T/4). */
export const FENCE_MARGIN_MS = 1000;

/** Silence (ms without an answer) after which an instance with this stop grace is stopped. */
export function stopAfterSilence(sessionTimeout: number, stopGraceMs: number): number {
  const margin = Math.min(FENCE_MARGIN_MS, sessionTimeout / 4);
  return Math.max(sessionTimeout / 2, sessionTimeout - margin - stopGraceMs);
}

/**
 * How long after its worker's session expired an instance may still run at worst (0 when it is surely
 * stopped by then): the leader waits this long before placing a replacement.
 */
export function stillRunsAfterExpiry(sessionTimeout: number, stopGraceMs: number): number {
  const margin = Math.min(FENCE_MARGIN_MS, sessionTimeout / 4);
  return Math.max(0, stopAfterSilence(sessionTimeout, stopGraceMs) + stopGraceMs - (sessionTimeout - margin));
}
