/**
 * Names that become path segments (worker names, task ids) and znode names.
 *
 * A safe name is 1-128 characters from `A-Z a-z 0-9 . _ -`, starting with a letter or digit. It can
 * never be `.` or `..`, never hold a `/`, a NUL or a space, so `<workdir>/<worker>/<task>` always
 * stays inside the work directory, and the same name is a valid znode name.
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** True when `name` can be used as a directory name and a znode name. */
export function isSafeName(name: unknown): name is string {
  // The leading-character rule already rules out `.` and `..`; they are checked again so that a
  // later change to the pattern cannot quietly reopen a path escape.
  return typeof name === 'string' && SAFE_NAME.test(name) && name !== '.' && name !== '..';
}

/** Throw `ZKFARM_INVALID_NAME` unless `name` is safe; `what` says which name it is ("task id"). */
export function assertSafeName(name: unknown, what = 'name'): asserts name is string {
  if (!isSafeName(name)) throw invalidName(name, what);
}

/** The error `assertSafeName` throws, for callers that report instead of throwing. */
export function invalidName(name: unknown, what: string): ZkfarmError {
  const shown =
    typeof name === 'string'
      ? JSON.stringify(name.length > 140 ? `${name.slice(0, 140)}…` : name)
      : typeof name;
  return new ZkfarmError(
    ErrorCodes.INVALID_NAME,
    `${what} ${shown} cannot be used as a directory or znode name: ` +
      'use 1-128 characters from A-Z a-z 0-9 . _ - starting with a letter or digit',
  );
}
