/**
 * The client's watch tables, as ZooKeeper's Java client keeps them (ZKWatchManager): which callbacks a
 * notification fires, and what to register again on a new connection.
 *
 * - One-shot watches in three tables by path: data (getData, and exists on a node that exists), exist
 *   (exists on a node that does not), child (getChildren). A notification removes and fires the entries
 *   of the tables its type concerns: created and data changed → data, exist; children changed → child;
 *   deleted → data, exist, child.
 * - Persistent watches (ZooKeeper 3.6+ `addWatch`) in two tables: plain persistent watches hear every
 *   event *at* their path (created, deleted, data changed, children changed), never a descendant's;
 *   persistent recursive watches hear created, deleted and data changed at their path and below, never
 *   children changed (the server may send those for a plain watch somebody else set on a descendant).
 * - A callback registered in several tables (or for several paths that one event concerns) is called
 *   once per event: the callbacks of an event are collected once each.
 * - On a new connection every path in every table is registered again, relative to the last zxid seen
 *   (`writeSetWatches`): SetWatches (op 101) when there are only one-shot watches (servers older than
 *   3.6 know only that), SetWatches2 (op 105) when there are persistent ones too.
 */
import { OP, type Writer, XID } from './jute.js';

/** A notification as the server sends it, path without the chroot. Types: `EVENT`. */
export interface WatchEvent {
  type: number;
  state: number;
  path: string;
}

/** A one-shot watch callback: called once, with the event, when the node changes. */
export type WatchCallback = (event: WatchEvent) => void;

/** A persistent watch's listener: the event type and the path it concerns. */
export type PersistentListener = (type: number, path: string) => void;

export const EVENT = { created: 1, deleted: 2, dataChanged: 3, childrenChanged: 4 } as const;

/** Which table a one-shot watch goes to once its request is answered: none, data, exists, children. */
export type WatchKind = 0 | 1 | 2 | 3;
export const W_DATA = 1;
export const W_EXIST = 2;
export const W_CHILD = 3;

export type PersistentMode = 'persistent' | 'persistentRecursive';

type Table<F> = Map<string, Set<F>>;

/** Largest SetWatches packet, in bytes of paths (as the Java client: 128 KB). */
const SET_WATCHES_MAX_LENGTH = 128 * 1024;

function add<F>(table: Table<F>, path: string, fn: F): void {
  let set = table.get(path);
  if (!set) {
    set = new Set();
    table.set(path, set);
  }
  set.add(fn);
}

/** What an event fires when nothing matches: shared, never written to. */
const NONE: readonly never[] = Object.freeze([]);

/**
 * `acc` with the functions of `set` that it lacks (a new array on the first contribution). Arrays, made
 * only when something matches: a notification is per task on a farm's hot path, and two Sets per event
 * were ~8% of what a worker thread allocated.
 */
function gather<F>(acc: F[] | undefined, set: Set<F> | undefined): F[] | undefined {
  if (set === undefined || set.size === 0) return acc;
  if (acc === undefined) return [...set];
  for (const fn of set) if (!acc.includes(fn)) acc.push(fn);
  return acc;
}

function take<F>(table: Table<F>, path: string, acc: F[] | undefined): F[] | undefined {
  const set = table.get(path);
  if (set === undefined) return acc;
  table.delete(path);
  return gather(acc, set);
}

export class WatchManager {
  readonly data: Table<WatchCallback> = new Map();
  readonly exist: Table<WatchCallback> = new Map();
  readonly child: Table<WatchCallback> = new Map();
  readonly persistent: Table<PersistentListener> = new Map();
  readonly persistentRecursive: Table<PersistentListener> = new Map();

  /** Register a one-shot watch (its request was answered). */
  register(kind: WatchKind, path: string, fn: WatchCallback): void {
    if (kind === W_DATA) add(this.data, path, fn);
    else if (kind === W_EXIST) add(this.exist, path, fn);
    else if (kind === W_CHILD) add(this.child, path, fn);
  }

  /** Add a persistent listener; returns the function that removes it. */
  addPersistent(mode: PersistentMode, path: string, fn: PersistentListener): () => void {
    const table = mode === 'persistent' ? this.persistent : this.persistentRecursive;
    add(table, path, fn);
    const listeners = table.get(path)!;
    return () => {
      listeners.delete(fn);
      if (listeners.size === 0 && table.get(path) === listeners) table.delete(path);
    };
  }

  /**
   * The callbacks a notification fires, each once: the one-shot watches it consumes (removed from their
   * tables) and the persistent listeners it concerns (kept). The lists are the caller's to iterate only.
   */
  materialize(
    type: number,
    path: string,
  ): { oneShot: readonly WatchCallback[]; persistent: readonly PersistentListener[] } {
    if (type < EVENT.created || type > EVENT.childrenChanged) return { oneShot: NONE, persistent: NONE };
    let oneShot: WatchCallback[] | undefined;
    if (type === EVENT.childrenChanged) oneShot = take(this.child, path, oneShot);
    else {
      oneShot = take(this.data, path, oneShot);
      oneShot = take(this.exist, path, oneShot);
      if (type === EVENT.deleted) oneShot = take(this.child, path, oneShot);
    }
    let persistent = gather(undefined, this.persistent.get(path));
    if (type !== EVENT.childrenChanged && this.persistentRecursive.size > 0) {
      // The path itself and each of its ancestors, up to the root.
      for (let p = path; ; p = p.slice(0, p.lastIndexOf('/')) || '/') {
        persistent = gather(persistent, this.persistentRecursive.get(p));
        if (p === '/') break;
      }
    }
    return { oneShot: oneShot ?? NONE, persistent: persistent ?? NONE };
  }

  /** Whether any table holds `path`. */
  hasAny(path: string): boolean {
    return (
      this.data.has(path) ||
      this.exist.has(path) ||
      this.child.has(path) ||
      this.persistent.has(path) ||
      this.persistentRecursive.has(path)
    );
  }

  get empty(): boolean {
    return (
      this.data.size === 0 &&
      this.exist.size === 0 &&
      this.child.size === 0 &&
      this.persistent.size === 0 &&
      this.persistentRecursive.size === 0
    );
  }

  /**
   * Write the packets that register every watch again on a new connection, relative to `lastZxid` (the
   * server fires at once the one-shot watches whose node changed after it). `serverPath` adds the chroot.
   */
  writeSetWatches(w: Writer, lastZxid: Buffer, serverPath: (p: string) => string): void {
    const lists = [this.data, this.exist, this.child, this.persistent, this.persistentRecursive].map((t) => [
      ...t.keys(),
    ]);
    const withPersistent = lists[3]!.length > 0 || lists[4]!.length > 0;
    const tables = withPersistent ? 5 : 3;
    const next = [0, 0, 0, 0, 0];
    while (next.some((i, k) => k < tables && i < lists[k]!.length)) {
      const start = w.pos;
      w.int(0); // frame length, filled in below
      w.int(XID.setWatches);
      w.int(withPersistent ? OP.setWatches2 : OP.setWatches);
      w.raw(lastZxid);
      let budget = SET_WATCHES_MAX_LENGTH;
      for (let k = 0; k < tables; k++) {
        const list = lists[k]!;
        const countAt = w.pos;
        w.int(0);
        let n = 0;
        while (next[k]! < list.length && budget > 0) {
          const p = serverPath(list[next[k]!]!);
          w.ustring(p);
          budget -= p.length + 4;
          next[k]!++;
          n++;
        }
        w.buf.writeInt32BE(n, countAt);
      }
      w.buf.writeInt32BE(w.pos - start - 4, start);
    }
  }
}
