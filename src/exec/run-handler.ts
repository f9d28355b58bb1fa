/**
 * How a handler task runs: an inline handler on the calling thread (abandoned at its timeout when it
 * is async; a synchronous one cannot be interrupted), a module handler on the pool (its thread is
 * terminated at the timeout). Either way the result must be JSON, checked here or by the pool thread.
 */
import { describeError, ErrorCodes } from '../errors.js';
import { failureFromAbort, TaskFailure } from './failure.js';
import type { HandlerPool } from './handler-pool.js';
import { toJson } from './json.js';
import { readProgress } from './progress.js';
import type { Executed } from './result-file.js';
import { isThenable, type StopSwitch, untilAborted } from './stop-switch.js';
import type { TaskDir } from './task-dir.js';
import type { ExecRequest, Handler, HandlerContext } from './types.js';

/** One handler call: its task, its name and input, its directory and its stop switch. */
export interface HandlerRun {
  req: ExecRequest;
  name: string;
  input: unknown;
  dir: TaskDir;
  stop: StopSwitch;
}

/** A handler module's function, on the pool. */
export async function runPoolHandler(
  pool: HandlerPool,
  module: string,
  run: HandlerRun,
  dirMode: number,
): Promise<Executed> {
  const { req, name, dir } = run;
  let value: unknown;
  try {
    value = await pool.run(
      {
        module,
        handler: name,
        input: run.input,
        taskId: req.taskId,
        attempt: req.attempt,
        outputDir: dir.path,
        dirMode,
        ...(req.traceparent !== undefined ? { traceparent: req.traceparent } : {}),
      },
      { signal: run.stop.signal, onProgress: req.onProgress },
    );
  } finally {
    // The pool thread makes the directory when its handler asks for it.
    dir.noticeIfMade();
  }
  // The pool thread already proved it is JSON (and the value is parsed JSON), so no strict walk.
  return succeeded(value, JSON.stringify(value));
}

/** A built-in or `handlers` function, on this thread. */
export async function runInlineHandler(fn: Handler, run: HandlerRun): Promise<Executed> {
  const { req, name, dir, stop } = run;
  const context: HandlerContext = {
    taskId: req.taskId,
    attempt: req.attempt,
    get signal() {
      return stop.signal;
    },
    // Made on first use: a handler that writes no files costs the file system nothing.
    get outputDir() {
      return dir.make();
    },
    progress(report, message) {
      const p = readProgress(report, message);
      if (p) req.onProgress?.(p);
    },
    traceparent: req.traceparent,
  };
  let value: unknown;
  try {
    value = fn(run.input, context);
    // A synchronous handler (noop, echo) skips the promise race entirely: cheaper, and a timer
    // cannot have fired while it ran anyway.
    if (isThenable(value)) value = await untilAborted(Promise.resolve(value), stop.signal);
  } catch (err) {
    if (stop.aborted) throw failureFromAbort(stop.reason);
    if (err instanceof TaskFailure && err.code === ErrorCodes.WORKDIR_UNWRITABLE) throw err;
    throw new TaskFailure(
      ErrorCodes.HANDLER_FAILED,
      `handler ${JSON.stringify(name)} failed: ${describeError(err)}`,
      {
        retryable: (err as { retryable?: unknown } | null)?.retryable !== false,
        cause: err,
      },
    );
  }
  return succeeded(value, resultJson(name, value));
}

function resultJson(name: string, value: unknown): string {
  try {
    return toJson(value);
  } catch (err) {
    throw new TaskFailure(
      ErrorCodes.RESULT_NOT_SERIALIZABLE,
      `handler ${JSON.stringify(name)} returned a result that cannot be stored as JSON (${describeError(err)}): ` +
        'return plain data (objects, arrays, strings, finite numbers, booleans, null)',
      { retryable: false },
    );
  }
}

function succeeded(value: unknown, json: string): Executed {
  return {
    outcome: { state: 'succeeded', result: value === undefined ? null : value, startedAt: 0, finishedAt: 0 },
    resultJson: json,
  };
}
