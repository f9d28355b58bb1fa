/**
 * User code called from the client's frame loop (watchers, persistent listeners, `onAnswer`, event
 * listeners) runs here, one callback at a time, each in its own try/catch.
 *
 * Why: an exception thrown by user code inside the loop that reads answers would look like a protocol
 * error (the connection would be dropped, requests in flight would fail with CONNECTION_LOSS) and would
 * stop the loop before the other callbacks of the same event ran. The Java client runs callbacks on an
 * event thread and logs what they throw; Kazoo does the same on its handler. zkfarm keeps them in the
 * loop (a listing's `onAnswer` must run before any later notification) but contains their failures:
 * a callback that throws is reported to `report` and everything else goes on.
 */
import type { EventEmitter } from 'node:events';

/** Where a callback's failure is reported: the error and what kind of callback threw. */
export type CallbackErrorReporter = (err: unknown, where: string) => void;

/** Call `fn(...args)`; if it throws, report the error instead of letting it out. */
export function callSafely<A extends unknown[]>(
  fn: (...args: A) => unknown,
  args: A,
  where: string,
  report: CallbackErrorReporter,
): void {
  try {
    fn(...args);
  } catch (err) {
    report(err, where);
  }
}

/**
 * Report a callback's failure as the emitter's `callbackError` event, or as a process warning when
 * nobody listens (a failure is never silent, and never thrown back into the frame loop).
 */
export function reportCallbackError(emitter: EventEmitter, err: unknown, where: string): void {
  const reported = emitSafely(emitter, 'callbackError', [err, where], () => {
    // A reporter that throws has nowhere left to report to.
  });
  if (!reported)
    process.emitWarning(
      `a ZooKeeper ${where} threw: ${(err as Error)?.stack ?? String(err)}`,
      'ZkfarmCallbackError',
    );
}

/**
 * Emit `event` to every listener, each called on its own (one that throws does not keep the others from
 * hearing the event). `once` listeners are removed as `emit` would. Returns true if it had listeners.
 */
export function emitSafely(
  emitter: EventEmitter,
  event: string,
  args: unknown[],
  report: CallbackErrorReporter,
): boolean {
  // rawListeners keeps the `once` wrappers, which remove themselves when called.
  const listeners = emitter.rawListeners(event) as Array<(...a: unknown[]) => unknown>;
  for (const fn of listeners) callSafely(fn.bind(emitter), args, `'${event}' listener`, report);
  return listeners.length > 0;
}
