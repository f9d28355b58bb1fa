/**
 * A task failure on its way to becoming a `failed` outcome: a stable code, a readable reason, and
 * whether a retry (perhaps on another worker) could help.
 */
import { describeError, ErrorCodes, ZkfarmError } from '../errors.js';
import { invalidName } from './names.js';
import type { ExecOutcome } from './types.js';

export class TaskFailure extends ZkfarmError {
  readonly retryable: boolean;
  /** A shell task's exit code, when there was one. */
  readonly exitCode: number | null | undefined;

  constructor(
    code: string,
    message: string,
    options: { retryable: boolean; exitCode?: number | null; cause?: unknown },
  ) {
    super(code, message, { cause: options.cause });
    this.name = 'TaskFailure';
    this.retryable = options.retryable;
    this.exitCode = options.exitCode;
  }
}

/**
 * The failure for a task stopped through an AbortSignal: the signal's reason when it is one of ours
 * (a timeout is `ZKFARM_TASK_TIMEOUT`), else `ZKFARM_TASK_ABORTED` quoting the reason.
 */
export function failureFromAbort(reason: unknown): TaskFailure {
  if (reason instanceof TaskFailure) return reason;
  if (reason instanceof ZkfarmError) return new TaskFailure(reason.code, reason.message, { retryable: true });
  const why = reason instanceof Error ? reason.message : reason === undefined ? '' : String(reason);
  return new TaskFailure(ErrorCodes.TASK_ABORTED, why ? `task was aborted: ${why}` : 'task was aborted', {
    retryable: true,
  });
}

/** The abort reason for a task that ran past its timeout. */
export function timeoutFailure(timeoutMs: number): TaskFailure {
  return new TaskFailure(
    ErrorCodes.TASK_TIMEOUT,
    `task ran past its timeout of ${timeoutMs} ms and was stopped`,
    {
      retryable: true,
    },
  );
}

/** A received value as a message shows it: strings quoted, numbers as is, objects by kind. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

export function nameFailure(name: unknown, what: string): TaskFailure {
  return new TaskFailure(ErrorCodes.INVALID_NAME, invalidName(name, what).message, { retryable: false });
}

export function toFailure(err: unknown): TaskFailure {
  if (err instanceof TaskFailure) return err;
  if (err instanceof ZkfarmError) {
    // Configuration does not fix itself; anything else (an unwritable workdir) might, elsewhere.
    return new TaskFailure(err.code, err.message, { retryable: err.code !== ErrorCodes.CONFIG_INVALID });
  }
  return new TaskFailure(
    ErrorCodes.HANDLER_FAILED,
    `unexpected error while running the task: ${describeError(err)}`,
    {
      retryable: true,
      cause: err,
    },
  );
}

/**
 * Longest `error` an outcome carries. A reason is for people; a handler that throws a 2 MB message
 * must not turn into a status too big for a znode (ZooKeeper drops the connection of such a request).
 */
export const MAX_ERROR_CHARS = 4000;

/** `message` cut to `MAX_ERROR_CHARS`, saying how much was cut. */
export function shortenError(message: string): string {
  if (message.length <= MAX_ERROR_CHARS) return message;
  return `${message.slice(0, MAX_ERROR_CHARS)}… (${message.length - MAX_ERROR_CHARS} more characters cut)`;
}

export function failed(failure: TaskFailure, startedAt: number, outputDir?: string): ExecOutcome {
  const outcome: ExecOutcome = {
    state: 'failed',
    error: shortenError(failure.message),
    errorCode: failure.code,
    retryable: failure.retryable,
    startedAt,
    finishedAt: Date.now(),
  };
  if (failure.exitCode !== undefined) outcome.exitCode = failure.exitCode;
  if (outputDir !== undefined) outcome.outputDir = outputDir;
  return outcome;
}
