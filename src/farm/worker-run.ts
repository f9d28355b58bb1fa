/**
 * One run of a task a worker holds: the execution log line (debug level: which assignment ran, on which
 * session), the run itself through the task's lifecycle (lifecycle.ts: key, progress, traces) and the
 * executor (exec/), and an outcome whatever happens: the executor promises never to throw, and if it
 * does the task still gets a failed outcome, so that it still gets its one result.
 *
 * Znodes: none of its own (the lifecycle's: lifecycle.ts).
 *
 * SUSPENDED / LOST: a run goes on through both (execution is at least once); only the worker's drain
 * deadline (Executor.stop on every running task) ends it early.
 */
import { describeError, ErrorCodes } from '../errors.js';
import { Executor } from '../exec/executor.js';
import { TaskFailure } from '../exec/failure.js';
import type { ExecOutcome } from '../exec/index.js';
import type { Logger } from '../zk/connect-options.js';
import type { Held } from './held-tasks.js';
import type { TaskLifecycle } from './lifecycle.js';
import { taskMeta } from './protocol.js';
import type { WorkerOptions } from './worker.js';

/** What a run needs of its worker (built once per worker: this is per task). */
export interface RunContext {
  worker: string;
  life: TaskLifecycle;
  executor: Executor;
  log: Logger;
  /** The execution log line is built only when debug logging is on. */
  logRuns: boolean;
  /** The live session's id (for the execution log), undefined between sessions. */
  sessionId(): string | undefined;
}

/** A worker's run context (once per worker). */
export function runContext(
  worker: string,
  life: TaskLifecycle,
  executor: Executor,
  log: Logger,
  sessionId: () => string | undefined,
): RunContext {
  // The execution log line of each run is built only when debug logging is on (a pino logger says).
  const logRuns = (log as { isLevelEnabled?: (l: string) => boolean }).isLevelEnabled?.('debug') ?? true;
  return { worker, life, executor, log, logRuns, sessionId };
}

/** How a run ended, and performance.now() when it began (after the log line). */
export interface Ran {
  outcome: ExecOutcome;
  began: number;
}

/**
 * Run a held task; never throws or rejects. A task that is over at once (a synchronous handler) comes
 * back as is, anything else as a promise: the worker then ends a synchronous task without a microtask.
 */
export function runHeld(h: Held, ctx: RunContext): Ran | Promise<Ran> {
  const attempt = taskMeta(h.task).attempts + 1;
  if (ctx.logRuns) {
    const session = ctx.sessionId();
    ctx.log.debug(
      { task: h.id, attempt, assignment: String(h.czxid), heldOn: h.session, session },
      'task started',
    );
  }
  const began = performance.now();
  let running: ExecOutcome | Promise<ExecOutcome>;
  try {
    const req = {
      taskId: h.id,
      workerName: ctx.worker,
      spec: h.task,
      attempt,
    };
    running = ctx.life.run(h.task, req, (r) => ctx.executor.runNow(r));
  } catch (err) {
    return { outcome: unexpected(err), began };
  }
  if (!(running instanceof Promise)) return { outcome: running, began };
  return running.then(
    (outcome) => ({ outcome, began }),
    (err: unknown) => ({ outcome: unexpected(err), began }),
  );
}

/** The executor promises never to throw; should it, the task still gets a failed outcome. */
function unexpected(err: unknown): ExecOutcome {
  const now = Date.now();
  return {
    state: 'failed',
    error: describeError(err),
    errorCode: ErrorCodes.HANDLER_FAILED,
    startedAt: now,
    finishedAt: now,
  };
}

/** Why a task still running at its worker's drain deadline was stopped (it gets no result; it runs again). */
export function abandonFailure(worker: string): TaskFailure {
  return new TaskFailure(
    ErrorCodes.TASK_ABORTED,
    `worker ${worker} stopped and its drain deadline passed: the task runs again elsewhere`,
    { retryable: true },
  );
}

/** The executor a worker runs its tasks with, from the worker's options. */
export function workerExecutor(options: WorkerOptions): Executor {
  return new Executor({
    workdir: options.workdir,
    allowShell: options.allowShell ?? false,
    handlers: options.handlers,
    handlerModules: options.handlerModules,
    pool: options.pool,
    defaultTimeoutMs: options.defaultTimeoutMs ?? 0,
    taskDirs: options.taskDirs,
    outputRetention: options.outputRetention,
  });
}
