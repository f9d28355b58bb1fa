/**
 * ChildrenCache: the children of one node, kept current by a persistent recursive watch (ZooKeeper
 * 3.6+), every change reported in the order ZooKeeper made it.
 *
 * Nodes: lists `path`; watches it recursively (only creates and deletes of its direct children count;
 * grandchildren and data changes are ignored).
 *
 * Guarantees:
 * - Every create and delete of a child that ZooKeeper reports is delivered as an event, in order, and
 *   none is coalesced: a child deleted and created again in one burst of notifications arrives as
 *   `removed` then `added`, so a consumer that held the old child drops it and reads the new one.
 * - Events that arrive together (one read from the socket) are delivered in one call, so a consumer
 *   reads them in one request.
 * - The watch is added before the listing, and the listing's answer is marked in the stream of events
 *   as it is read: an event that came before the answer is in the listing, one that came after is
 *   applied to it. Nothing between the listing and the watch is lost or counted twice.
 * - The first delivery is the listing (every child `added`, `listed: true`), even when it is empty.
 *
 * SUSPENDED: ZooKeeper keeps no events for a persistent watch across a dropped connection. When the
 * session resumes on a new connection the cache adds its watch again and lists again, and delivers the
 * difference with `listed: true` and the full list in `children`; a child deleted and created again while
 * disconnected has the same name in both listings, so a consumer that must not miss one reconciles
 * against `children` (what it does not hold is new to it).
 * LOST: the cache closes with its session; a new session needs a new cache.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type BackoffPolicy, backoffDelay } from '../backoff.js';
import { isZkError } from '../zk/errors.js';
import type { Session } from '../zk/session.js';
import { EVENT } from '../zk/watch-manager.js';

export interface ChildEvent {
  type: 'added' | 'removed';
  name: string;
}

export interface ChildrenUpdate {
  /** What changed since the last delivery, in order. */
  events: readonly ChildEvent[];
  /** Every child now (a live view: copy it to keep it). */
  children: ReadonlySet<string>;
  /** This delivery follows a listing: the first one, or one after a reconnection. */
  listed: boolean;
}

const RETRY: BackoffPolicy = { initialMs: 50, maxMs: 2000 };

export class ChildrenCache {
  readonly path: string;
  readonly ready: Promise<void>;
  /** `path` + '/': what a child's path starts with. */
  readonly #prefix: string;
  readonly #session: Session;
  readonly #onUpdate: (u: ChildrenUpdate) => void;
  readonly #known = new Set<string>();
  #events: ChildEvent[] = [];
  #listed = false;
  /** The first listing is done: deliveries may start (the first one is the listing). */
  #started = false;
  #flushQueued = false;
  #closed = false;
  #resolveReady!: () => void;
  /** Events seen so far, numbered; and those that came while a listing was on its way. */
  #seq = 0;
  #duringListing: Array<{ seq: number; type: number; name: string }> | undefined;
  #removeWatch: (() => void) | undefined;
  #unsubscribe: (() => void) | undefined;
  readonly #onSessionEnd: () => void;
  #listing = false;
  #relist = false;

  constructor(session: Session, path: string, onUpdate: (u: ChildrenUpdate) => void) {
    this.#session = session;
    this.path = path;
    this.#prefix = path === '/' ? '/' : `${path}/`;
    this.#onUpdate = onUpdate;
    this.ready = new Promise((r) => {
      this.#resolveReady = r;
    });
    this.#unsubscribe = session.supervisor.onReconnect(() => this.#sync());
    // Removed on close: a cache closed before its session (a worker gone from the leader's roster)
    // must not stay reachable from the session's signal until the session ends.
    this.#onSessionEnd = () => this.close();
    session.signal.addEventListener('abort', this.#onSessionEnd, { once: true });
    if (!session.alive) this.close();
    else this.#sync();
  }

  get size(): number {
    return this.#known.size;
  }

  has(name: string): boolean {
    return this.#known.has(name);
  }

  get children(): ReadonlySet<string> {
    return this.#known;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The first listing is done (the contents are known). */
  get listedOnce(): boolean {
    return this.#started;
  }

  /** Stop: no delivery after this returns. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#session.signal.removeEventListener('abort', this.#onSessionEnd);
    this.#removeWatch?.();
    this.#unsubscribe?.();
    this.#resolveReady();
  }

  #onEvent = (type: number, eventPath: string): void => {
    if (this.#closed) return;
    if (eventPath === this.path) {
      // The node itself is gone: so is every child.
      if (type === EVENT.deleted) for (const name of [...this.#known]) this.#apply(EVENT.deleted, name);
      return;
    }
    if (!eventPath.startsWith(this.#prefix)) return;
    const name = eventPath.slice(this.#prefix.length);
    if (name.includes('/') || (type !== EVENT.created && type !== EVENT.deleted)) return;
    this.#apply(type, name);
  };

  #apply(type: number, name: string): void {
    const seq = ++this.#seq;
    this.#duringListing?.push({ seq, type, name });
    if (type === EVENT.created) {
      if (this.#known.has(name)) return;
      this.#known.add(name);
      this.#queue({ type: 'added', name });
    } else if (this.#known.delete(name)) {
      this.#queue({ type: 'removed', name });
    }
  }

  #queue(e: ChildEvent): void {
    this.#events.push(e);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    // A microtask: the notifications of one read from the socket share a delivery, and the consumer
    // hears of them before the event loop turns (a worker starts its tasks sooner).
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  #flush(): void {
    if (this.#closed || !this.#started) return;
    if (this.#events.length === 0 && !this.#listed) return;
    const update: ChildrenUpdate = { events: this.#events, children: this.#known, listed: this.#listed };
    this.#events = [];
    this.#listed = false;
    try {
      this.#onUpdate(update);
    } catch (err) {
      this.#session.supervisor.reportError(err, `children cache of ${this.path}`);
    }
  }

  /** Add the watch and list (again), until it works or the cache closes; one at a time. */
  #sync(): void {
    if (this.#closed) return;
    if (this.#listing) {
      this.#relist = true;
      return;
    }
    this.#listing = true;
    void this.#syncLoop().finally(() => {
      this.#listing = false;
    });
  }

  async #syncLoop(): Promise<void> {
    for (let attempt = 0; !this.#closed; attempt++) {
      this.#relist = false;
      try {
        await this.#listOnce();
        if (!this.#relist) return;
        attempt = -1;
      } catch (err) {
        if (this.#closed || !this.#session.alive) return;
        if (!isZkError(err) || !err.transient) {
          this.#session.supervisor.reportError(err, `children cache of ${this.path}`);
        }
        await sleep(backoffDelay(RETRY, attempt));
      }
    }
  }

  async #listOnce(): Promise<void> {
    const client = this.#session.client;
    this.#removeWatch?.();
    this.#removeWatch = undefined;
    const remove = await client.addWatch(this.path, 'persistentRecursive', this.#onEvent);
    if (this.#closed) {
      remove();
      return;
    }
    this.#removeWatch = remove;
    const during: Array<{ seq: number; type: number; name: string }> = [];
    this.#duringListing = during;
    let answeredAt = Number.POSITIVE_INFINITY;
    let children: string[];
    try {
      children = await client.getChildren(this.path, undefined, () => {
        answeredAt = this.#seq;
      });
    } catch (err) {
      if (!isZkError(err, 'NO_NODE')) throw err;
      children = [];
      answeredAt = this.#seq;
    } finally {
      this.#duringListing = undefined;
    }
    if (this.#closed) return;
    // The listing, plus what happened after it was answered.
    const next = new Set(children);
    for (const e of during) {
      if (e.seq <= answeredAt) continue;
      if (e.type === EVENT.created) next.add(e.name);
      else next.delete(e.name);
    }
    for (const name of [...this.#known]) {
      if (next.has(name)) continue;
      this.#known.delete(name);
      this.#events.push({ type: 'removed', name });
    }
    for (const name of next) {
      if (this.#known.has(name)) continue;
      this.#known.add(name);
      this.#events.push({ type: 'added', name });
    }
    this.#listed = true;
    this.#started = true;
    this.#flush();
    this.#resolveReady();
  }
}
