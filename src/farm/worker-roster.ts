/**
 * The leader's view of the workers, for one term: who is registered, what each offers and how loaded
 * it is. The loads feed the assignment policy (assignment-policy.ts).
 *
 * Znodes: watches /workers (children: who joins, who is gone), each /workers/<w> (data: capacity,
 * prefetch, paused, shell, handlers, queues) and each /assign/<w> (children, by a ChildrenCache: the tasks it
 * holds). Makes sure /assign/<w> exists for each registered worker (a give-back may have removed it).
 *
 * A worker is assignable from the first report of its /assign/<w> on: ZooKeeper sends the events of
 * the leader's own multi before the multi's answer, so the tasks of an assignment are counted by the
 * time its answer is handled.
 *
 * SUSPENDED: the views stand still; the caches list again on reconnection.
 * LOST, or the term's end (`signal`): every watch is closed.
 */
import { describeError } from '../errors.js';
import { ChildrenCache } from '../recipes/children-cache.js';
import type { Logger } from '../zk/connect-options.js';
import type { Session } from '../zk/session.js';
import type { ChildrenChange, DataWatch } from '../zk/watchers.js';
import type { WorkerLoad } from './assignment-policy.js';
import { assignDir, PATHS, parseWorkerInfo, type WorkerInfo, workerPath } from './protocol.js';

export interface RosterHooks {
  /** A worker may take more tasks now (it joined, resumed, or freed slots). */
  changed(): void;
  /** A worker's registration vanished: its tasks must go back. */
  gone(worker: string): void;
}

interface Entry {
  name: string;
  info: WorkerInfo | undefined;
  /** Its /workers/<w> exists (as last seen). */
  live: boolean;
  handlers: ReadonlySet<string> | undefined;
  data?: DataWatch;
  assigned?: ChildrenCache;
}

export class WorkerRoster {
  readonly #session: Session;
  readonly #signal: AbortSignal;
  readonly #hooks: RosterHooks;
  readonly #log: Logger;
  readonly #entries = new Map<string, Entry>();
  #closed = false;

  constructor(session: Session, signal: AbortSignal, hooks: RosterHooks, log: Logger) {
    this.#session = session;
    this.#signal = signal;
    this.#hooks = hooks;
    this.#log = log;
  }

  /** Start watching; resolves once /workers has been listed. */
  async start(): Promise<void> {
    const watch = this.#session.watchChildren(PATHS.workers, (ch) => this.#onWorkers(ch));
    const close = () => {
      this.#closed = true;
      watch.close();
      for (const e of this.#entries.values()) this.#closeEntry(e);
    };
    if (this.#signal.aborted) close();
    else this.#signal.addEventListener('abort', close, { once: true });
    await watch.ready;
  }

  /** Workers whose /workers/<w> was seen: the names. */
  names(): string[] {
    return [...this.#entries.values()].filter((e) => e.live).map((e) => e.name);
  }

  isLive(name: string): boolean {
    return this.#entries.get(name)?.live === true;
  }

  /** The assignable workers and their loads. */
  loads(): WorkerLoad[] {
    const out: WorkerLoad[] = [];
    for (const e of this.#entries.values()) {
      const info = e.info;
      if (!e.live || !info || info.capacity <= 0 || !e.assigned || e.assigned.closed) continue;
      // Counted only once its assignments have been listed (ChildrenCache.ready).
      if (!e.assigned.listedOnce) continue;
      out.push({
        name: e.name,
        capacity: info.capacity,
        prefetch: info.prefetch,
        outstanding: e.assigned.size,
        paused: info.paused,
        shell: info.shell === true,
        // Always present (possibly undefined): one object shape for the planner's hot loop.
        handlers: e.handlers,
        queues: info.queues,
        queueOrder: info.queueOrder,
      });
    }
    return out;
  }

  /** Every worker's assignments, as listed (for the per-queue concurrency counts). */
  *assigned(): Generator<[string, ReadonlySet<string>]> {
    for (const e of this.#entries.values()) if (e.assigned?.listedOnce) yield [e.name, e.assigned.children];
  }

  /** Some live worker serves `queue`. */
  serves(queue: string): boolean {
    for (const e of this.#entries.values())
      if (e.live && e.info?.queues.some((q) => q.name === queue)) return true;
    return false;
  }

  /**
   * A multi found the worker's registration gone: take it out of the plans now (its data watch puts it
   * back if it registers again; the children watch reports it gone). The refusal may be handled after
   * the data watch already reported the worker registered again (both came in one read from the socket),
   * so one `exists` asked now, answered after everything seen so far, puts a worker that is registered
   * back: without it the worker stayed out of every plan for the rest of the term.
   */
  suspect(name: string): void {
    const e = this.#entries.get(name);
    if (!e) return;
    e.live = false;
    void this.#session.client.exists(workerPath(name)).then(
      (stat) => {
        if (!stat || this.#closed || this.#entries.get(name) !== e || e.live) return;
        e.live = true;
        this.#hooks.changed();
      },
      () => {}, // connection trouble: the data watch reports what comes next
    );
  }

  /** Make sure the worker's /assign dir exists (a give-back may have removed it), then say it changed. */
  ensureDir(name: string): void {
    void this.#session.client.ensurePath(assignDir(name)).then(
      () => this.#hooks.changed(),
      () => {},
    );
  }

  #onWorkers(ch: ChildrenChange): void {
    if (this.#closed) return;
    for (const name of ch.added) this.#add(name);
    for (const name of ch.removed) {
      const e = this.#entries.get(name);
      if (e) {
        this.#closeEntry(e);
        this.#entries.delete(name);
      }
      this.#hooks.gone(name);
    }
  }

  #add(name: string): void {
    if (this.#entries.has(name)) return;
    const e: Entry = { name, info: undefined, live: true, handlers: undefined };
    this.#entries.set(name, e);
    e.data = this.#session.watchData(workerPath(name), (d) => {
      const info = parseWorkerInfo(d.data);
      e.live = d.data !== null;
      e.info = info;
      e.handlers = info?.handlers ? new Set(info.handlers) : undefined;
      this.#hooks.changed();
    });
    // The worker makes its /assign dir, but a give-back may have removed it.
    void this.#session.client
      .ensurePath(assignDir(name))
      .catch((err: unknown) => {
        if (!this.#closed)
          this.#log.warn({ err, worker: name }, `could not make ${assignDir(name)}: ${describeError(err)}`);
      })
      .then(() => {
        if (this.#closed || this.#entries.get(name) !== e) return;
        // Every assignment made (ours) and ended (completed, given back) is reported as it happens.
        e.assigned = new ChildrenCache(this.#session, assignDir(name), (u) => {
          if (u.listed || u.events.some((x) => x.type === 'removed')) this.#hooks.changed();
        });
      });
  }

  #closeEntry(e: Entry): void {
    e.live = false;
    e.data?.close();
    e.assigned?.close();
  }
}
