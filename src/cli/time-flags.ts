/** Flags that are durations or points in time, read the same way by every command. */
import ms from 'ms';
import { ErrorCodes, ZkfarmError } from '../errors.js';

function usage(message: string): ZkfarmError {
  return new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, message);
}

/** "30s", "5m", "2h", "1d", or whole ms ("1500") → ms. */
export function duration(flag: string, v: string): number {
  const n = /^\d+$/.test(v) ? Number(v) : ms(v as ms.StringValue);
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0)
    throw usage(`${flag}: expected a duration like 1500 (ms), 30s, 5m, 2h or 1d, got ${JSON.stringify(v)}`);
  return n;
}

/** A point in time: a duration back from now ("2h": two hours ago) or a date ("2026-12-03T10:00Z"). */
export function since(flag: string, v: string, now = Date.now()): number {
  if (/^\d+(\.\d+)?\s*[a-z]+$/i.test(v.trim())) return now - duration(flag, v.trim());
  const t = Date.parse(v);
  if (Number.isNaN(t))
    throw usage(
      `${flag}: expected how long ago (30m, 2h, 1d) or a date (2026-12-03T10:00:00Z), got ${JSON.stringify(v)}`,
    );
  return t;
}
