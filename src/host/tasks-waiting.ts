/**
 * Tasks waiting in a farm's /tasks, as a signal for a start that warms up first: `runtime`'s rehearsal
 * and its request-path burst (host/rehearsal.ts, host/embedded-warm-up.ts) give way as soon as a task
 * is there, so that a user who submits the moment `runtime` starts is not kept waiting by a warm-up
 * meant for them (benchmarks/README.md, "Tasks that come during the rehearsal").
 *
 * Guarantees:
 * - `signal` aborts once /tasks has a child: a task submitted after the watch is in place, or one
 *   already there (left from a farm stopped with tasks queued). /tasks need not exist yet.
 * - It then closes its watch and its session at once, so a flood of submits costs ZooKeeper a handful of
 *   notifications, not one per task.
 * - Never fails a start: a watcher that cannot reach ZooKeeper only never aborts (the warm-up then runs
 *   to its bound, as without it). On a new session the watch is made again (the supervisor's action).
 */
import { PATHS } from '../farm/protocol.js';
import { ChildrenCache } from '../recipes/children-cache.js';
import type { Logger } from '../zk/connect-options.js';
import { connect, type Supervisor } from '../zk/supervisor.js';
import type { FarmSettings } from './types.js';

export class TasksWaiting {
  readonly #controller = new AbortController();
  readonly #sup: Supervisor;
  #cache: ChildrenCache | undefined;

  constructor(settings: Pick<FarmSettings, 'connect' | 'auth' | 'tls'>, logger?: Logger) {
    this.#sup = connect(
      {
        connect: settings.connect,
        connectTimeout: 10_000,
        ...(settings.auth !== undefined ? { auth: settings.auth } : {}),
        ...(settings.tls !== undefined ? { tls: settings.tls } : {}),
        ...(logger ? { logger } : {}),
      },
      (session) => {
        this.#cache?.close();
        if (this.signal.aborted) return undefined;
        this.#cache = new ChildrenCache(session, PATHS.tasks, (u) => {
          if (u.children.size > 0) this.#found();
        });
        return this.#cache.ready;
      },
    );
    this.#sup.ready.catch(() => {}); // unreachable or stopped: the signal simply never aborts
  }

  /** Aborted once a task waits in /tasks. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  #found(): void {
    this.#controller.abort();
    void this.close();
  }

  /** Stop watching (the signal stays as it is). Safe to call twice. */
  async close(): Promise<void> {
    this.#cache?.close();
    await this.#sup.stop();
  }
}
