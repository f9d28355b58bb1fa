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

/**
 * A built-in or `handlers` function, on this thread. A synchronous handler (noop, echo) is over when
 * this returns, and its result comes back as is: no promise, and no race with the stop switch (nothing
 * can have stopped it while it ran). An async one comes back as a promise, abandoned when the switch is
 * thrown.
 */
export function runInlineHandler(fn: Handler, run: HandlerRun): Executed | Promise<Executed> {
  const { name, stop } = run;
  const context = new InlineContext(run);
  let value: unknown;
  try {
    value = fn(run.input, context);
  } catch (err) {
    throw handlerFailure(run, err);
  }
  if (!isThenable(value)) return succeeded(value, resultJson(name, value));
  return untilAborted(Promise.resolve(value), stop.signal).then(
    (v) => succeeded(v, resultJson(name, v)),
    (err: unknown) => {
      throw handlerFailure(run, err);
    },
  );
}

/**
 * An inline handler's context. A class, not an object literal: a literal's getters and method are new
 * closures for every task. `progress` is a getter that returns a function, so that a handler may take
 * it out of the context (`const { progress } = context`) as it could from a literal.
 */
class InlineContext implements HandlerContext {
  readonly taskId: string;
  readonly attempt: number;
  readonly traceparent: string | undefined;
  readonly #run: HandlerRun;

  constructor(run: HandlerRun) {
    this.taskId = run.req.taskId;
    this.attempt = run.req.attempt;
    this.traceparent = run.req.traceparent;
    this.#run = run;
  }

  get signal(): AbortSignal {
    return this.#run.stop.signal;
  }

  /** Made on first use: a handler that writes no files costs the file system nothing. */
  get outputDir(): string {
    return this.#run.dir.make();
  }

  get progress(): HandlerContext['progress'] {
    const req = this.#run.req;
    return (report, message) => {
      const p = readProgress(report, message);
      if (p) req.onProgress?.(p);
    };
  }
}

/** What a handler's throw or rejection becomes: the stop's reason, a workdir failure as is, or a handler failure. */
function handlerFailure(run: HandlerRun, err: unknown): TaskFailure {
  if (run.stop.aborted) return failureFromAbort(run.stop.reason);
  if (err instanceof TaskFailure && err.code === ErrorCodes.WORKDIR_UNWRITABLE) return err;
  return new TaskFailure(
    ErrorCodes.HANDLER_FAILED,
    `handler ${JSON.stringify(run.name)} failed: ${describeError(err)}`,
    {
      retryable: (err as { retryable?: unknown } | null)?.retryable !== false,
      cause: err,
    },
  );
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
