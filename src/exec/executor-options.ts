/**
 * Executor options: the all-optional type users pass, the defaults it is merged over, and the checks
 * that reject a bad option with a message naming it, what was expected and what was received.
 */
import { resolve } from 'node:path';
import { configError, type ZkfarmError } from '../errors.js';
import { describeValue } from './failure.js';
import type { HandlerPool } from './handler-pool.js';
import { OUTPUT_RETENTION_DEFAULTS, type OutputRetention } from './output-retention.js';
import type { Handler } from './types.js';

export interface ExecutorOptions {
  /**
   * Root of all task output: a task writes under `<workdir>/<workerName>/<taskId>/`. A relative
   * path is resolved against the current directory when the Executor is made.
   * @defaultValue `'./zkfarm-work'`
   */
  workdir?: string;
  /** Run tasks that carry a shell command (`cmd`). @defaultValue `false` */
  allowShell?: boolean;
  /** Extra handlers run inline on the calling thread; they may replace a built-in. @defaultValue `{}` */
  handlers?: Record<string, Handler>;
  /**
   * Modules whose exported functions (named exports, or the functions of a default-export object)
   * become handlers that run on the handler pool. Paths are resolved against the current directory;
   * package names are resolved from it. A name defined twice (by two modules, or by a module and
   * `handlers`) is a configuration error.
   * @defaultValue `[]`
   */
  handlerModules?: string[];
  /**
   * A pool to share with other Executors (the host makes one per process). Not closed by `close()`.
   * @defaultValue a pool of this Executor's own, made by `init()` only when `handlerModules` is set
   */
  pool?: HandlerPool;
  /** Timeout for tasks that give no `timeoutMs`, in ms; 0 means none. @defaultValue `0` */
  defaultTimeoutMs?: number;
  /** Most bytes kept in each of `stdout.log` and `stderr.log`; the rest is counted and dropped. @defaultValue 64 MiB */
  maxOutputBytes?: number;
  /** Mode of the files a task writes. @defaultValue `0o600` */
  fileMode?: number;
  /** Mode of the directories the executor makes. @defaultValue `0o700` */
  dirMode?: number;
  /** After SIGTERM to a timed-out command's process group, ms before SIGKILL. @defaultValue `2000` */
  killGraceMs?: number;
  /**
   * When a task gets its output directory `<workdir>/<workerName>/<taskId>/` (with `result.json`):
   * - `'on-demand'`: shell tasks always; a handler task when its handler reads `context.outputDir`
   *   (or makes the directory itself). A task that writes no files costs the file system nothing;
   *   its result is in its status.
   * - `'always'`: every task, whatever it does, has the directory and its `result.json`.
   * @defaultValue `'on-demand'`
   */
  taskDirs?: TaskDirs;
  /**
   * How much task output each worker keeps on disk (by age, count and bytes; see output-retention.ts),
   * or `false` to keep everything. @defaultValue 7 days, 10,000 directories, 10 GiB, swept every minute
   */
  outputRetention?: OutputRetention | false;
}

/** The values of `taskDirs`, the default first. */
export const TASK_DIRS = ['on-demand', 'always'] as const;
export type TaskDirs = (typeof TASK_DIRS)[number];

/** Executor options with every default filled in (`workdir` made absolute). */
export interface ResolvedExecutorOptions {
  workdir: string;
  allowShell: boolean;
  handlers: Readonly<Record<string, Handler>>;
  handlerModules: readonly string[];
  pool: HandlerPool | undefined;
  defaultTimeoutMs: number;
  maxOutputBytes: number;
  fileMode: number;
  dirMode: number;
  killGraceMs: number;
  taskDirs: TaskDirs;
  outputRetention: Required<OutputRetention> | false;
}

export const EXECUTOR_DEFAULTS: Readonly<ResolvedExecutorOptions> = Object.freeze({
  workdir: './zkfarm-work',
  allowShell: false,
  handlers: Object.freeze({}),
  handlerModules: Object.freeze([]),
  pool: undefined,
  defaultTimeoutMs: 0,
  maxOutputBytes: 64 * 1024 * 1024,
  fileMode: 0o600,
  dirMode: 0o700,
  killGraceMs: 2000,
  taskDirs: 'on-demand',
  outputRetention: OUTPUT_RETENTION_DEFAULTS,
});

/** Merge `options` over the defaults and check each one (`ZKFARM_CONFIG_INVALID`). */
export function checkOptions(options: ExecutorOptions): ResolvedExecutorOptions {
  if (typeof options !== 'object' || options === null) {
    throw configError(`Executor options must be an object, got ${describeValue(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!Object.hasOwn(EXECUTOR_DEFAULTS, key)) {
      throw configError(
        `unknown Executor option ${key}: known are ${Object.keys(EXECUTOR_DEFAULTS).join(', ')}`,
      );
    }
  }
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const o = { ...EXECUTOR_DEFAULTS, ...defined } as ResolvedExecutorOptions;
  const bad = (name: string, expected: string, got: unknown) =>
    configError(`Executor option ${name} must be ${expected}, got ${describeValue(got)}`);

  if (typeof o.workdir !== 'string' || o.workdir === '') throw bad('workdir', 'a non-empty path', o.workdir);
  if (typeof o.allowShell !== 'boolean') throw bad('allowShell', 'true or false', o.allowShell);
  if (typeof o.handlers !== 'object' || o.handlers === null || Array.isArray(o.handlers)) {
    throw bad('handlers', 'an object mapping names to functions', o.handlers);
  }
  for (const [name, fn] of Object.entries(o.handlers)) {
    if (typeof fn !== 'function') throw bad(`handlers.${name}`, 'a function', fn);
  }
  if (!Array.isArray(o.handlerModules) || o.handlerModules.some((m) => typeof m !== 'string' || m === '')) {
    throw bad('handlerModules', 'an array of module paths or package names', o.handlerModules);
  }
  if (
    o.pool !== undefined &&
    (typeof o.pool !== 'object' ||
      o.pool === null ||
      typeof o.pool.run !== 'function' ||
      typeof o.pool.listHandlers !== 'function')
  ) {
    throw bad('pool', 'a HandlerPool (from createHandlerPool)', o.pool);
  }
  const count = (name: 'defaultTimeoutMs' | 'maxOutputBytes' | 'killGraceMs', min: number) => {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw bad(name, `an integer >= ${min}`, v);
  };
  if (!(TASK_DIRS as readonly unknown[]).includes(o.taskDirs)) {
    throw bad('taskDirs', '"on-demand" or "always"', o.taskDirs);
  }
  count('defaultTimeoutMs', 0);
  count('maxOutputBytes', 1);
  count('killGraceMs', 0);
  for (const name of ['fileMode', 'dirMode'] as const) {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0o777) {
      throw bad(name, 'a permission mode from 0o000 to 0o777', v);
    }
  }
  const outputRetention = checkRetention(o.outputRetention, bad);
  return Object.freeze({
    ...o,
    workdir: resolve(o.workdir),
    handlerModules: [...o.handlerModules],
    outputRetention,
  });
}

function checkRetention(
  r: unknown,
  bad: (name: string, expected: string, got: unknown) => ZkfarmError,
): Required<OutputRetention> | false {
  if (r === false) return false;
  if (typeof r !== 'object' || r === null || Array.isArray(r))
    throw bad('outputRetention', 'false or an object with maxAgeMs, maxCount, maxBytes, intervalMs', r);
  const out = { ...OUTPUT_RETENTION_DEFAULTS };
  for (const [key, value] of Object.entries(r)) {
    if (!Object.hasOwn(OUTPUT_RETENTION_DEFAULTS, key))
      throw bad(`outputRetention.${key}`, 'one of maxAgeMs, maxCount, maxBytes, intervalMs', key);
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < (key === 'maxCount' ? 0 : 1))
      throw bad(`outputRetention.${key}`, 'a whole number (ms, directories or bytes)', value);
    out[key as keyof OutputRetention] = value;
  }
  return out;
}
