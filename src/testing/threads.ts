/**
 * Role threads for tests and tools: started from TypeScript sources, and open to fault injection.
 *
 * - `sourceThreads` runs a host's role threads from .ts sources (tests under tsx). A thread does not
 *   inherit tsx's loader, and Node refuses a .ts entry file, so the thread starts from a few lines of
 *   evaluated code that register tsx inside it and then import the entry.
 * - `FaultInjector` does the same and keeps a handle on every thread it made, by role name, so a test
 *   (or the dashboard, when `runtime --http-chaos` asks for it) can crash a role or expire its session
 *   (and a test can read how V8 sized the role's heap: `heap(name)`):
 *
 *       const faults = new FaultInjector();
 *       const host = await Host.start(spec, { spawn: faults.spawn });
 *       await faults.crash('w1');           // the thread dies without clean-up; the host restarts it
 *       await faults.expireSession('m1');   // the server expires its session; it carries on with a new one
 */
import { once } from 'node:events';
import {
  MessageChannel,
  type MessagePort,
  type ResourceLimits,
  Worker as Thread,
  type WorkerOptions,
} from 'node:worker_threads';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { Comlink, nodeEndpoint } from '../host/comlink.js';
import type { SpawnRoleThread } from '../host/role-handle.js';
import type { TestingThreadApi } from './role-thread.js';

const fromSource = (url: URL) => url.pathname.endsWith('.ts');

/** Evaluated code that imports `modules` in order inside a thread, registering tsx first if any is .ts. */
function bootstrap(modules: URL[]): string {
  const tsx = modules.some(fromSource) ? import.meta.resolve('tsx/esm/api') : undefined;
  const steps = [
    ...(tsx ? [`(await import(${JSON.stringify(tsx)})).register();`] : []),
    ...modules.map((m) => `await import(${JSON.stringify(m.href)});`),
  ];
  return `(async () => { ${steps.join(' ')} })();`;
}

/** A role thread from compiled JS or from .ts sources (give it to a host as its `spawn`). */
export const sourceThreads: SpawnRoleThread = (entry, options) =>
  fromSource(entry) ? new Thread(bootstrap([entry]), { ...options, eval: true }) : new Thread(entry, options);

const TESTING_MODULE = new URL(
  import.meta.url.endsWith('.ts') ? './role-thread.ts' : './role-thread.js',
  import.meta.url,
);

interface Controlled {
  thread: Thread;
  api: Comlink.Remote<TestingThreadApi>;
  /** Our end of the testing channel: held so it cannot be collected while the thread lives. */
  port: MessagePort;
}

/** Crash a host's roles and expire their sessions (see the module comment). */
export class FaultInjector {
  readonly #threads = new Map<string, Controlled>();

  /** Give it to the host: `Host.start(spec, { spawn: faults.spawn })`. */
  readonly spawn: SpawnRoleThread = (entry: URL, options: WorkerOptions, role) => {
    const channel = new MessageChannel();
    const thread = new Thread(bootstrap([TESTING_MODULE, entry]), {
      ...options,
      eval: true,
      workerData: { ...(options.workerData as object), testing: channel.port2 },
      transferList: [...(options.transferList ?? []), channel.port2 as never],
    });
    channel.port1.unref();
    const controlled: Controlled = {
      thread,
      api: Comlink.wrap<TestingThreadApi>(nodeEndpoint(channel.port1 as never)),
      port: channel.port1,
    };
    this.#threads.set(role.name, controlled);
    thread.once('exit', () => {
      channel.port1.close();
      if (this.#threads.get(role.name) === controlled) this.#threads.delete(role.name);
    });
    return thread;
  };

  #get(name: string): Controlled {
    const c = this.#threads.get(name);
    if (!c) {
      throw new ZkfarmError(
        ErrorCodes.INVALID_ARGUMENT,
        `no running role thread named ${name} was made by this FaultInjector (running: ${[...this.#threads.keys()].join(', ') || 'none'})`,
      );
    }
    return c;
  }

  /**
   * The role's thread dies at once without clean-up: no drain, no session close, so its ephemeral nodes
   * stay until the server expires the session. A host with restarts on starts it again after its
   * backoff. Resolves when the thread is gone.
   */
  async crash(name: string): Promise<void> {
    const { thread } = this.#get(name);
    await thread.terminate();
  }

  /** The server expires the role's session; resolves once the role runs on a new session. */
  async expireSession(name: string, options: { timeoutMs?: number } = {}): Promise<void> {
    const { thread, api } = this.#get(name);
    const exited = once(thread, 'exit').then(() => {
      throw new ZkfarmError(ErrorCodes.ROLE_EXITED, `role ${name} exited while its session was expired`);
    });
    exited.catch(() => {});
    await Promise.race([api.expireSession(options.timeoutMs), exited]);
  }

  /**
   * The role thread's heap as V8 sized it, read inside the thread: `heapSizeLimit` (bytes) is its old
   * generation plus its young generation, `resourceLimits` what the thread was given (with V8's values
   * where it was given none).
   */
  async heap(name: string): Promise<{ heapSizeLimit: number; resourceLimits: ResourceLimits }> {
    return this.#get(name).api.heap();
  }
}
