/**
 * A promise API over one node-zookeeper-client session.
 *
 * - Every request has a timeout (the library has none: a stalled server or a request queued while the
 *   session expires would otherwise never settle). A timed-out request rejects with `OPERATION_TIMEOUT`.
 * - Every failure is a `ZkError` with ZooKeeper's code name; argument errors the library throws
 *   synchronously (bad path, data over 1 MB) become rejections with `BAD_ARGUMENTS`, never throws.
 * - `failPending(err)` rejects everything in flight at once; the supervisor calls it when the session is lost.
 * - Every request is counted (`requests`, and the process-wide `zkRequestCounter`); a `multi` counts once.
 */

import { createHash } from 'node:crypto';
import zookeeper from 'node-zookeeper-client';
import { isZkError, toZkError, ZK_CODES, ZkError } from './errors.js';
import {
  ADD_WATCH_MODE,
  addWatchRequest,
  multiReadRequest,
  OP_CODES,
  type PersistentListener,
  persistentListeners,
  pushOp,
} from './patches.js';

export type RawClient = zookeeper.Client;
export type Acl = zookeeper.ACL;
export type Stat = zookeeper.Stat;

export const CreateMode = {
  PERSISTENT: 0,
  EPHEMERAL: 1,
  PERSISTENT_SEQUENTIAL: 2,
  EPHEMERAL_SEQUENTIAL: 3,
} as const;
export type CreateModeValue = (typeof CreateMode)[keyof typeof CreateMode];

/** A watch callback as the library calls it: once, on the next change. */
export type RawWatcher = (event: zookeeper.Event) => void;

const AclStatics = zookeeper.ACL as unknown as { OPEN_ACL_UNSAFE: Acl[]; READ_ACL_UNSAFE: Acl[] };

/** world:anyone may do everything (ZooKeeper's default). */
export const OPEN_ACL: Acl[] = AclStatics.OPEN_ACL_UNSAFE;

/**
 * An ACL that gives all rights to one digest identity (`user:password`), and nothing to anyone else.
 * The id is ZooKeeper's digest form `user:base64(sha1("user:password"))`.
 */
export function digestAcl(credentials: string): Acl[] {
  const user = credentials.slice(0, credentials.indexOf(':'));
  const hash = createHash('sha1').update(credentials).digest('base64');
  return [new zookeeper.ACL(zookeeper.Permission.ALL, new zookeeper.Id('digest', `${user}:${hash}`))];
}

/**
 * Requests sent by every ZkClient of this thread (benchmarks read it; a `multi` counts once), in all and
 * by operation (`create`, `getData`, `multi`, ...).
 */
export const zkRequestCounter: { total: number; byOp: Record<string, number> } = { total: 0, byOp: {} };

export interface ZkClientOptions {
  /** Milliseconds a request may take before it rejects with OPERATION_TIMEOUT. @defaultValue 10000 */
  requestTimeout?: number;
  /** ACL for nodes this client creates. @defaultValue open ACL (world:anyone:cdrwa) */
  acl?: Acl[];
}

export type Data = Buffer | string | null | undefined;

function toBuffer(data: Data): Buffer | undefined {
  if (data === null || data === undefined) return undefined;
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/** Largest data a znode accepts with ZooKeeper's default jute.maxbuffer (less a little for the request). */
export const MAX_DATA_BYTES = 1024 * 1024 - 1024;

export interface OpResult {
  /** For a create: the created path (with its sequence suffix). */
  path?: string;
  stat?: Stat;
}

export class ZkClient {
  readonly raw: RawClient;
  readonly requestTimeout: number;
  readonly acl: Acl[];
  /** Requests this client sent. */
  requests = 0;
  readonly #pending = new Set<(err: Error) => void>();
  #failure: Error | undefined;

  constructor(raw: RawClient, options: ZkClientOptions = {}) {
    this.raw = raw;
    this.requestTimeout = options.requestTimeout ?? 10_000;
    this.acl = options.acl ?? OPEN_ACL;
  }

  /**
   * Send one request. `send` receives the library callback; the returned promise settles with the
   * callback's value, a ZkError, or OPERATION_TIMEOUT — whichever comes first.
   */
  request<T>(
    op: string,
    path: string | undefined,
    send: (cb: (err: unknown, value?: T) => void) => void,
  ): Promise<T> {
    if (this.#failure) return Promise.reject(this.#failure);
    this.requests++;
    zkRequestCounter.total++;
    zkRequestCounter.byOp[op] = (zkRequestCounter.byOp[op] ?? 0) + 1;
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const finish = (err: Error | undefined, value?: T) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.#pending.delete(fail);
        if (err) reject(err);
        else resolve(value as T);
      };
      const fail = (err: Error) => finish(err);
      const timer = setTimeout(
        () =>
          finish(
            new ZkError(
              ZK_CODES.OPERATION_TIMEOUT,
              op,
              path,
              `no answer within ${this.requestTimeout} ms; the connection may be stalled or the session lost`,
            ),
          ),
        this.requestTimeout,
      );
      this.#pending.add(fail);
      try {
        send((err, value) => (err ? finish(toZkError(err, op, path)) : finish(undefined, value)));
      } catch (err) {
        finish(toZkError(err, op, path));
      }
    });
  }

  /** Reject every request in flight, and every later one, with `err` (the session is gone). */
  failPending(err: Error): void {
    this.#failure = err;
    for (const fail of [...this.#pending]) fail(err);
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Create a node; returns its path (with the sequence suffix for sequential modes). */
  create(
    path: string,
    data?: Data,
    mode: CreateModeValue = CreateMode.PERSISTENT,
    acl?: Acl[],
  ): Promise<string> {
    const buf = toBuffer(data);
    return this.request<string>('create', path, (cb) =>
      buf
        ? this.raw.create(path, buf, acl ?? this.acl, mode, cb)
        : this.raw.create(path, acl ?? this.acl, mode, cb),
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
  async ensurePath(path: string, data?: Data): Promise<void> {
    if (path === '/' || path === '') return;
    try {
      await this.create(path, data);
      return;
    } catch (err) {
      if (isZkError(err, 'NODE_EXISTS')) return;
      if (!isZkError(err, 'NO_NODE')) throw err;
    }
    const parent = path.slice(0, path.lastIndexOf('/')) || '/';
    await this.ensurePath(parent);
    try {
      await this.create(path, data);
    } catch (err) {
      if (!isZkError(err, 'NODE_EXISTS')) throw err;
    }
  }

  /** The node's stat, or null when it does not exist. */
  exists(path: string, watcher?: RawWatcher): Promise<Stat | null> {
    return this.request<Stat | null>('exists', path, (cb) =>
      watcher ? this.raw.exists(path, watcher, cb) : this.raw.exists(path, cb),
    ).then((s) => s ?? null);
  }

  async getData(path: string, watcher?: RawWatcher): Promise<{ data: Buffer; stat: Stat }> {
    const [data, stat] = await this.request<[Buffer | undefined, Stat]>('getData', path, (cb) => {
      const done = (err: unknown, data?: Buffer, stat?: Stat) => cb(err, [data, stat as Stat]);
      if (watcher) this.raw.getData(path, watcher, done);
      else this.raw.getData(path, done);
    });
    return { data: data ?? Buffer.alloc(0), stat };
  }

  /**
   * Read the data of many nodes in one round trip (ZooKeeper's multiRead, 3.6+). Each result is the
   * node's data and stat, or a ZkError (NO_NODE, ...) for that path alone; the others are unaffected.
   */
  async getDataMany(paths: readonly string[]): Promise<Array<{ data: Buffer; stat: Stat } | ZkError>> {
    if (paths.length === 0) return [];
    const cm = (
      this.raw as unknown as {
        connectionManager: { queue(req: unknown, cb: (err: unknown, res?: unknown) => void): void };
      }
    ).connectionManager;
    const response = await this.request<{
      payload: { results: Array<{ type: number; err?: number; data?: Buffer; stat?: Stat }> };
    }>('multiRead', paths[0], (cb) =>
      cm.queue(multiReadRequest(paths), cb as (err: unknown, res?: unknown) => void),
    );
    return response.payload.results.map((r, i) =>
      r.type === -1 || r.err
        ? new ZkError(r.err ?? ZK_CODES.SYSTEM_ERROR, 'getData', paths[i])
        : { data: r.data ?? Buffer.alloc(0), stat: r.stat as Stat },
    );
  }

  /**
   * Add a persistent watch (ZooKeeper 3.6+): `listener` hears of every change at `path` (and, for
   * `persistentRecursive`, below it, each with its own path) until the returned function is called or
   * the connection drops — the watch does not survive a reconnect: add it again (then re-read, since
   * changes while disconnected were not reported). The listener is registered before the request goes
   * out, so nothing the server reports after it took the watch is missed. Removing it here stops the
   * callbacks; the server keeps the watch until the session ends.
   */
  async addWatch(
    path: string,
    mode: keyof typeof ADD_WATCH_MODE,
    listener: PersistentListener,
  ): Promise<() => void> {
    const table = persistentListeners(this.raw);
    let listeners = table.get(path);
    if (!listeners) {
      listeners = new Set();
      table.set(path, listeners);
    }
    listeners.add(listener);
    const remove = () => {
      listeners.delete(listener);
      if (listeners.size === 0 && table.get(path) === listeners) table.delete(path);
    };
    const cm = (
      this.raw as unknown as {
        connectionManager: { queue(req: unknown, cb: (err: unknown, res?: unknown) => void): void };
      }
    ).connectionManager;
    try {
      await this.request('addWatch', path, (cb) => cm.queue(addWatchRequest(path, ADD_WATCH_MODE[mode]), cb));
    } catch (err) {
      remove();
      throw err;
    }
    return remove;
  }

  /** Read a node's data as parsed JSON. */
  async getJson<T = unknown>(path: string): Promise<{ value: T; stat: Stat }> {
    const { data, stat } = await this.getData(path);
    return { value: JSON.parse(data.toString('utf8')) as T, stat };
  }

  /** Set data; `version` -1 means any version (0 means exactly 0: fencing works on a fresh node). */
  setData(path: string, data: Data, version = -1): Promise<Stat> {
    const buf = toBuffer(data) ?? Buffer.alloc(0);
    return this.request<Stat>('setData', path, (cb) => this.raw.setData(path, buf, version, cb));
  }

  /** Delete a node; `version` -1 means any version. */
  remove(path: string, version = -1): Promise<void> {
    return this.request<void>('remove', path, (cb) => this.raw.remove(path, version, cb));
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
  async removeRecursive(path: string): Promise<void> {
    let children: string[];
    try {
      children = await this.getChildren(path);
    } catch (err) {
      if (isZkError(err, 'NO_NODE')) return;
      throw err;
    }
    await Promise.all(children.map((c) => this.removeRecursive(`${path === '/' ? '' : path}/${c}`)));
    if (path !== '/') await this.removeIfExists(path);
  }

  getChildren(path: string, watcher?: RawWatcher): Promise<string[]> {
    return this.request<string[]>('getChildren', path, (cb) =>
      watcher ? this.raw.getChildren(path, watcher, cb) : this.raw.getChildren(path, cb),
    );
  }

  /**
   * Move a node atomically: one `multi` that creates `to` (with the source's data, or `data` when given)
   * and deletes `from` at the version read. Either both happen or neither: a failure (the target exists,
   * the source changed or vanished) leaves the source in place. Returns the target path.
   */
  async move(
    from: string,
    to: string,
    options: { data?: Data; mode?: CreateModeValue } = {},
  ): Promise<string> {
    const { data, stat } = await this.getData(from);
    const results = await this.transaction()
      .create(to, options.data !== undefined ? options.data : data, options.mode)
      .remove(from, stat.version)
      .commit();
    return results[0]?.path ?? to;
  }

  /** Start a transaction (`multi`): all of its operations happen, or none. */
  transaction(): Transaction {
    return new Transaction(this);
  }

  /** A node's ACL and stat. */
  async getAcl(path: string): Promise<{ acl: Acl[]; stat: Stat }> {
    const [acl, stat] = await this.request<[Acl[], Stat]>('getACL', path, (cb) =>
      this.raw.getACL(path, (err: unknown, acl?: Acl[], stat?: Stat) => cb(err, [acl ?? [], stat as Stat])),
    );
    return { acl, stat };
  }

  /** Set a node's ACL (`version` -1: any). */
  setAcl(path: string, acl: Acl[], version = -1): Promise<Stat> {
    return this.request<Stat>('setACL', path, (cb) => this.raw.setACL(path, acl, version, cb));
  }

  /**
   * Give an existing node this client's ACL if anyone at all may use it now (world:anyone): a node
   * created before access control was turned on would otherwise stay open. True when it changed.
   */
  async secure(path: string): Promise<boolean> {
    const { acl } = await this.getAcl(path);
    if (!acl.some((a) => a.id.scheme === 'world')) return false;
    await this.setAcl(path, this.acl);
    return true;
  }

  /** Add an authentication identity to this session, e.g. `('digest', 'user:password')`. */
  addAuth(scheme: string, credentials: string): void {
    this.raw.addAuthInfo(scheme, Buffer.from(credentials));
  }

  /** The current session id as 16 hex digits. */
  get sessionId(): string {
    return this.raw.getSessionId().toString('hex');
  }
}

/**
 * A small transaction builder. `commit()` sends one `multi`; on failure it rejects with the ZkError of
 * the first operation that failed (its `opIndex` says which) and nothing was applied.
 *
 * Versions are passed through exactly (0 stays 0), unlike the library's own builder.
 */
export class Transaction {
  readonly #client: ZkClient;
  readonly #tx: zookeeper.Transaction;
  readonly #paths: string[] = [];

  constructor(client: ZkClient) {
    this.#client = client;
    this.#tx = client.raw.transaction();
  }

  get size(): number {
    return this.#paths.length;
  }

  create(path: string, data?: Data, mode: CreateModeValue = CreateMode.PERSISTENT, acl?: Acl[]): this {
    const buf = toBuffer(data);
    const acls = acl ?? this.#client.acl;
    if (buf) this.#tx.create(path, buf, acls, mode);
    else this.#tx.create(path, acls, mode);
    this.#paths.push(path);
    return this;
  }

  remove(path: string, version = -1): this {
    pushOp(this.#tx, { type: OP_CODES.DELETE, path, version });
    this.#paths.push(path);
    return this;
  }

  setData(path: string, data: Data, version = -1): this {
    pushOp(this.#tx, { type: OP_CODES.SET_DATA, path, data: toBuffer(data) ?? Buffer.alloc(0), version });
    this.#paths.push(path);
    return this;
  }

  /** Require `path` to exist, at `version` when given (≥ 0). */
  check(path: string, version = -1): this {
    pushOp(this.#tx, { type: OP_CODES.CHECK, path, version });
    this.#paths.push(path);
    return this;
  }

  commit(): Promise<OpResult[]> {
    const paths = this.#paths;
    if (paths.length === 0) return Promise.resolve([]);
    return this.#client.request<OpResult[]>('multi', paths[0], (cb) =>
      this.#tx.commit((err: unknown, results?: Array<{ err?: number; path?: string; stat?: Stat }>) => {
        if (!err)
          return cb(
            undefined,
            (results ?? []).map((r) => ({ path: r.path, stat: r.stat })),
          );
        const index = (results ?? []).findIndex((r) => typeof r.err === 'number' && r.err !== 0);
        const e = toZkError(err, 'multi', index >= 0 ? paths[index] : undefined);
        cb(
          index >= 0
            ? new ZkError(e.zkCode, 'multi', paths[index], undefined, { opIndex: index, cause: err })
            : e,
        );
      }),
    );
  }
}
