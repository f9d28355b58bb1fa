/**
 * A task failure on its way to becoming a `failed` outcome: a stable code, a readable reason, and
 * whether a retry (perhaps on another worker) could help.
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';

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
