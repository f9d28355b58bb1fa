/**
 * One ZooKeeper session of a supervisor (supervisor.ts): its client, its number, and a `signal` that
 * aborts the moment the session is lost or closed. Watches made through it end with it; the
 * supervisor ends it (every request in flight fails with the reason) and makes a new one.
 */
import { setMaxListeners } from 'node:events';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import type { ZkClient } from './client.js';
import type { Supervisor } from './supervisor.js';
import {
  type ChildrenChange,
  type ChildrenWatcher,
  type ClientSource,
  childrenWatch,
  type DataChange,
  DataWatch,
  type WatchOptions,
} from './watchers.js';

/** One ZooKeeper session. Its `signal` aborts the moment the session is lost or closed. */
export class Session {
  readonly client: ZkClient;
  readonly supervisor: Supervisor;
  /** 1 for the first session of the supervisor, 2 after the first loss, ... */
  readonly number: number;
  readonly #abort = new AbortController();
  readonly #watches = new Set<{ close(): void }>();

  constructor(supervisor: Supervisor, client: ZkClient, number: number) {
    // The session's signal is a fan-out point: every watch and cache made through it listens (the
    // leader holds one per worker), so Node's leak warning at 11 listeners would fire on any farm of
    // more than ten workers. Whoever listens removes its listener when it closes before the session.
    setMaxListeners(0, this.#abort.signal);
    this.supervisor = supervisor;
    this.client = client;
    this.number = number;
  }

  /** Session id as 16 hex digits. */
  get id(): string {
    return this.client.sessionId;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** False once the session is lost or closed. */
  get alive(): boolean {
    return !this.#abort.signal.aborted;
  }

  /** Throw `ZKFARM_SESSION_LOST` if the session is gone (call between steps of long work). */
  throwIfLost(): void {
    if (!this.alive) throw new ZkfarmError(ErrorCodes.SESSION_LOST, 'the ZooKeeper session was lost');
  }

  #source(): ClientSource {
    return {
      client: () => (this.alive ? this.client : undefined),
      onReconnect: (rearm) => this.supervisor.onReconnect(rearm),
      onError: (err) => this.supervisor.reportError(err, 'watch'),
      // A watch closed before its session (the leader's watch on a departed worker) is let go now.
      onClosed: (w) => this.#watches.delete(w),
    };
  }

  /** Watch a node's children for this session's lifetime (reports the initial list as `added`). */
  watchChildren(
    path: string,
    onChange: (change: ChildrenChange) => void | Promise<void>,
    options?: WatchOptions,
  ): ChildrenWatcher {
    const w = childrenWatch(this.#source(), path, onChange, options);
    this.#track(w);
    return w;
  }

  /** Watch a node's data for this session's lifetime (data null while the node does not exist). */
  watchData(path: string, onChange: (change: DataChange) => void | Promise<void>): DataWatch {
    const w = new DataWatch(this.#source(), path, onChange);
    this.#track(w);
    return w;
  }

  /** @internal Watches made through this session and still open (a test's view of what it holds). */
  get openWatches(): number {
    return this.#watches.size;
  }

  #track(w: { close(): void }): void {
    if (!this.alive) w.close();
    else this.#watches.add(w);
  }

  /** @internal called by the supervisor */
  end(reason: Error): void {
    if (!this.alive) return;
    this.#abort.abort(reason);
    for (const w of [...this.#watches]) w.close();
    this.#watches.clear();
    this.client.failPending(reason);
  }
}
