/**
 * Re-arming watches that report what changed.
 *
 * ZooKeeper watches fire once. A `ChildrenWatch` re-reads the children with a new watch on every
 * notification, so the read that re-arms is also the read that sees the change: nothing is missed between
 * a notification and the re-arm. It reports `{ added, removed, children }` against the last list it saw.
 * Notifications that arrive while a read is in flight are coalesced into one more read.
 *
 * If the node does not exist yet, the watch waits for it (an `exists` watch); if it is deleted, every
 * child is reported removed and the watch waits for it to come back.
 *
 * A watch reads through a `ClientSource`: the session's client (the watch ends with the session) or the
 * supervisor's (the watch moves to each new session, re-lists, and reports the difference).
 */
import type { ZkClient } from './client.js';
import { isZkError } from './errors.js';

export interface ChildrenChange {
  added: string[];
  removed: string[];
  /** The full list of children after the change, in ZooKeeper's order. */
  children: string[];
  /**
   * `client.requests` just before this listing was sent. ZooKeeper answers one session's requests in
   * order, so the listing reflects every request of the same client numbered at or below this mark.
   */
  requestMark?: number;
}

export interface WatchOptions {
  /**
   * Report every listing, also one that equals the last (empty `added` and `removed`). For callers that
   * reason about `requestMark`: a child created and deleted between two listings shows in neither, yet
   * the listing still proves those requests were seen.
   */
  everyListing?: boolean;
}

export interface DataChange {
  /** The node's data, or null when the node does not exist (deleted, or not created yet). */
  data: Buffer | null;
  version: number;
}

/** Where a watch gets its client: the same one for a session watch, the current one for a supervisor watch. */
export interface ClientSource {
  /** The client to read with, or undefined while there is no live session. */
  client(): ZkClient | undefined;
  /** Called with `rearm` whenever a new session starts; returns an unsubscribe function. */
  onNewSession?(rearm: () => void): () => void;
  /** Reports an error the watch could not handle itself. */
  onError?(err: unknown): void;
}

export interface Watch {
  /** Stop watching; no more callbacks after this returns. */
  close(): void;
  /** Resolves after the first report (the initial list). */
  readonly ready: Promise<void>;
  readonly closed: boolean;
}

abstract class BaseWatch implements Watch {
  closed = false;
  readonly ready: Promise<void>;
  #resolveReady!: () => void;
  #running = false;
  #dirty = false;
  #unsubscribe: (() => void) | undefined;
  /** Bumped on every new session: callbacks armed on an older generation are ignored. */
  protected generation = 0;
  protected readonly source: ClientSource;
  protected readonly path: string;

  constructor(source: ClientSource, path: string) {
    this.source = source;
    this.path = path;
    this.ready = new Promise((r) => {
      this.#resolveReady = r;
    });
    this.#unsubscribe = source.onNewSession?.(() => {
      this.generation++;
      this.trigger();
    });
  }

  protected abstract refresh(client: ZkClient, gen: number): Promise<void>;

  protected markReady(): void {
    this.#resolveReady();
  }

  /** Schedule a read; coalesces with one in flight. */
  protected trigger = (): void => {
    if (this.closed) return;
    if (this.#running) {
      this.#dirty = true;
      return;
    }
    this.#running = true;
    void this.#loop();
  };

  /** A one-shot watcher for the current generation. */
  protected watcher(gen: number): () => void {
    return () => {
      if (gen === this.generation) this.trigger();
    };
  }

  async #loop(): Promise<void> {
    let delay = 50;
    try {
      do {
        this.#dirty = false;
        const client = this.source.client();
        if (!client) return; // no session: a new session re-arms us
        const gen = this.generation;
        try {
          await this.refresh(client, gen);
          delay = 50;
        } catch (err) {
          if (this.closed) return;
          if (isZkError(err) && err.transient) {
            // Connection trouble: the library re-registers watches on reconnect only for armed ones,
            // so read again after a pause (a lost session re-arms us through onNewSession).
            await new Promise((r) => setTimeout(r, delay));
            delay = Math.min(delay * 2, 2000);
            this.#dirty = true;
          } else {
            this.source.onError?.(err);
            return;
          }
        }
      } while (this.#dirty && !this.closed);
    } finally {
      this.#running = false;
    }
  }

  /** Run the user's callback; its errors are reported, never allowed to stop the watch. */
  protected async deliver(fn: () => void | Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.source.onError?.(err);
    }
  }

  close(): void {
    this.closed = true;
    this.#unsubscribe?.();
    this.#resolveReady();
  }
}

export class ChildrenWatch extends BaseWatch {
  #known = new Set<string>();
  #knownList: string[] = [];
  readonly #onChange: (change: ChildrenChange) => void | Promise<void>;
  readonly #everyListing: boolean;
  #first = true;

  constructor(
    source: ClientSource,
    path: string,
    onChange: (change: ChildrenChange) => void | Promise<void>,
    options: WatchOptions = {},
  ) {
    super(source, path);
    this.#onChange = onChange;
    this.#everyListing = options.everyListing === true;
    this.trigger();
  }

  /** The children as last reported. */
  get children(): readonly string[] {
    return this.#knownList;
  }

  protected async refresh(client: ZkClient, gen: number): Promise<void> {
    let children: string[];
    const requestMark = client.requests;
    try {
      children = await client.getChildren(this.path, this.watcher(gen));
    } catch (err) {
      if (!isZkError(err, 'NO_NODE')) throw err;
      // Wait for the node; if it appeared meanwhile, read again.
      const stat = await client.exists(this.path, this.watcher(gen));
      if (stat) return this.refresh(client, gen);
      children = [];
    }
    if (this.closed || gen !== this.generation) return;
    const next = new Set(children);
    const added: string[] = [];
    const removed: string[] = [];
    for (const c of children) if (!this.#known.has(c)) added.push(c);
    for (const c of this.#known) if (!next.has(c)) removed.push(c);
    this.#known = next;
    this.#knownList = children;
    if (added.length || removed.length || this.#first || this.#everyListing) {
      this.#first = false;
      await this.deliver(() => this.#onChange({ added, removed, children, requestMark }));
    }
    this.markReady();
  }
}

export class DataWatch extends BaseWatch {
  readonly #onChange: (change: DataChange) => void | Promise<void>;
  #lastVersion: number | undefined = Number.NaN;
  #lastData: Buffer | null = null;

  constructor(source: ClientSource, path: string, onChange: (change: DataChange) => void | Promise<void>) {
    super(source, path);
    this.#onChange = onChange;
    this.trigger();
  }

  protected async refresh(client: ZkClient, gen: number): Promise<void> {
    let change: DataChange;
    try {
      const { data, stat } = await client.getData(this.path, this.watcher(gen));
      change = { data, version: stat.version };
    } catch (err) {
      if (!isZkError(err, 'NO_NODE')) throw err;
      const stat = await client.exists(this.path, this.watcher(gen));
      if (stat) return this.refresh(client, gen);
      change = { data: null, version: -1 };
    }
    if (this.closed || gen !== this.generation) return;
    const same =
      change.version === this.#lastVersion &&
      (change.data === null
        ? this.#lastData === null
        : this.#lastData !== null && change.data.equals(this.#lastData));
    this.#lastVersion = change.version;
    this.#lastData = change.data;
    if (!same) await this.deliver(() => this.#onChange(change));
    this.markReady();
  }
}
