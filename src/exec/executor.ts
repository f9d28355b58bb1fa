/**
 * The executor: one task in, output files and one `ExecOutcome` out. It knows nothing of ZooKeeper.
 *
 * Guarantees:
 * - `run()` never throws or rejects: every failure is a `failed` outcome with `error`, `errorCode`
 *   and `retryable`.
 * - Nothing is written outside `<workdir>/<workerName>/<taskId>/`: both names are checked
 *   (`isSafeName`) before they become a path.
 * - A task has its directory when it has output (`taskDirs`: on demand by default, or always).
 * - Every task that got its directory leaves `result.json` there (the outcome, plus task id, worker
 *   and attempt). A shell task also leaves `stdout.log` and `stderr.log`. Files are owner-only.
 * - When `run()` settles, the task is over: a shell command's whole process group has been sent
 *   SIGKILL, a pool handler that overran its timeout has had its thread terminated.
 *
 * How each kind of task runs:
 * - `cmd`: `/bin/sh -c` in the output directory, only when `allowShell` (see shell.ts).
 * - built-in and `handlers` handlers: inline on the calling thread. An async inline handler that
 *   overruns is abandoned at its timeout (its `context.signal` aborts); a synchronous one cannot be
 *   interrupted, so slow or untrusted code belongs in a handler module.
 * - `handlerModules` handlers: on a Piscina pool (handler-pool.ts), where a timeout terminates the
 *   thread however the handler behaves.
 */
import { existsSync } from 'node:fs';
import { describeError, ErrorCodes, ZkfarmError } from '../errors.js';
import { BUILTIN_HANDLERS } from './builtins.js';
import { checkOptions, type ExecutorOptions, type ResolvedExecutorOptions } from './executor-options.js';
import {
  describeValue,
  failed,
  failureFromAbort,
  nameFailure,
  TaskFailure,
  timeoutFailure,
  toFailure,
} from './failure.js';
import { createHandlerPool, type HandlerPool, resolveHandlerModule } from './handler-pool.js';
import { toJson } from './json.js';
import { isSafeName } from './names.js';
import { type SweepReport, sweepOutputs } from './output-retention.js';
import { runShell } from './shell.js';
import { checkSpec, invalidTask } from './task-spec.js';
import type { ExecOutcome, ExecRequest, Handler, HandlerContext } from './types.js';
import { checkOwnDir, checkWorkdir, makeOwnDir, writeFileNoFollow } from './workdir.js';

export {
  EXECUTOR_DEFAULTS,
  type ExecutorOptions,
  type ResolvedExecutorOptions,
  TASK_DIRS,
  type TaskDirs,
} from './executor-options.js';

type HandlerEntry = { kind: 'inline'; fn: Handler } | { kind: 'pool'; module: string };

/** What one execution produced, before `result.json` is written. */
interface Executed {
  outcome: ExecOutcome;
  /** The handler's result as JSON, already checked. */
  resultJson?: string;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

function configError(message: string): ZkfarmError {
  return new ZkfarmError(ErrorCodes.CONFIG_INVALID, message);
}

export class Executor {
  /** Options after defaults; `workdir` is absolute. */
  readonly options: Readonly<ResolvedExecutorOptions>;
  readonly #handlers = new Map<string, HandlerEntry>();
  #pool: HandlerPool | undefined;
  #ownPool = false;
  #ready = false;
  #initializing: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  /** One stop switch per running task: `close()` throws them all. */
  readonly #running = new Set<StopSwitch>();
  #onIdle: (() => void) | undefined;
  /** The workdir's real path (checked by init()); task directories are made below it. */
  #root = '';
  /** Worker directories already made or checked (`<root>/<worker>`). */
  readonly #workerDirs = new Set<string>();
  /** Worker directories of the tasks run here (what retention sweeps), and task directories in use. */
  readonly #sweepDirs = new Set<string>();
  readonly #busyDirs = new Set<string>();
  #sweepTimer: NodeJS.Timeout | undefined;
  #sweeping: Promise<SweepReport> | undefined;

  constructor(options: ExecutorOptions = {}) {
    this.options = checkOptions(options);
    for (const [name, fn] of Object.entries(BUILTIN_HANDLERS))
      this.#handlers.set(name, { kind: 'inline', fn });
    for (const [name, fn] of Object.entries(this.options.handlers))
      this.#handlers.set(name, { kind: 'inline', fn });
  }

  /** The absolute work directory. */
  get workdir(): string {
    return this.options.workdir;
  }

  /**
   * Make sure the work directory exists and can be written (`ZKFARM_WORKDIR_UNWRITABLE`), and load
   * the handler names of every handler module (`ZKFARM_CONFIG_INVALID` naming a module that is
   * missing, fails to load, exports no function, or redefines a name). Safe to call more than once;
   * `run()` calls it when needed. After a failure, the next call tries again.
   */
  init(): Promise<void> {
    this.#initializing ??= this.#init().catch((err) => {
      this.#initializing = undefined;
      throw err;
    });
    return this.#initializing;
  }

  async #init(): Promise<void> {
    if (this.#closing) throw new ZkfarmError(ErrorCodes.STOPPED, 'the executor is closed');
    await this.#checkWorkdir();
    this.#startRetention();
    const modules = this.options.handlerModules;
    if (modules.length === 0) {
      this.#ready = true;
      return;
    }
    const pool = this.options.pool ?? createHandlerPool();
    const owned = this.options.pool === undefined;
    try {
      const found = new Map<string, string>(); // handler name → module as the user wrote it
      const entries: Array<[string, HandlerEntry]> = [];
      for (const spec of modules) {
        const module = await resolveHandlerModule(spec);
        let names: string[];
        try {
          names = await pool.listHandlers(module);
        } catch (err) {
          throw configError(
            `handler module ${JSON.stringify(spec)} could not be loaded: ${describeError(err)}`,
          );
        }
        if (names.length === 0) {
          throw configError(
            `handler module ${JSON.stringify(spec)} exports no functions: export each handler by name, ` +
              'or export default an object of functions',
          );
        }
        for (const name of names) {
          const clash =
            found.get(name) ??
            (Object.hasOwn(this.options.handlers, name) ? 'the handlers option' : undefined);
          if (clash !== undefined) {
            throw configError(
              `handler ${JSON.stringify(name)} is defined twice, by ${JSON.stringify(spec)} and by ${clash}: rename one`,
            );
          }
          found.set(name, JSON.stringify(spec));
          entries.push([name, { kind: 'pool', module }]);
        }
      }
      for (const [name, entry] of entries) this.#handlers.set(name, entry);
    } catch (err) {
      if (owned) await pool.close();
      throw err;
    }
    this.#pool = pool;
    this.#ownPool = owned;
    this.#ready = true;
  }

  async #checkWorkdir(): Promise<void> {
    const { workdir, dirMode, fileMode } = this.options;
    this.#root = await checkWorkdir(workdir, dirMode, fileMode);
  }

  #startRetention(): void {
    const r = this.options.outputRetention;
    if (r === false || this.#sweepTimer) return;
    this.#sweepTimer = setInterval(() => void this.sweepOutputs().catch(() => {}), r.intervalMs);
    this.#sweepTimer.unref?.();
  }

  /**
   * Remove old task directories now, by the `outputRetention` limits (one sweep at a time; running
   * tasks' directories are never touched). Resolves with what it removed and kept.
   */
  sweepOutputs(): Promise<SweepReport> {
    const r = this.options.outputRetention;
    if (r === false) return Promise.resolve({ removed: 0, bytesRemoved: 0, kept: 0, bytesKept: 0 });
    this.#sweeping ??= sweepOutputs(this.#sweepDirs, r, (p) => this.#busyDirs.has(p)).finally(() => {
      this.#sweeping = undefined;
    });
    return this.#sweeping;
  }

  /** Whether a task may name this handler (module handlers are known once `init()` has run). */
  hasHandler(name: string): boolean {
    return this.#handlers.has(name);
  }

  /** Every handler name, sorted. */
  handlerNames(): string[] {
    return [...this.#handlers.keys()].sort();
  }

  /** Run one task. Never throws or rejects: failures are `failed` outcomes. */
  async run(req: ExecRequest): Promise<ExecOutcome> {
    const startedAt = Date.now();
    try {
      return await this.#run(req, startedAt);
    } catch (err) {
      // Only a bug in this file lands here; the promise still holds: no throw.
      return failed(toFailure(err), startedAt);
    }
  }

  async #run(req: ExecRequest, startedAt: number): Promise<ExecOutcome> {
    if (this.#closing) {
      return failed(
        new TaskFailure(ErrorCodes.TASK_ABORTED, 'the executor is closed', { retryable: true }),
        startedAt,
      );
    }
    if (typeof req !== 'object' || req === null) {
      return failed(invalidTask(`an exec request must be an object, got ${describeValue(req)}`), startedAt);
    }
    // Checked before anything touches the file system: these two names become path segments.
    if (!isSafeName(req.workerName)) return failed(nameFailure(req.workerName, 'worker name'), startedAt);
    if (!isSafeName(req.taskId)) return failed(nameFailure(req.taskId, 'task id'), startedAt);

    const stop = new StopSwitch();
    this.#running.add(stop);
    try {
      // After the first task, `#ready` spares the hot path an await.
      if (!this.#ready) {
        try {
          await this.init();
        } catch (err) {
          return failed(toFailure(err), startedAt);
        }
      }
      // Names are checked, so plain concatenation is a safe path (and skips path.join's normalising).
      const dir = new TaskDir(
        `${this.#root}/${req.workerName}`,
        req.taskId,
        this.options.dirMode,
        this.#workerDirs,
      );
      this.#sweepDirs.add(`${this.#root}/${req.workerName}`);
      this.#busyDirs.add(dir.path);
      stop.dir = dir.path;
      if (this.options.taskDirs === 'always') {
        try {
          dir.make();
        } catch (err) {
          return failed(toFailure(err), startedAt);
        }
      }
      let executed: Executed;
      try {
        executed = await this.#execute(req, dir, stop);
      } catch (err) {
        executed = { outcome: failed(toFailure(err), startedAt) };
      }
      executed.outcome.startedAt = startedAt;
      return this.#record(req, dir, executed);
    } finally {
      if (stop.dir) this.#busyDirs.delete(stop.dir);
      this.#running.delete(stop);
      if (this.#running.size === 0) this.#onIdle?.();
    }
  }

  async #execute(req: ExecRequest, dir: TaskDir, stop: StopSwitch): Promise<Executed> {
    const spec = checkSpec(req.spec);
    const timeoutMs = spec.timeoutMs ?? this.options.defaultTimeoutMs;

    // The task's stop switch gathers every reason to stop: the caller's signal, the timeout, close().
    // The caller's signal is followed only while something can be interrupted (see StopSwitch).
    const outer = req.signal;
    if (outer?.aborted) stop.abort(outer.reason);
    else if (outer) stop.follow(outer);
    const timer =
      timeoutMs > 0
        ? setTimeout(() => stop.abort(timeoutFailure(timeoutMs)), Math.min(timeoutMs, MAX_TIMER_MS))
        : undefined;
    try {
      if (stop.aborted) throw failureFromAbort(stop.reason);
      if (spec.cmd !== undefined) return await this.#runShell(req, spec.cmd, dir, stop.signal);
      return await this.#runHandler(req, spec.handler!, spec.input, dir, stop);
    } finally {
      clearTimeout(timer);
      stop.unfollow();
    }
  }

  async #runHandler(
    req: ExecRequest,
    name: string,
    input: unknown,
    dir: TaskDir,
    stop: StopSwitch,
  ): Promise<Executed> {
    const entry = this.#handlers.get(name);
    if (entry === undefined) {
      const known = this.handlerNames();
      const shown =
        known.length > 40 ? `${known.slice(0, 40).join(', ')}, … (${known.length} in all)` : known.join(', ');
      throw new TaskFailure(
        ErrorCodes.UNKNOWN_HANDLER,
        `unknown handler ${JSON.stringify(name)}: this worker knows ${shown}. ` +
          'Register it with the handlers or handlerModules option',
        { retryable: false },
      );
    }
    let value: unknown;
    let resultJson: string;
    if (entry.kind === 'pool') {
      try {
        value = await this.#pool!.run(
          {
            module: entry.module,
            handler: name,
            input,
            taskId: req.taskId,
            attempt: req.attempt,
            outputDir: dir.path,
            dirMode: this.options.dirMode,
          },
          { signal: stop.signal },
        );
      } finally {
        // The pool thread makes the directory when its handler asks for it.
        dir.noticeIfMade();
      }
      // The pool thread already proved it is JSON (and the value is parsed JSON), so no strict walk.
      resultJson = JSON.stringify(value);
    } else {
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
      };
      try {
        value = entry.fn(input, context);
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
      try {
        resultJson = toJson(value);
      } catch (err) {
        throw new TaskFailure(
          ErrorCodes.RESULT_NOT_SERIALIZABLE,
          `handler ${JSON.stringify(name)} returned a result that cannot be stored as JSON (${describeError(err)}): ` +
            'return plain data (objects, arrays, strings, finite numbers, booleans, null)',
          { retryable: false },
        );
      }
    }
    return {
      outcome: {
        state: 'succeeded',
        result: value === undefined ? null : value,
        startedAt: 0,
        finishedAt: 0,
      },
      resultJson,
    };
  }

  async #runShell(req: ExecRequest, cmd: string, taskDir: TaskDir, signal: AbortSignal): Promise<Executed> {
    if (!this.options.allowShell) {
      throw new TaskFailure(
        ErrorCodes.SHELL_DISABLED,
        'this worker does not run shell commands (the task has a cmd): start the worker with ' +
          '`allowShell: true` (runtime --allow-shell), or give the task a handler instead',
        { retryable: false },
      );
    }
    // A command always runs in its own directory, with its logs there.
    const dir = taskDir.make();
    let run: Awaited<ReturnType<typeof runShell>>;
    try {
      run = await runShell({
        cmd,
        cwd: dir,
        env: {
          ...process.env,
          ZKFARM_TASK_ID: req.taskId,
          ZKFARM_WORKER: req.workerName,
          ZKFARM_ATTEMPT: String(req.attempt),
          ZKFARM_OUTPUT_DIR: dir,
        },
        signal,
        maxOutputBytes: this.options.maxOutputBytes,
        fileMode: this.options.fileMode,
        killGraceMs: this.options.killGraceMs,
      });
    } catch (err) {
      throw new TaskFailure(
        ErrorCodes.WORKDIR_UNWRITABLE,
        `cannot write the command's logs in ${dir}: ${describeError(err)}`,
        {
          retryable: true,
        },
      );
    }
    const { exitCode, exitSignal, lastStderrLine } = run;
    if (run.spawnError) {
      throw new TaskFailure(
        ErrorCodes.SHELL_FAILED,
        `could not start /bin/sh: ${describeError(run.spawnError)}`,
        {
          retryable: true,
        },
      );
    }
    if (run.killed) {
      const why = failureFromAbort(signal.reason);
      throw new TaskFailure(why.code, why.message, { retryable: why.retryable, exitCode });
    }
    if (exitCode === 0) {
      return { outcome: { state: 'succeeded', exitCode: 0, startedAt: 0, finishedAt: 0 } };
    }
    const how =
      exitCode !== null ? `exited with code ${exitCode}` : `was killed by ${exitSignal ?? 'a signal'}`;
    throw new TaskFailure(
      ErrorCodes.SHELL_FAILED,
      `command ${how}${lastStderrLine ? `: ${lastStderrLine}` : ''}`,
      {
        retryable: true,
        exitCode,
      },
    );
  }

  /**
   * Write result.json into the task's directory if it has one, and return the outcome (a write failure
   * turns into a failed outcome). Synchronous on purpose: an async fs call hops to libuv's thread pool
   * and back (two thread wake-ups, shared by every role thread of a host), which on a busy machine costs
   * far more than the microseconds these calls block this role's thread.
   */
  #record(req: ExecRequest, dir: TaskDir, executed: Executed): ExecOutcome {
    const outcome = executed.outcome;
    outcome.finishedAt = Date.now();
    if (!dir.made) {
      // A result too big for a status is kept in result.json: it must have a directory.
      if (!isLarge(executed.resultJson)) return outcome;
      try {
        dir.make();
      } catch (err) {
        return failed(toFailure(err), outcome.startedAt);
      }
    }
    outcome.outputDir = dir.path;
    // One JSON.stringify of the small fixed part; the result's JSON (already made while checking it)
    // is appended rather than serialised a second time.
    const head = JSON.stringify({
      taskId: req.taskId,
      workerName: req.workerName,
      attempt: req.attempt,
      state: outcome.state,
      exitCode: outcome.exitCode,
      error: outcome.error,
      errorCode: outcome.errorCode,
      retryable: outcome.retryable,
      startedAt: outcome.startedAt,
      finishedAt: outcome.finishedAt,
    });
    const json =
      executed.resultJson === undefined ? head : `${head.slice(0, -1)},"result":${executed.resultJson}}`;
    try {
      // No fsync: result.json is a record for people and tools; the durable result is the status
      // znode the worker writes next. Syncing here would cap a worker at the disk's flush rate.
      // Not through a link: the directory must be ours (a pool thread may have made it), the file no link.
      dir.check();
      writeFileNoFollow(`${dir.path}/result.json`, `${json}\n`, this.options.fileMode);
    } catch (err) {
      return failed(
        new TaskFailure(
          ErrorCodes.WORKDIR_UNWRITABLE,
          `cannot write ${dir.path}/result.json: ${describeError(err)}`,
          {
            retryable: true,
          },
        ),
        outcome.startedAt,
        dir.path,
      );
    }
    return outcome;
  }

  /**
   * Abort every running task (each ends as a failed outcome, `ZKFARM_TASK_ABORTED`, retryable), wait
   * for them to settle (shell process groups killed), and destroy the executor's own pool (never a
   * shared one). Later `run()` calls fail at once. Safe to call twice.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    clearInterval(this.#sweepTimer);
    const reason = new TaskFailure(ErrorCodes.TASK_ABORTED, 'the executor closed while the task ran', {
      retryable: true,
    });
    if (this.#running.size > 0) {
      const idle = new Promise<void>((resolve) => {
        this.#onIdle = resolve;
      });
      for (const stop of this.#running) stop.abort(reason);
      await idle;
    }
    // An init() still running may be about to make a pool: let it finish first.
    await this.#initializing?.catch(() => {});
    if (this.#ownPool) await this.#pool?.close();
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/**
 * A task's reasons to stop (the caller's signal, its timeout, the executor's close()), made into an
 * AbortSignal only when something asks for one: a shell command, a pool call, an async handler, a
 * handler that reads `context.signal`. A synchronous handler (noop, echo) cannot be interrupted, so for
 * it no AbortController and no listener is made at all: with two per task they were about a tenth of
 * a worker thread's time on millisecond tasks.
 */
class StopSwitch {
  /** The task's directory while it runs (retention leaves it alone). */
  dir: string | undefined;
  #controller: AbortController | undefined;
  #outer: AbortSignal | undefined;
  #onOuter: (() => void) | undefined;
  #stopped = false;
  #reason: unknown;

  get aborted(): boolean {
    return this.#stopped || this.#outer?.aborted === true;
  }

  get reason(): unknown {
    return this.#stopped ? this.#reason : this.#outer?.reason;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.aborted) this.#controller.abort(this.reason);
      else if (this.#outer) {
        const outer = this.#outer;
        this.#onOuter = () => this.abort(outer.reason);
        outer.addEventListener('abort', this.#onOuter, { once: true });
      }
    }
    return this.#controller.signal;
  }

  /** Stop when `outer` aborts (checked at once; listened to once a signal is made). */
  follow(outer: AbortSignal): void {
    this.#outer = outer;
  }

  unfollow(): void {
    if (this.#onOuter) this.#outer?.removeEventListener('abort', this.#onOuter);
    this.#onOuter = undefined;
  }

  abort(reason: unknown): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

/** `work`'s result, or a rejection with the signal's reason as soon as it aborts. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => {}); // abandoned: its later failure must not become an unhandled rejection
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.catch(() => {});
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/**
 * Results above this many bytes of JSON are always written to result.json, even when the task has no
 * directory otherwise: the worker leaves a result that does not fit a status out of it (a status is at
 * most 256 KiB), and result.json is then where it is.
 */
export const LARGE_RESULT_BYTES = 128 * 1024;

function isLarge(json: string | undefined): boolean {
  // A UTF-8 character is at most 3 bytes per UTF-16 unit: short strings skip the byte count.
  return (
    json !== undefined && json.length * 3 > LARGE_RESULT_BYTES && Buffer.byteLength(json) > LARGE_RESULT_BYTES
  );
}

/** A task's output directory, made at most once, when first needed, one level at a time (workdir.ts). */
class TaskDir {
  made = false;
  readonly path: string;
  constructor(
    private readonly workerDir: string,
    taskId: string,
    private readonly mode: number,
    private readonly workerDirs: Set<string>,
  ) {
    this.path = `${workerDir}/${taskId}`;
  }

  /** Make the directory (once) and return its path; `ZKFARM_WORKDIR_UNWRITABLE` when it cannot be made. */
  make(): string {
    if (this.made) return this.path;
    try {
      if (!this.workerDirs.has(this.workerDir)) {
        makeOwnDir(this.workerDir, this.mode);
        this.workerDirs.add(this.workerDir);
      }
      makeOwnDir(this.path, this.mode);
    } catch (err) {
      throw new TaskFailure(
        ErrorCodes.WORKDIR_UNWRITABLE,
        `cannot make the task's output directory ${this.path}: ${describeError(err)}`,
        { retryable: true },
      );
    }
    this.made = true;
    return this.path;
  }

  /** Before writing in a directory made elsewhere (a pool thread): it must be ours and no link. */
  check(): void {
    try {
      checkOwnDir(this.workerDir);
      checkOwnDir(this.path);
    } catch (err) {
      throw new TaskFailure(
        ErrorCodes.WORKDIR_UNWRITABLE,
        `not writing the task's output in ${this.path}: ${describeError(err)}`,
        { retryable: false },
      );
    }
  }

  /** After code elsewhere (a pool thread) may have made it. */
  noticeIfMade(): void {
    if (!this.made && existsSync(this.path)) this.made = true;
  }
}
