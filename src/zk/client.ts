/**
 * A promise API over one ZooKeeper session (connection.ts speaks the wire protocol).
 *
 * - Every request has a timeout: a timed-out request rejects with `OPERATION_TIMEOUT`.
 * - Every failure is a `ZkError` with ZooKeeper's code name; bad arguments (a path without a leading
 *   slash, a request larger than the servers' jute.maxbuffer) reject with `BAD_ARGUMENTS` before
 *   anything is sent, never throw.
 * - `failPending(err)` rejects everything in flight at once; the supervisor calls it when the session is lost.
 * - Every request is counted (`requests`; a supervisor adds up its sessions'); a `multi` counts once.
 * - Versions are passed exactly (0 means version 0, -1 means any), in transactions too.
 *
 * Operations made of several requests are in compound.ts, multiRead in multi-read.ts, the ACLs and their
 * requests in acl.ts, transactions in transaction.ts.
 */

import { getAcl, OPEN_ACL, setAcl } from './acl.js';
import { ensurePath, move, removeRecursive, secure } from './compound.js';
import type { ZkConnection } from './connection.js';
import { DEFAULT_MAX_BUFFER } from './connection-options.js';
import { isZkError } from './errors.js';
import { type Acl, encodedAcl, OP, type Reader, type Stat, type Writer } from './jute.js';
import { getDataMany, type ReadResult } from './multi-read.js';
import {
  badArgument,
  CreateMode,
  type CreateModeValue,
  type Data,
  dataProblem,
  pathProblem,
  readChildren,
  readData,
  readStat,
  toBuffer,
} from './ops.js';
import { Transaction } from './transaction.js';
import { type PersistentListener, W_CHILD, W_DATA, W_EXIST, type WatchCallback } from './watch-manager.js';

export type { Acl, Stat } from './jute.js';
export { CreateMode, type CreateModeValue, type Data, type OpResult, pathProblem } from './ops.js';
export { Transaction } from './transaction.js';
export type { PersistentListener, WatchEvent } from './watch-manager.js';

/** A one-shot watch callback: called once, on the next change. */
export type RawWatcher = WatchCallback;

export interface ZkClientOptions {
  /** ACL for nodes this client creates. @defaultValue open ACL (world:anyone:cdrwa) */
  acl?: readonly Acl[];
}

/**
 * The largest request ZooKeeper takes by default (its jute.maxbuffer, 0xfffff bytes): a node's data, with
 * its path and ACL, must fit. A connection's `maxBuffer` option sets the limit it enforces.
 */
export const MAX_DATA_BYTES = DEFAULT_MAX_BUFFER;

/** removeWatches' WatcherType.Any (Children 1, Data 2). */
const WATCHER_TYPE_ANY = 3;

export class ZkClient {
  readonly connection: ZkConnection;
  readonly acl: readonly Acl[];
  /** Requests this client sent. */
  requests = 0;
  #failure: Error | undefined;

  constructor(connection: ZkConnection, options: ZkClientOptions = {}) {
    this.connection = connection;
    this.acl = options.acl ?? OPEN_ACL;
  }

  /** Count and send one request (see ZkConnection.request). */
  send<T>(
    type: number,
    op: string,
    path: string | undefined,
    encode: (w: Writer) => void,
    decode: ((r: Reader) => unknown) | undefined,
    extra?: Parameters<ZkConnection['request']>[5],
  ): Promise<T> {
    if (this.#failure) return Promise.reject(this.#failure);
    this.requests++;
    return this.connection.request<T>(type, op, path, encode, decode, extra);
  }

  /** Reject every request in flight, and every later one, with `err` (the session is gone). */
  failPending(err: Error): void {
    this.#failure = err;
    this.connection.failAll(err);
  }

  get pendingCount(): number {
    return this.connection.pendingCount;
  }

  /** Create a node; returns its path (with the sequence suffix for sequential modes). */
  create(
    path: string,
    data?: Data,
    mode: CreateModeValue = CreateMode.PERSISTENT,
    acl?: readonly Acl[],
  ): Promise<string> {
    const problem = pathProblem(path, (mode & 2) !== 0);
    if (problem) return badArgument('create', path, problem);
    const buf = toBuffer(data);
    const tooBig = dataProblem(buf, this.connection.maxBuffer);
    if (tooBig) return badArgument('create', path, tooBig);
    const conn = this.connection;
    const aclBytes = encodedAcl(acl ?? this.acl);
    return this.send<string>(
      OP.create,
      'create',
      path,
      (w) => {
        w.ustring(conn.serverPath(path));
        w.buffer(buf);
        w.raw(aclBytes);
        w.int(mode);
      },
      (r) => conn.clientPath(r.ustring() ?? path),
    );
  }

  /** Create an ephemeral node: it lives as long as this session. */
  createEphemeral(path: string, data?: Data): Promise<string> {
    return this.create(path, data, CreateMode.EPHEMERAL);
  }

  /** Create a persistent sequential node under `prefix` (e.g. `/tasks/task-`); returns its full path. */
  createSequential(
    prefix: string,
    data?: Data,
    mode: CreateModeValue = CreateMode.PERSISTENT_SEQUENTIAL,
  ): Promise<string> {
    return this.create(prefix, data, mode);
  }

  /** Make sure a persistent node and all its parents exist. Idempotent; never overwrites data. */
  ensurePath(path: string, data?: Data): Promise<void> {
    return ensurePath(this, path, data);
  }

  /** The node's stat, or null when it does not exist. A watcher fires on its create, change or delete. */
  exists(path: string, watcher?: RawWatcher): Promise<Stat | null> {
    const problem = pathProblem(path);
    if (problem) return badArgument('exists', path, problem);
    const conn = this.connection;
    return this.send<Stat | null>(
      OP.exists,
      'exists',
      path,
      (w) => {
        w.ustring(conn.serverPath(path));
        w.bool(watcher !== undefined);
      },
      readStat,
      { watch: watcher, watchKind: W_EXIST, noNodeIsNull: true },
    );
  }

  getData(path: string, watcher?: RawWatcher): Promise<{ data: Buffer; stat: Stat }> {
    const problem = pathProblem(path);
    if (problem) return badArgument('getData', path, problem);
    const conn = this.connection;
    return this.send(
      OP.getData,
      'getData',
      path,
      (w) => {
        w.ustring(conn.serverPath(path));
        w.bool(watcher !== undefined);
      },
      readData,
      watcher ? { watch: watcher, watchKind: W_DATA } : undefined,
    );
  }

  /**
   * Read the data of many nodes in one round trip (ZooKeeper's multiRead, 3.6+; at most MULTI_READ_PATHS
   * paths to a request, all sent at once). Each result is the node's data and stat, or a ZkError
   * (NO_NODE, ...) for that path alone; the others are unaffected.
   */
  getDataMany(paths: readonly string[]): Promise<ReadResult[]> {
    return getDataMany(this, paths);
  }

  /**
   * Add a persistent watch (ZooKeeper 3.6+): `listener` hears of every change at `path` — for
   * `'persistent'`: created, deleted, data changed, children changed, at `path` only; for
   * `'persistentRecursive'`: created, deleted, data changed, at `path` and below, each with its own path —
   * until the returned function is called. The watch survives reconnects (it is registered again with
   * SetWatches2), but changes made while disconnected are not reported: re-read after a reconnect. It
   * ends with the session. The listener is registered before the request goes out, so nothing the
   * server reports after it took the watch is missed. Calling the returned function stops the callbacks;
   * when it removes the last watch this client keeps at `path` (of any kind), the server's watch is
   * removed too (`removeWatches`, sent without waiting: ZooKeeper 3.8 removes every kind of watch at a
   * path at once, hence only then). Otherwise the server keeps it until the session ends.
   */
  async addWatch(
    path: string,
    mode: 'persistent' | 'persistentRecursive',
    listener: PersistentListener,
  ): Promise<() => void> {
    const problem = pathProblem(path);
    if (problem) return badArgument('addWatch', path, problem);
    const remove = this.connection.addPersistentListener(mode, path, listener);
    const conn = this.connection;
    try {
      await this.send<void>(
        OP.addWatch,
        'addWatch',
        path,
        (w) => {
          w.ustring(conn.serverPath(path));
          w.int(mode === 'persistent' ? 0 : 1);
        },
        undefined,
      );
    } catch (err) {
      remove();
      throw err;
    }
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      remove();
      // Requests are answered in order: an addWatch sent after this removal still leaves a watch.
      if (!conn.hasWatches(path)) void this.#removeWatches(path).catch(() => {});
    };
  }

  /**
   * Remove every watch of this session at `path` from the server (WatcherType.Any; NO_WATCHER when it
   * has none). A lost connection removes them anyway: a new one registers what the tables hold.
   */
  #removeWatches(path: string): Promise<void> {
    const conn = this.connection;
    return this.send<void>(
      OP.removeWatches,
      'removeWatches',
      path,
      (w) => {
        w.ustring(conn.serverPath(path));
        w.int(WATCHER_TYPE_ANY);
      },
      undefined,
    );
  }

  /**
   * Wait until the server this session is connected to has caught up with the leader, as of now (a read
   * after `sync` sees every write completed before it, whichever client made it). Returns the path.
   */
  sync(path: string): Promise<string> {
    const problem = pathProblem(path);
    if (problem) return badArgument('sync', path, problem);
    const conn = this.connection;
    return this.send<string>(
      OP.sync,
      'sync',
      path,
      (w) => w.ustring(conn.serverPath(path)),
      (r) => conn.clientPath(r.ustring() ?? path),
    );
  }

  /** Read a node's data as parsed JSON. */
  async getJson<T = unknown>(path: string): Promise<{ value: T; stat: Stat }> {
    const { data, stat } = await this.getData(path);
    return { value: JSON.parse(data.toString('utf8')) as T, stat };
  }

  /** Set data; `version` -1 means any version (0 means exactly 0: fencing works on a fresh node). */
  setData(path: string, data: Data, version = -1): Promise<Stat> {
    const problem = pathProblem(path);
    if (problem) return badArgument('setData', path, problem);
    const buf = toBuffer(data);
    const tooBig = dataProblem(buf, this.connection.maxBuffer);
    if (tooBig) return badArgument('setData', path, tooBig);
    const conn = this.connection;
    return this.send(
      OP.setData,
      'setData',
      path,
      (w) => {
        w.ustring(conn.serverPath(path));
        w.buffer(buf);
        w.int(version);
      },
      readStat,
    );
  }

  /** Delete a node; `version` -1 means any version. */
  remove(path: string, version = -1): Promise<void> {
    const problem = pathProblem(path);
    if (problem) return badArgument('remove', path, problem);
    const conn = this.connection;
    return this.send(
      OP.delete,
      'remove',
      path,
      (w) => {
        w.ustring(conn.serverPath(path));
        w.int(version);
      },
      undefined,
    );
  }

  /** Delete a node if it exists; true when it was deleted now. */
  async removeIfExists(path: string, version = -1): Promise<boolean> {
    try {
      await this.remove(path, version);
      return true;
    } catch (err) {
      if (isZkError(err, 'NO_NODE')) return false;
      throw err;
    }
  }

  /** Delete a node and everything under it (not atomic: for clean-up and tests). */
  removeRecursive(path: string): Promise<void> {
    return removeRecursive(this, path);
  }

  /**
   * The names of a node's children. A watcher fires on the next child create or delete (or the node's
   * delete). `onAnswer` runs the moment the answer is read, before any notification that came after it
   * (a watch that keeps its own list uses it to order the listing among the events).
   */
  getChildren(path: string, watcher?: RawWatcher, onAnswer?: () => void): Promise<string[]> {
    const problem = pathProblem(path);
    if (problem) return badArgument('getChildren', path, problem);
    const conn = this.connection;
    return this.send(
      OP.getChildren,
      'getChildren',
      path,
      (w) => {
        w.ustring(conn.serverPath(path));
        w.bool(watcher !== undefined);
      },
      readChildren,
      watcher || onAnswer ? { watch: watcher, watchKind: W_CHILD, onAnswer } : undefined,
    );
  }

  /**
   * Move a node atomically: one `multi` that creates `to` (with the source's data, or `data` when given)
   * and deletes `from` at the version read. Either both happen or neither: a failure (the target exists,
   * the source changed or vanished) leaves the source in place. Returns the target path.
   */
  move(from: string, to: string, options: { data?: Data; mode?: CreateModeValue } = {}): Promise<string> {
    return move(this, from, to, options);
  }

  /** Start a transaction (`multi`): all of its operations happen, or none. */
  transaction(): Transaction {
    return new Transaction(this);
  }

  /** A node's ACL and stat. */
  getAcl(path: string): Promise<{ acl: Acl[]; stat: Stat }> {
    return getAcl(this, path);
  }

  /** Set a node's ACL (`version` -1: any). */
  setAcl(path: string, acl: readonly Acl[], version = -1): Promise<Stat> {
    return setAcl(this, path, acl, version);
  }

  /**
   * Give an existing node this client's ACL if anyone at all may use it now (world:anyone): a node
   * created before access control was turned on would otherwise stay open. True when it changed.
   */
  secure(path: string): Promise<boolean> {
    return secure(this, path);
  }

  /** Add an authentication identity to this session, e.g. `('digest', 'user:password')`. */
  addAuth(scheme: string, credentials: string): void {
    this.connection.addAuth(scheme, Buffer.from(credentials));
  }

  /** The current session id as 16 hex digits. */
  get sessionId(): string {
    return this.connection.sessionId;
  }
}
