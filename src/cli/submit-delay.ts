/**
 * `runtime submit --delay 90s|5m|2h|40d` and `--at <ISO time>`: when the submitted tasks may start,
 * written into each task as `delayMs` (counted by the farm from the task's creation, so this machine's
 * clock does not matter) or `runAt` (the time as given, its zone required).
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { MAX_DELAY_MS, runAtMs } from '../farm/due-time.js';
import { duration } from './time-flags.js';

export interface DelayFlags {
  delay?: string;
  at?: string;
}

/** The fields the flags add to every task (empty without them). */
export function delayFields(opts: DelayFlags): { delayMs?: number; runAt?: string } {
  if (opts.delay !== undefined && opts.at !== undefined) throw usage('give either --delay or --at, not both');
  if (opts.delay !== undefined) {
    const ms = Math.round(duration('--delay', opts.delay));
    if (ms > MAX_DELAY_MS)
      throw usage(`--delay: at most 366 days (a task may wait that long), got ${JSON.stringify(opts.delay)}`);
    return { delayMs: ms };
  }
  if (opts.at !== undefined) {
    if (runAtMs(opts.at) === undefined)
      throw usage(
        `--at: expected an ISO-8601 time with its zone, like 2026-12-24T18:00:00Z or 2026-12-24T19:00+01:00, got ${JSON.stringify(opts.at)}`,
      );
    return { runAt: opts.at };
  }
  return {};
}

function usage(message: string): ZkfarmError {
  return new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, message);
}
