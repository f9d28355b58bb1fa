/**
 * Handlers every worker knows. They run inline on the calling thread: they are tiny, and the
 * benchmarks use `noop` and `echo` to measure the farm itself rather than the work.
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { Handler } from './types.js';

const MAX_SLEEP_MS = 2 ** 31 - 1;

/** An error a retry cannot fix (bad input): the outcome says `retryable: false`. */
function badInput(message: string): Error {
  return Object.assign(new Error(message), { retryable: false });
}

export const BUILTIN_HANDLERS: Readonly<Record<string, Handler>> = Object.freeze({
  /** Returns its input. */
  echo: (input) => input,
  /** Returns null. */
  noop: () => null,
  /** Waits `input` ms (a number >= 0), then returns null; stops early when the task is aborted. */
  sleep: async (input, context) => {
    if (typeof input !== 'number' || !Number.isFinite(input) || input < 0 || input > MAX_SLEEP_MS) {
      throw badInput(
        `sleep wants its input to be a number of ms from 0 to ${MAX_SLEEP_MS}, got ${JSON.stringify(input)}`,
      );
    }
    await sleepFor(input, null, { signal: context.signal });
    return null;
  },
  /** Fails with its input as the reason (retryable). */
  fail: (input) => {
    throw new Error(
      input === undefined || input === null
        ? 'failed on purpose (the fail handler)'
        : typeof input === 'string'
          ? input
          : JSON.stringify(input),
    );
  },
});
