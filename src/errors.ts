/**
 * Every error zkfarm raises on purpose carries a stable `code` users can match on.
 *
 * - `ZkfarmError` codes start with `ZKFARM_` and say what happened; the message says what to do next.
 * - `ZkError` (in zk/errors.ts) carries ZooKeeper's own code name (`NO_NODE`, `NODE_EXISTS`, ...).
 *
 * Codes are part of the public contract: add new ones, never rename.
 */
export const ErrorCodes = {
  /** Java or the ZooKeeper jar could not be found. */
  ZK_NOT_FOUND: 'ZKFARM_ZK_NOT_FOUND',
  /** A ZooKeeper server we launched did not come up or exited. */
  ZK_SERVER_FAILED: 'ZKFARM_ZK_SERVER_FAILED',
  /** A connect string could not be reached within the allowed time. */
  ZK_UNREACHABLE: 'ZKFARM_ZK_UNREACHABLE',
  /** A ZooKeeper request did not answer within its timeout. */
  ZK_TIMEOUT: 'ZKFARM_ZK_TIMEOUT',
  /** The session was lost (expired, or disconnected longer than the session timeout). */
  SESSION_LOST: 'ZKFARM_SESSION_LOST',
  /** The supervisor was stopped while a call waited. */
  STOPPED: 'ZKFARM_STOPPED',
  /** An argument or option had the wrong shape. */
  INVALID_ARGUMENT: 'ZKFARM_INVALID_ARGUMENT',
  /** Task data is not a valid task. */
  INVALID_TASK: 'ZKFARM_INVALID_TASK',
  /** A task asked for a shell command and the worker does not allow shell. */
  SHELL_DISABLED: 'ZKFARM_SHELL_DISABLED',
  /** A task named a handler nobody registered. */
  UNKNOWN_HANDLER: 'ZKFARM_UNKNOWN_HANDLER',
  /** A handler threw or rejected. */
  HANDLER_FAILED: 'ZKFARM_HANDLER_FAILED',
  /** A task ran past its timeout and was killed. */
  TASK_TIMEOUT: 'ZKFARM_TASK_TIMEOUT',
  /** A handler returned something that cannot be stored as JSON. */
  RESULT_NOT_SERIALIZABLE: 'ZKFARM_RESULT_NOT_SERIALIZABLE',
  /** A shell command exited non-zero or could not start. */
  SHELL_FAILED: 'ZKFARM_SHELL_FAILED',
  /** The worker running a task vanished too many times. */
  WORKER_LOST: 'ZKFARM_WORKER_LOST',
  /** A role name is already held by a live role. */
  NAME_TAKEN: 'ZKFARM_NAME_TAKEN',
  /** A name cannot be used as a znode name or a directory name. */
  INVALID_NAME: 'ZKFARM_INVALID_NAME',
  /** The configuration file or flags are wrong. */
  CONFIG_INVALID: 'ZKFARM_CONFIG_INVALID',
  /** The work directory cannot be written. */
  WORKDIR_UNWRITABLE: 'ZKFARM_WORKDIR_UNWRITABLE',
  /** The work directory (or a directory or file below it) could let others redirect what is written. */
  WORKDIR_UNSAFE: 'ZKFARM_WORKDIR_UNSAFE',
  /** The task queue is too deep to accept more right now. */
  QUEUE_FULL: 'ZKFARM_QUEUE_FULL',
  /** A role thread exited while a call to it was pending. */
  ROLE_EXITED: 'ZKFARM_ROLE_EXITED',
  /** Waiting for a result took longer than allowed. */
  WAIT_TIMEOUT: 'ZKFARM_WAIT_TIMEOUT',
  /** A task was given up before it finished (its worker aborted it, or the executor closed). */
  TASK_ABORTED: 'ZKFARM_TASK_ABORTED',
  /** A task was cancelled on request (runtime cancel, Submitter.cancel, a create of /cancel/<id>). */
  TASK_CANCELLED: 'ZKFARM_TASK_CANCELLED',
  /** ZooKeeper refused access to the farm's nodes (they are access-controlled). */
  NOT_AUTHORIZED: 'ZKFARM_NOT_AUTHORIZED',
  /** The ZooKeeper server is older than zkfarm needs (3.6). */
  ZK_VERSION_UNSUPPORTED: 'ZKFARM_ZK_VERSION_UNSUPPORTED',
  /** The chroot of a connect string does not exist on ZooKeeper. */
  CHROOT_MISSING: 'ZKFARM_CHROOT_MISSING',
  /** With access control, a farm node cannot be given the farm identity's ACL (the role refuses to start). */
  NODE_NOT_SECURED: 'ZKFARM_NODE_NOT_SECURED',
  /**
   * TLS to ZooKeeper failed in a way retrying cannot mend: a certificate not trusted or not for the
   * server's name, a client certificate refused, a TLS client against a plaintext port or the reverse,
   * or PEM files that cannot be read.
   */
  ZK_TLS: 'ZKFARM_ZK_TLS',
  /** A waited-for task is neither queued, assigned nor finished (deleted, or its result was removed). */
  TASK_NOT_FOUND: 'ZKFARM_TASK_NOT_FOUND',
  /** The farm may not read a task's node (its ACL does not let the farm's identity read it). */
  TASK_UNREADABLE: 'ZKFARM_TASK_UNREADABLE',
  /** A queue's controls kept changing while we tried to change them (another admin): try again. */
  QUEUE_CONFLICT: 'ZKFARM_QUEUE_CONFLICT',
  /** A service definition does not fit the model (services/model.ts): the message names each problem. */
  INVALID_SERVICE: 'ZKFARM_INVALID_SERVICE',
  /** No service of that name exists. */
  SERVICE_NOT_FOUND: 'ZKFARM_SERVICE_NOT_FOUND',
  /** A service of that name exists already (create), or it changed meanwhile (update: read it again). */
  SERVICE_CONFLICT: 'ZKFARM_SERVICE_CONFLICT',
  /** A schedule does not fit the model (farm/schedules/model.ts): a bad cron expression, zone or task. */
  INVALID_SCHEDULE: 'ZKFARM_INVALID_SCHEDULE',
  /** No schedule of that name exists. */
  SCHEDULE_NOT_FOUND: 'ZKFARM_SCHEDULE_NOT_FOUND',
  /** A schedule of that name exists already (create), or it kept changing while we changed it. */
  SCHEDULE_CONFLICT: 'ZKFARM_SCHEDULE_CONFLICT',
  /** A task asked to be re-run has nothing to re-run (it did not fail, has no result, or its result keeps no task). */
  NOT_RETRYABLE: 'ZKFARM_NOT_RETRYABLE',
  /**
   * A task with the submitted key exists, but its id is not known yet (the answer to its submission was
   * lost and no worker has started it): nothing was created twice; submit again later to learn the id.
   */
  KEY_PENDING: 'ZKFARM_KEY_PENDING',
  /** A task event stream's consumer fell more than its buffer behind: the stream stopped (event-stream.ts). */
  EVENTS_OVERFLOW: 'ZKFARM_EVENTS_OVERFLOW',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class ZkfarmError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ZkfarmError';
    this.code = code;
  }
}

/** True when `err` is an Error carrying the given stable code. */
export function hasCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

/** A readable one-line reason from anything thrown. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** `ZKFARM_CONFIG_INVALID`: the options or files a user gave are wrong; the message says which and how. */
export function configError(message: string): ZkfarmError {
  return new ZkfarmError(ErrorCodes.CONFIG_INVALID, message);
}
