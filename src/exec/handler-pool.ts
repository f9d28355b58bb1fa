/**
 * A Piscina thread pool for handlers from handler modules: each call runs off the caller's thread,
 * so a handler that blocks its event loop or ignores its timeout cannot freeze the caller. On
 * timeout or abort the run is aborted, and Piscina terminates the thread that ran it.
 *
 * One pool can serve several Executors (the host makes one, sized to the machine, and hands it to
 * every worker role: threads are not free). An unused pool costs nothing: `minThreads` is 0 and
 * threads start on the first call.
 *
 * The thread entry is workers/handler-pool.ts. Piscina cannot load TypeScript, so from dist/ the pool
 * runs the compiled `dist/workers/handler-pool.js`; from source (tests under tsx, where this module's
 * own URL ends in `.ts`) it runs the `.ts` file with tsx's loader in the thread's `execArgv`.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { configError, describeError, ErrorCodes } from '../errors.js';
import { describeValue, failureFromAbort, TaskFailure, timeoutFailure } from './failure.js';
import { isPoolProgress, type PoolListReply, type PoolRequest, type PoolRunReply } from './pool-protocol.js';
import type { TaskProgress } from './progress.js';

/** One handler call. */
export interface HandlerCall {
  /** A file URL or an importable specifier, as returned by `resolveHandlerModule`. */
  module: string;
  /** The exported function's name. */
  handler: string;
  input: unknown;
  taskId: string;
  attempt: number;
  /** The task's output directory; the thread makes it (with `dirMode`) when the handler asks for it. */
  outputDir: string;
  /** @defaultValue `0o700` */
  dirMode?: number;
  /** The run span's W3C context: the handler runs with it as its parent in the pool thread. */
  traceparent?: string;
}

export interface HandlerRunOptions {
  /** Aborting terminates the thread running the call; the call rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Stop the call after this many ms (`ZKFARM_TASK_TIMEOUT`). 0 or absent: no timeout. */
  timeoutMs?: number;
  /** Told the handler's progress reports (`context.progress`), as they come from its thread. */
  onProgress?: (progress: TaskProgress) => void;
}

export interface HandlerPool {
  /**
   * Run one handler; resolves with its JSON result (`undefined` becomes `null`). Rejects with a
   * `TaskFailure` (a `ZkfarmError` with `retryable`): HANDLER_FAILED, UNKNOWN_HANDLER,
   * RESULT_NOT_SERIALIZABLE, CONFIG_INVALID (module cannot load), TASK_TIMEOUT, TASK_ABORTED.
   */
  run(call: HandlerCall, options?: HandlerRunOptions): Promise<unknown>;
  /** The handler names a module exports (loads it in a pool thread, not on the caller's). */
  listHandlers(module: string): Promise<string[]>;
  /** Terminate every thread; pending calls reject with TASK_ABORTED. Safe to call twice. */
  close(): Promise<void>;
  /** Threads alive right now. */
  readonly threads: number;
  /** The most threads the pool will start. */
  readonly maxThreads: number;
}

export interface HandlerPoolOptions {
  /** @defaultValue `max(1, os.availableParallelism() - 1)` */
  maxThreads?: number;
  /** Threads kept alive while idle. @defaultValue `0` (an unused pool costs nothing) */
  minThreads?: number;
  /** Ms an idle thread above `minThreads` lives before it exits. @defaultValue `30000` */
  idleTimeout?: number;
  /**
   * Told about an error in an idle pool thread (without a listener it would crash the process).
   * @defaultValue a process warning
   */
  onError?: (err: Error) => void;
}

export const HANDLER_POOL_DEFAULTS: Readonly<Required<Omit<HandlerPoolOptions, 'onError'>>> = Object.freeze({
  maxThreads: Math.max(1, availableParallelism() - 1),
  minThreads: 0,
  idleTimeout: 30_000,
});

const FROM_SOURCE = import.meta.url.endsWith('.ts');
const MAX_TIMER_MS = 2 ** 31 - 1;

function poolThreadEntry(): { filename: string; execArgv?: string[] } {
  if (!FROM_SOURCE) {
    // dist/src/exec/handler-pool.js → dist/workers/handler-pool.js. execArgv is left unset so the
    // threads inherit the process's own flags (and any loader it runs under).
    return { filename: fileURLToPath(new URL('../../workers/handler-pool.js', import.meta.url)) };
  }
  // Under tsx: name tsx's loader by absolute URL, so the thread finds it whatever the cwd is.
  const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return {
    filename: fileURLToPath(new URL('../../workers/handler-pool.ts', import.meta.url)),
    execArgv: ['--import', tsxLoader],
  };
}

function checkInteger(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw configError(
      `handler pool option ${name} must be an integer >= ${min}, got ${describeValue(value)}`,
    );
  }
  return value;
}

/**
 * Calls wait here, in order, for a free thread; Piscina is only ever given as many calls as it has
 * threads. Two reasons: a call's timeout starts when it gets a thread (a call that waited behind others
 * did not run out of time), and Piscina's own queue can strand calls: when every thread is terminated
 * by an abort and `minThreads` is 0, queued abortable calls are never given a new thread.
 */
interface Waiter {
  start(): void;
  cancel(reason: unknown): void;
}

class PiscinaHandlerPool implements HandlerPool {
  readonly #piscina: Piscina<PoolRequest, PoolListReply | PoolRunReply>;
  #closing: Promise<void> | undefined;
  readonly #slots: number;
  #busy = 0;
  readonly #waiting: Waiter[] = [];
  /**
   * The progress listeners of the calls running, by call id. A report comes on the thread's parentPort
   * and the result on Piscina's own port, in no set order: one that arrives after its call ended is
   * dropped (the task's progress is over).
   */
  readonly #listeners = new Map<number, (progress: TaskProgress) => void>();
  #nextCall = 0;

  constructor(options: HandlerPoolOptions) {
    const known = new Set(['maxThreads', 'minThreads', 'idleTimeout', 'onError']);
    for (const key of Object.keys(options)) {
      if (!known.has(key))
        throw configError(`unknown handler pool option ${key}: known are ${[...known].join(', ')}`);
    }
    const o = { ...HANDLER_POOL_DEFAULTS, ...dropUndefined(options) };
    const maxThreads = checkInteger('maxThreads', o.maxThreads, 1);
    const minThreads = checkInteger('minThreads', o.minThreads, 0);
    if (minThreads > maxThreads) {
      throw configError(
        `handler pool option minThreads (${minThreads}) must not exceed maxThreads (${maxThreads})`,
      );
    }
    const idleTimeout = checkInteger('idleTimeout', o.idleTimeout, 0);
    if (options.onError !== undefined && typeof options.onError !== 'function') {
      throw configError(
        `handler pool option onError must be a function, got ${describeValue(options.onError)}`,
      );
    }
    const onError =
      options.onError ??
      ((err: Error) =>
        process.emitWarning(`zkfarm handler pool: an idle pool thread failed: ${describeError(err)}`));
    this.#piscina = new Piscina({
      ...poolThreadEntry(),
      maxThreads,
      minThreads,
      idleTimeout,
      // Threads run an ordinary event loop between tasks (the default 'sync' parks them in
      // Atomics.wait, so a handler's un-awaited work would only run during the next task).
      atomics: 'disabled',
    });
    this.#piscina.on('error', onError);
    this.#piscina.on('message', (m: unknown) => {
      if (isPoolProgress(m)) this.#listeners.get(m.zkfarmProgress.callId)?.(m.zkfarmProgress.progress);
    });
    this.#slots = maxThreads;
  }

  /** Resolves when a thread is free for one more call; rejects with the signal's reason if it aborts first. */
  #acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#busy < this.#slots && this.#waiting.length === 0) {
      this.#busy++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => waiter.cancel(signal?.reason);
      const waiter: Waiter = {
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          this.#busy++;
          resolve();
        },
        cancel: (reason) => {
          signal?.removeEventListener('abort', onAbort);
          const i = this.#waiting.indexOf(waiter);
          if (i !== -1) this.#waiting.splice(i, 1);
          reject(reason);
        },
      };
      this.#waiting.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #release(): void {
    this.#busy--;
    while (this.#busy < this.#slots && this.#waiting.length > 0) this.#waiting.shift()?.start();
  }

  get threads(): number {
    return this.#piscina.threads.length;
  }

  get maxThreads(): number {
    return this.#piscina.maxThreads;
  }

  async run(call: HandlerCall, options: HandlerRunOptions = {}): Promise<unknown> {
    const { signal, timeoutMs = 0 } = options;
    this.#checkOpen();
    try {
      await this.#acquire(signal);
    } catch (reason) {
      throw failureFromAbort(reason);
    }
    const callId = options.onProgress ? ++this.#nextCall : undefined;
    if (callId !== undefined) this.#listeners.set(callId, options.onProgress!);
    try {
      return await this.#runNow(callId === undefined ? call : { ...call, callId }, signal, timeoutMs);
    } finally {
      if (callId !== undefined) this.#listeners.delete(callId);
      this.#release();
    }
  }

  async #runNow(
    call: HandlerCall & { callId?: number },
    signal: AbortSignal | undefined,
    timeoutMs: number,
  ): Promise<unknown> {
    let runSignal = signal;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    if (timeoutMs > 0) {
      // One controller carries both the timeout and the caller's signal into Piscina.
      const controller = new AbortController();
      timer = setTimeout(
        () => controller.abort(timeoutFailure(timeoutMs)),
        Math.min(timeoutMs, MAX_TIMER_MS),
      );
      if (signal?.aborted) controller.abort(signal.reason);
      else if (signal) {
        onAbort = () => controller.abort(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
      }
      runSignal = controller.signal;
    }
    try {
      const reply = (await this.#submit({ op: 'run', ...call }, runSignal)) as PoolRunReply;
      if (!reply.ok) throw new TaskFailure(reply.code, reply.message, { retryable: reply.retryable });
      return JSON.parse(reply.json);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  async listHandlers(module: string): Promise<string[]> {
    this.#checkOpen();
    await this.#acquire();
    let reply: PoolListReply;
    try {
      reply = (await this.#submit({ op: 'list', module })) as PoolListReply;
    } finally {
      this.#release();
    }
    if (!reply.ok) throw new TaskFailure(reply.code, reply.message, { retryable: reply.retryable });
    return reply.names;
  }

  #checkOpen(): void {
    if (this.#closing) {
      throw new TaskFailure(ErrorCodes.TASK_ABORTED, 'the handler pool is closed', { retryable: true });
    }
  }

  async #submit(request: PoolRequest, signal?: AbortSignal): Promise<PoolListReply | PoolRunReply> {
    this.#checkOpen();
    try {
      return await this.#piscina.run(request, signal ? { signal } : undefined);
    } catch (err) {
      if (signal?.aborted) throw failureFromAbort(signal.reason);
      if (this.#closing) {
        throw new TaskFailure(ErrorCodes.TASK_ABORTED, 'the handler pool closed while the handler ran', {
          retryable: true,
        });
      }
      // The thread died under the call: process.exit() in a handler, an out-of-memory, a crash.
      throw new TaskFailure(
        ErrorCodes.HANDLER_FAILED,
        `the handler's pool thread died: ${describeError(err)}`,
        {
          retryable: true,
          cause: err,
        },
      );
    }
  }

  close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = this.#piscina.destroy();
      const closed = new TaskFailure(ErrorCodes.TASK_ABORTED, 'the handler pool closed before the call ran', {
        retryable: true,
      });
      for (const w of this.#waiting.splice(0)) w.cancel(closed);
    }
    return this.#closing;
  }
}

function dropUndefined<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A handler pool backed by Piscina. Options are checked; a bad one is `ZKFARM_CONFIG_INVALID`. */
export function createHandlerPool(options: HandlerPoolOptions = {}): HandlerPool {
  return new PiscinaHandlerPool(options);
}
