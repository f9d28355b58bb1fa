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
}

export interface WatchOptions {
  /**
   * Keep one persistent recursive watch (ZooKeeper 3.6+) instead of re-listing after every change: the
   * server names each child created or deleted, so a change costs a notification and no read. The
   * children are listed once at the start and again after a reconnect or a new session (the watch does
   * not survive those).
   */
  persistent?: boolean;
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
  /** Called with `rearm` when the session is resumed on a new connection; returns an unsubscribe function. */
  onReconnect?(rearm: () => void): () => void;
  /** Reports an error the watch could not handle itself. */
  onError?(err: unknown): void;
  /** The watch was closed (a session forgets it then, instead of holding it until the session ends). */
  onClosed?(watch: Watch): void;
}

export interface Watch {
  /** Stop watching; no more callbacks after this returns. */
  close(): void;
  /** Resolves after the first report (the initial list). */
  readonly ready: Promise<void>;
  readonly closed: boolean;
}

/** A children watch of either kind. */
export interface ChildrenWatcher extends Watch {
  /** The children as last reported. */
  readonly children: readonly string[];
}

/** A children watch as `options` ask for: re-listing (the default), or persistent. */
export function childrenWatch(
  source: ClientSource,
  path: string,
  onChange: (change: ChildrenChange) => void | Promise<void>,
  options: WatchOptions = {},
): ChildrenWatcher {
  return options.persistent
    ? new PersistentChildrenWatch(source, path, onChange)
    : new ChildrenWatch(source, path, onChange);
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
            // Connection trouble: the client re-registers one-shot watches on reconnect only for armed ones,
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
    if (this.closed) return;
    this.closed = true;
    this.#unsubscribe?.();
    this.#resolveReady();
    this.source.onClosed?.(this);
  }
}

const NODE_CREATED = 1;
const NODE_DELETED = 2;

/**
 * Children of a node, kept by a persistent recursive watch (see `WatchOptions.persistent`). Changes
 * reported in one turn of the event loop are delivered as one `ChildrenChange`.
 */
export class PersistentChildrenWatch extends BaseWatch {
  #known = new Set<string>();
  readonly #onChange: (change: ChildrenChange) => void | Promise<void>;
  #first = true;
  #remove: (() => void) | undefined;
  #unsubscribeReconnect: (() => void) | undefined;
  /** Events seen so far (numbered), and those that arrived after the last listing was answered. */
  #eventSeq = 0;
  #log: Array<{ seq: number; type: number; name: string }> = [];
  #listing = false;
  #pending: { added: Set<string>; removed: Set<string> } | undefined;

  constructor(
    source: ClientSource,
    path: string,
    onChange: (change: ChildrenChange) => void | Promise<void>,
  ) {
    super(source, path);
    this.#onChange = onChange;
    this.#unsubscribeReconnect = source.onReconnect?.(() => this.trigger());
    this.trigger();
  }

  get children(): readonly string[] {
    return [...this.#known];
  }

  #onEvent = (type: number, eventPath: string): void => {
    if (this.closed) return;
    const prefix = this.path === '/' ? '/' : `${this.path}/`;
    if (eventPath === this.path) {
      if (type !== NODE_DELETED) return;
      // The node itself is gone: so is every child.
      for (const name of [...this.#known]) this.#apply(NODE_DELETED, name);
      return;
    }
    const name = eventPath.slice(prefix.length);
    if (name.includes('/') || (type !== NODE_CREATED && type !== NODE_DELETED)) return; // a grandchild, or data
    this.#apply(type, name);
  };

  #apply(type: number, name: string): void {
    const seq = ++this.#eventSeq;
    if (this.#listing) this.#log.push({ seq, type, name });
    if (type === NODE_CREATED) {
      if (this.#known.has(name)) return;
      this.#known.add(name);
    } else {
      if (!this.#known.delete(name)) return;
    }
    this.#queue(type === NODE_CREATED ? 'added' : 'removed', name);
  }

  #queue(kind: 'added' | 'removed', name: string): void {
    if (!this.#pending) {
      this.#pending = { added: new Set(), removed: new Set() };
      queueMicrotask(() => void this.#flush());
    }
    const other = kind === 'added' ? this.#pending.removed : this.#pending.added;
    // Created and deleted within one turn: it was never there for the caller.
    if (other.delete(name)) return;
    this.#pending[kind].add(name);
  }

  async #flush(): Promise<void> {
    const p = this.#pending;
    this.#pending = undefined;
    if (!p || this.closed || (p.added.size === 0 && p.removed.size === 0 && !this.#first)) return;
    this.#first = false;
    const change = { added: [...p.added], removed: [...p.removed], children: [...this.#known] };
    await this.deliver(() => this.#onChange(change));
  }

  protected async refresh(client: ZkClient, gen: number): Promise<void> {
    this.#remove?.();
    this.#remove = undefined;
    // The watch first, then the listing: anything after the listing is reported by the watch.
    const remove = await client.addWatch(this.path, 'persistentRecursive', this.#onEvent);
    if (this.closed || gen !== this.generation) {
      remove();
      return;
    }
    this.#remove = remove;
    this.#listing = true;
    this.#log = [];
    let answeredAt = Number.POSITIVE_INFINITY;
    let children: string[];
    try {
      children = await client.getChildren(this.path, undefined, () => {
        // Runs as the answer is read: events after this point are newer than the listing.
        answeredAt = this.#eventSeq;
      });
    } catch (err) {
      if (!isZkError(err, 'NO_NODE')) throw err;
      children = [];
      answeredAt = this.#eventSeq;
    } finally {
      this.#listing = false;
    }
    if (this.closed || gen !== this.generation) return;
    // The listing, plus what happened after it was answered.
    const next = new Set(children);
    for (const e of this.#log) {
      if (e.seq <= answeredAt) continue;
      if (e.type === NODE_CREATED) next.add(e.name);
      else next.delete(e.name);
    }
    this.#log = [];
    for (const name of next) if (!this.#known.has(name)) this.#queue('added', name);
    for (const name of this.#known) if (!next.has(name)) this.#queue('removed', name);
    this.#known = next;
    // The first listing is reported even when empty.
    if (this.#first) this.#pending ??= { added: new Set(), removed: new Set() };
    await this.#flush();
    this.markReady();
  }

  override close(): void {
    super.close();
    this.#remove?.();
    this.#unsubscribeReconnect?.();
  }
}

export class ChildrenWatch extends BaseWatch {
  #known = new Set<string>();
  #knownList: string[] = [];
  readonly #onChange: (change: ChildrenChange) => void | Promise<void>;
  #first = true;

  constructor(
    source: ClientSource,
    path: string,
    onChange: (change: ChildrenChange) => void | Promise<void>,
  ) {
    super(source, path);
    this.#onChange = onChange;
    this.trigger();
  }

  /** The children as last reported. */
  get children(): readonly string[] {
    return this.#knownList;
  }

  protected async refresh(client: ZkClient, gen: number): Promise<void> {
    let children: string[];
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
    if (added.length || removed.length || this.#first) {
      this.#first = false;
      await this.deliver(() => this.#onChange({ added, removed, children }));
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
