/**
 * One handler pool for every worker role of a host.
 *
 * Threads are not free, so the host owns a single Piscina pool sized to the machine and lends it to each
 * worker role thread over a MessagePort: `servePool(pool, port)` on the host side, `remotePool(port)` in
 * the role thread, which gives the Executor an ordinary `HandlerPool`. Aborting a call in the role thread
 * aborts it in the pool (which terminates the pool thread running it).
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { ErrorCodes } from '../errors.js';
import { TaskFailure } from '../exec/failure.js';
import type { HandlerCall, HandlerPool } from '../exec/handler-pool.js';
import type { TaskProgress } from '../exec/progress.js';
import { Comlink, nodeEndpoint } from './comlink.js';

interface PoolService {
  run(id: number, call: HandlerCall, timeoutMs: number | undefined, progress: boolean): Promise<unknown>;
  abort(id: number, reason: string): void;
  listHandlers(module: string): Promise<string[]>;
  /** Where the progress reports of the calls that ask for them go (one port per role thread). */
  progressPort(port: MessagePort): void;
}

/** A progress report of call `id`, on the progress port. */
interface ProgressNote {
  id: number;
  progress: TaskProgress;
}

/** Host side: answer calls arriving on `port` with `pool`. */
export function servePool(pool: HandlerPool, port: MessagePort): void {
  const running = new Map<number, AbortController>();
  let notes: MessagePort | undefined;
  const service: PoolService = {
    async run(id, call, timeoutMs, progress) {
      const ac = new AbortController();
      running.set(id, ac);
      const onProgress = progress
        ? (p: TaskProgress) => notes?.postMessage({ id, progress: p } satisfies ProgressNote)
        : undefined;
      try {
        return await pool.run(call, { signal: ac.signal, timeoutMs, onProgress });
      } finally {
        running.delete(id);
      }
    },
    abort(id, reason) {
      running.get(id)?.abort(new TaskFailure(ErrorCodes.TASK_ABORTED, reason, { retryable: true }));
    },
    listHandlers: (module) => pool.listHandlers(module),
    progressPort(p) {
      notes = p;
    },
  };
  Comlink.expose(service, nodeEndpoint(port as never));
}

/** Role-thread side: a HandlerPool whose calls run in the host's pool. */
export function remotePool(port: MessagePort): HandlerPool {
  const remote = Comlink.wrap<PoolService>(nodeEndpoint(port as never));
  let next = 0;
  // Progress comes back on a channel of its own, made once; unreferenced, so it never keeps the thread up.
  const listeners = new Map<number, (p: TaskProgress) => void>();
  const notes = new MessageChannel();
  notes.port1.on('message', (n: ProgressNote) => listeners.get(n.id)?.(n.progress));
  notes.port1.unref();
  void remote.progressPort(Comlink.transfer(notes.port2, [notes.port2 as never])).catch(() => {});
  return {
    async run(call, options = {}) {
      const id = ++next;
      const { signal, onProgress } = options;
      if (onProgress) listeners.set(id, onProgress);
      const onAbort = () => {
        const r = signal?.reason;
        void remote.abort(id, r instanceof Error ? r.message : String(r ?? 'aborted')).catch(() => {});
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        return await remote.run(id, call, options.timeoutMs, onProgress !== undefined);
      } catch (err) {
        const e = err as { code?: string; message?: string; retryable?: boolean };
        // If our own signal aborted, its reason (a timeout, a drain) is the truer account.
        if (signal?.aborted && signal.reason instanceof TaskFailure) throw signal.reason;
        throw new TaskFailure(e.code ?? ErrorCodes.HANDLER_FAILED, e.message ?? String(err), {
          retryable: e.retryable !== false,
        });
      } finally {
        listeners.delete(id);
        signal?.removeEventListener('abort', onAbort);
      }
    },
    listHandlers: (module) => remote.listHandlers(module),
    async close() {
      notes.port1.close();
      port.close();
    },
    threads: 0,
    maxThreads: 0,
  };
}
