import type { ProgressReport, TaskProgress } from './progress.js';

/**
 * What the execution layer promises the farm: turn one task into output files and one outcome,
 * never throwing, never leaving a child process behind.
 */

/** A task as a worker receives it (already parsed and shape-checked by farm/task-schema.ts). */
export interface TaskSpec {
  /** Shell command, run through `/bin/sh -c` (only when the worker allows shell). */
  cmd?: string;
  /** Name of a handler (built-in or from a handler module). */
  handler?: string;
  /** The handler's input (any JSON). */
  input?: unknown;
  /** Kill the task after this many ms. */
  timeoutMs?: number;
  /** Unknown fields are kept. */
  [key: string]: unknown;
}

export interface ExecRequest {
  taskId: string;
  workerName: string;
  spec: TaskSpec;
  /** 1 for the first run, 2 for the first retry, ... */
  attempt: number;
  /** Aborted when the worker gives the task up (drain deadline, lost assignment). */
  signal?: AbortSignal;
  /** Told each progress report of the task (handlers' `context.progress`, shell progress lines). */
  onProgress?: (progress: TaskProgress) => void;
  /** The W3C trace context of the task's run span: a pool handler's parent (exec/trace-context.ts). */
  traceparent?: string;
}

export interface ExecOutcome {
  state: 'succeeded' | 'failed';
  /** A shell task's exit code (null when killed by a signal). */
  exitCode?: number | null;
  /** A handler's return value (JSON). */
  result?: unknown;
  /** Why it failed, readable. */
  error?: string;
  /** Stable code of the failure (ZKFARM_TASK_TIMEOUT, ZKFARM_SHELL_DISABLED, ...). */
  errorCode?: string;
  /** False when a retry cannot help (bad input, shell disabled, unknown handler). */
  retryable?: boolean;
  startedAt: number;
  finishedAt: number;
  /** Directory holding the task's output files. */
  outputDir?: string;
}

/** Context handed to a handler function. */
export interface HandlerContext {
  taskId: string;
  attempt: number;
  signal: AbortSignal;
  /** The task's output directory: a handler may write files there. */
  outputDir: string;
  /**
   * Report progress: a number (a percentage, a count), a short message, or both
   * (`progress(40, 'copying')`, `progress('resizing')`, `progress({ value: 3, message })`). Call it as
   * often as you like: the worker publishes the latest at a bounded rate.
   */
  progress(report: ProgressReport, message?: string): void;
  /**
   * The W3C `traceparent` of the farm's span of this run, when it is traced. Inline handlers run with
   * that span active; pool handlers too when their thread has an SDK (ZKFARM_THREAD_IMPORT).
   */
  traceparent?: string;
}

export type Handler = (input: unknown, context: HandlerContext) => unknown | Promise<unknown>;
