/**
 * Which errors of a supervisor's action end the supervisor instead of being retried on the same
 * session: those marked `fatal`, and ZooKeeper's refusals of this identity (retrying cannot help).
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { isZkError } from './errors.js';

/** Mark an error as fatal: thrown from an action, it stops the supervisor instead of being retried. */
export function fatal<E extends Error>(err: E): E {
  (err as E & { fatal: boolean }).fatal = true;
  return err;
}

/** The error that stops the supervisor for this failure of its action, or undefined: retry. */
export function stoppingError(err: unknown): Error | undefined {
  if ((err as { fatal?: boolean } | undefined)?.fatal) return err as Error;
  if (!isZkError(err, 'NO_AUTH', 'AUTH_FAILED', 'INVALID_ACL')) return undefined;
  return fatal(
    new ZkfarmError(
      ErrorCodes.NOT_AUTHORIZED,
      `ZooKeeper refused ${err.op} ${err.path ?? ''} (${err.code}): the nodes are access-controlled; ` +
        "connect with the farm's identity (--auth user:password)",
      { cause: err },
    ),
  );
}
