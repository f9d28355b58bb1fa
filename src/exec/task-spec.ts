/**
 * The shape check a task gets before it runs (the farm checks too: a task that reaches the executor
 * malformed still ends as a failed outcome, `ZKFARM_INVALID_TASK`, never as a throw).
 */
import { ErrorCodes } from '../errors.js';
import { describeValue, TaskFailure } from './failure.js';
import type { TaskSpec } from './types.js';

export function invalidTask(message: string): TaskFailure {
  return new TaskFailure(ErrorCodes.INVALID_TASK, message, { retryable: false });
}

/** `spec` when it has exactly one of a non-empty `cmd` / `handler` and a sane `timeoutMs`. */
export function checkSpec(spec: TaskSpec | undefined): TaskSpec {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw invalidTask(`a task must be an object with a cmd or a handler, got ${describeValue(spec)}`);
  }
  const hasCmd = spec.cmd !== undefined;
  const hasHandler = spec.handler !== undefined;
  if (hasCmd && hasHandler) throw invalidTask('a task has both cmd and handler: give exactly one');
  if (!hasCmd && !hasHandler) throw invalidTask('a task has neither cmd nor handler: give exactly one');
  if (hasCmd && (typeof spec.cmd !== 'string' || spec.cmd.trim() === '')) {
    throw invalidTask(`a task's cmd must be a non-empty string, got ${describeValue(spec.cmd)}`);
  }
  if (hasHandler && (typeof spec.handler !== 'string' || spec.handler === '')) {
    throw invalidTask(`a task's handler must be a non-empty string, got ${describeValue(spec.handler)}`);
  }
  const t = spec.timeoutMs;
  if (t !== undefined && (typeof t !== 'number' || !Number.isFinite(t) || t < 0)) {
    throw invalidTask(
      `a task's timeoutMs must be a number of ms >= 0 (0: no timeout), got ${describeValue(t)}`,
    );
  }
  return spec;
}
