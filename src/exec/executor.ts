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
 *
 * The parts: which handlers it knows (handler-table.ts), how a handler and a command run
 * (run-handler.ts, run-command.ts), a task's directory and its result.json (task-dir.ts,
 * result-file.ts), a task's reasons to stop (stop-switch.ts).
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';
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
import type { HandlerPool } from './handler-pool.js';
import { type HandlerEntry, loadModuleHandlers, unknownHandler } from './handler-table.js';
import { isSafeName } from './names.js';
import { type SweepReport, sweepOutputs } from './output-retention.js';
import { type Executed, recordResult } from './result-file.js';
import { runCommand } from './run-command.js';
import { type HandlerRun, runInlineHandler, runPoolHandler } from './run-handler.js';
import { StopSwitch } from './stop-switch.js';
import { TaskDir } from './task-dir.js';
import { checkSpec, invalidTask } from './task-spec.js';
import type { ExecOutcome, ExecRequest } from './types.js';
import { checkWorkdir } from './workdir.js';

export {
  EXECUTOR_DEFAULTS,
  type ExecutorOptions,
  type ResolvedExecutorOptions,
  TASK_DIRS,
  type TaskDirs,
} from './executor-options.js';

const MAX_TIMER_MS = 2 ** 31 - 1;

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
    // Piscina is loaded only for an executor that runs a pool of its own: a role thread that borrows
    // the host's pool, or has no handler modules, never loads it.
    const pool = this.options.pool ?? (await import('./handler-pool.js')).createHandlerPool();
    const owned = this.options.pool === undefined;
    try {
      const entries = await loadModuleHandlers(pool, modules, this.options.handlers);
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
  run(req: ExecRequest): Promise<ExecOutcome> {
    return Promise.resolve(this.runNow(req));
  }

  /**
   * Run one task, and return its outcome itself when the task was over by the time this returns (a
   * synchronous inline handler such as noop or echo), else a promise of it. Never throws or rejects.
   * A worker runs every task through this: a synchronous task then costs no promise, no microtask and
   * no timer on its way, which for millisecond tasks was a large part of a worker thread's allocation.
   */
  runNow(req: ExecRequest): ExecOutcome | Promise<ExecOutcome> {
    const startedAt = Date.now();
    try {
      const out = this.#run(req, startedAt);
      // Only a bug in this file lands in either catch; the promise still holds: no throw.
      return out instanceof Promise ? out.catch((err) => failed(toFailure(err), startedAt)) : out;
    } catch (err) {
      return failed(toFailure(err), startedAt);
    }
  }

  #run(req: ExecRequest, startedAt: number): ExecOutcome | Promise<ExecOutcome> {
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
    stop.taskId = req.taskId;
    this.#running.add(stop);
    // After the first task, `#ready` spares the hot path the wait.
    if (this.#ready) return this.#runReady(req, startedAt, stop);
    return this.init().then(
      () => this.#runReady(req, startedAt, stop),
      (err: unknown) => {
        this.#release(stop);
        return failed(toFailure(err), startedAt);
      },
    );
  }

  /** The task once the executor is ready; `stop` is released when it is over. */
  #runReady(req: ExecRequest, startedAt: number, stop: StopSwitch): ExecOutcome | Promise<ExecOutcome> {
    let later = false;
    try {
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
      let executed: Executed | Promise<Executed>;
      try {
        executed = this.#execute(req, dir, stop);
      } catch (err) {
        executed = { outcome: failed(toFailure(err), startedAt) };
      }
      if (!(executed instanceof Promise)) return this.#record(req, dir, executed, startedAt);
      later = true;
      return executed
        .catch((err: unknown): Executed => ({ outcome: failed(toFailure(err), startedAt) }))
        .then((e) => this.#record(req, dir, e, startedAt))
        .finally(() => this.#release(stop));
    } finally {
      if (!later) this.#release(stop);
    }
  }

  #record(req: ExecRequest, dir: TaskDir, executed: Executed, startedAt: number): ExecOutcome {
    executed.outcome.startedAt = startedAt;
    return recordResult(req, dir, executed, this.options.fileMode);
  }

  #release(stop: StopSwitch): void {
    if (stop.dir) this.#busyDirs.delete(stop.dir);
    this.#running.delete(stop);
    if (this.#running.size === 0) this.#onIdle?.();
  }

  /**
   * Run the task's command or handler under its stop switch. A synchronous inline handler's result
   * comes back as is; anything that runs on comes back as a promise, with the task's timeout armed
   * (counted from the start: an inline handler's synchronous part cannot be interrupted anyway).
   */
  #execute(req: ExecRequest, dir: TaskDir, stop: StopSwitch): Executed | Promise<Executed> {
    const spec = checkSpec(req.spec);
    const timeoutMs = spec.timeoutMs ?? this.options.defaultTimeoutMs;

    // The task's stop switch gathers every reason to stop: the caller's signal, the timeout, close().
    // The caller's signal is followed only while something can be interrupted (see StopSwitch).
    const outer = req.signal;
    if (outer?.aborted) stop.abort(outer.reason);
    else if (outer) stop.follow(outer);
    // Read only when a timer may be armed: a task without a timeout needs no clock.
    const began = timeoutMs > 0 ? performance.now() : 0;
    let running: Executed | Promise<Executed>;
    try {
      if (stop.aborted) throw failureFromAbort(stop.reason);
      running =
        spec.cmd !== undefined
          ? runCommand(req, spec.cmd, dir, stop.signal, this.options)
          : this.#runHandler(req, spec.handler!, spec.input, dir, stop);
    } catch (err) {
      stop.unfollow();
      throw err;
    }
    if (!(running instanceof Promise)) {
      stop.unfollow();
      return running;
    }
    const timer =
      timeoutMs > 0
        ? setTimeout(
            () => stop.abort(timeoutFailure(timeoutMs)),
            Math.min(Math.max(timeoutMs - (performance.now() - began), 0), MAX_TIMER_MS),
          )
        : undefined;
    return running.finally(() => {
      clearTimeout(timer);
      stop.unfollow();
    });
  }

  #runHandler(
    req: ExecRequest,
    name: string,
    input: unknown,
    dir: TaskDir,
    stop: StopSwitch,
  ): Executed | Promise<Executed> {
    const entry = this.#handlers.get(name);
    if (entry === undefined) throw unknownHandler(name, this.handlerNames());
    const run: HandlerRun = { req, name, input, dir, stop };
    if (entry.kind === 'pool') return runPoolHandler(this.#pool!, entry.module, run, this.options.dirMode);
    return runInlineHandler(entry.fn, run);
  }

  /**
   * Stop one running task as its timeout would (a shell command's whole process group, a handler's
   * `context.signal`, a pool call's thread): it ends as a failed outcome carrying `reason`'s code.
   * False when no task of that id runs here.
   */
  stop(taskId: string, reason: unknown): boolean {
    let found = false;
    for (const stop of this.#running)
      if (stop.taskId === taskId) {
        stop.abort(reason);
        found = true;
      }
    return found;
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
