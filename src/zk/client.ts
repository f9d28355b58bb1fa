/**
 * A promise API over one ZooKeeper session (connection.ts speaks the wire protocol).
 *
 * - Every request has a timeout: a timed-out request rejects with `OPERATION_TIMEOUT`.
 * - Every failure is a `ZkError` with ZooKeeper's code name; bad arguments (a path without a leading
 *   slash, data over 1 MB) reject with `BAD_ARGUMENTS` before anything is sent, never throw.
 * - `failPending(err)` rejects everything in flight at once; the supervisor calls it when the session is lost.
 * - Every request is counted (`requests`; a supervisor adds up its sessions'); a `multi` counts once.
 * - Versions are passed exactly (0 means version 0, -1 means any), in transactions too.
 */

import { createHash } from 'node:crypto';
import {
  type PersistentListener,
  W_CHILD,
  W_DATA,
  W_EXIST,
  type WatchCallback,
  type ZkConnection,
} from './connection.js';
import { isZkError, ZK_CODES, ZkError } from './errors.js';
import { type Acl, encodedAcl, OP, PERMS, type Reader, type Stat, type Writer } from './jute.js';

export type { PersistentListener, WatchEvent } from './connection.js';
export type { Acl, Stat } from './jute.js';

export const CreateMode = {
  PERSISTENT: 0,
  EPHEMERAL: 1,
  PERSISTENT_SEQUENTIAL: 2,
  EPHEMERAL_SEQUENTIAL: 3,
} as const;
export type CreateModeValue = (typeof CreateMode)[keyof typeof CreateMode];

/** A one-shot watch callback: called once, on the next change. */
export type RawWatcher = WatchCallback;

/** world:anyone may do everything (ZooKeeper's default). */
export const OPEN_ACL: readonly Acl[] = Object.freeze([
  { perms: PERMS.all, id: { scheme: 'world', id: 'anyone' } },
]);

/**
 * An ACL that gives all rights to one digest identity (`user:password`), and nothing to anyone else.
 * The id is ZooKeeper's digest form `user:base64(sha1("user:password"))`.
 */
export function digestAcl(credentials: string): Acl[] {
  const user = credentials.slice(0, credentials.indexOf(':'));
  const hash = createHash('sha1').update(credentials).digest('base64');
  return [{ perms: PERMS.all, id: { scheme: 'digest', id: `${user}:${hash}` } }];
}

export interface ZkClientOptions {
  /** ACL for nodes this client creates. @defaultValue open ACL (world:anyone:cdrwa) */
  acl?: readonly Acl[];
}

export type Data = Buffer | string | null | undefined;

/** Most paths in one multiRead: an answer holds every node's data, so this bounds its size. */
export const MULTI_READ_PATHS = 100;

/** Largest data a znode accepts with ZooKeeper's default jute.maxbuffer. */
export const MAX_DATA_BYTES = 1024 * 1024;

export interface OpResult {
  /** For a create: the created path (with its sequence suffix). */
  path?: string;
  stat?: Stat;
}

const EMPTY = Buffer.alloc(0);

function toBuffer(data: Data): Buffer {
  if (data === null || data === undefined) return EMPTY;
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/**
 * Check a path as ZooKeeper does (PathUtils.validatePath): absolute, no empty, `.` or `..` segment, no
 * trailing slash (a sequential create may end with one: the server appends the number), none of the
 * characters it refuses (NUL and other control characters, surrogates, private use).
 */
export function pathProblem(path: unknown, sequential = false): string | undefined {
  if (typeof path !== 'string' || path.length === 0) return 'a path must be a non-empty string';
  if (path.charCodeAt(0) !== 47) return `path ${JSON.stringify(path)} must start with /`;
  const n = path.length;
  if (n === 1) return undefined;
  if (path.charCodeAt(n - 1) === 47 && !sequential) return `path ${JSON.stringify(path)} must not end with /`;
  let segStart = 1;
  for (let i = 1; i <= n; i++) {
    const c = i < n ? path.charCodeAt(i) : 47;
    if (c === 0) return `path ${JSON.stringify(path)} contains a NUL character`;
    // ZooKeeper refuses control characters, surrogates (so emoji), private use and specials.
    if ((c > 0 && c <= 0x1f) || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xf8ff) || c >= 0xfff0)
      return `path ${JSON.stringify(path)} contains a character ZooKeeper does not accept (U+${c.toString(16).padStart(4, '0')})`;
    if (c !== 47) continue;
    const len = i - segStart;
    if (len === 0 && !(sequential && i === n)) return `path ${JSON.stringify(path)} has an empty segment`;
    if ((len === 1 && path.charCodeAt(segStart) === 46) || (len === 2 && path.startsWith('..', segStart)))
      return `path ${JSON.stringify(path)} has a relative segment`;
    segStart = i + 1;
  }
  return undefined;
}

function badArgument(op: string, path: string | undefined, why: string): Promise<never> {
  return Promise.reject(
    new ZkError(ZK_CODES.BAD_ARGUMENTS, op, typeof path === 'string' ? path : undefined, why),
  );
}

function dataProblem(data: Buffer): string | undefined {
  return data.length > MAX_DATA_BYTES
    ? `data is ${data.length} bytes; ZooKeeper takes at most ${MAX_DATA_BYTES} per node`
    : undefined;
}

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
    const tooBig = dataProblem(buf);
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
  async getDataMany(paths: readonly string[]): Promise<Array<{ data: Buffer; stat: Stat } | ZkError>> {
    if (paths.length <= MULTI_READ_PATHS) return this.#multiRead(paths);
    const parts: Array<Promise<Array<{ data: Buffer; stat: Stat } | ZkError>>> = [];
    for (let i = 0; i < paths.length; i += MULTI_READ_PATHS)
      parts.push(this.#multiRead(paths.slice(i, i + MULTI_READ_PATHS)));
    return (await Promise.all(parts)).flat();
  }

  #multiRead(paths: readonly string[]): Promise<Array<{ data: Buffer; stat: Stat } | ZkError>> {
    if (paths.length === 0) return Promise.resolve([]);
    for (const p of paths) {
      const problem = pathProblem(p);
      if (problem) return badArgument('multiRead', p, problem);
    }
    const conn = this.connection;
    return this.send(
      OP.multiRead,
      'multiRead',
      paths[0],
      (w) => {
        for (const p of paths) {
          w.int(OP.getData);
          w.bool(false);
          w.int(-1);
          w.ustring(conn.serverPath(p));
          w.bool(false);
        }
        writeMultiEnd(w);
      },
      (r) => {
        const out: Array<{ data: Buffer; stat: Stat } | ZkError> = [];
        for (;;) {
          const type = r.int();
          const done = r.bool();
          r.int();
          if (done) break;
          if (type === OP.getData) out.push(readData(r));
          else if (type === OP.error) {
            const err = r.int();
            out.push(new ZkError(err, 'getData', paths[out.length]));
          } else
            throw new ZkError(
              ZK_CODES.MARSHALLING_ERROR,
              'multiRead',
              paths[out.length],
              `unexpected result type ${type}`,
            );
        }
        return out;
      },
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
    mode: 'persistent' | 'persistentRecursive',
    listener: PersistentListener,
  ): Promise<() => void> {
    const problem = pathProblem(path);
    if (problem) return badArgument('addWatch', path, problem);
    const table = this.connection.persistent;
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
    return remove;
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
    const tooBig = dataProblem(buf);
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
  getAcl(path: string): Promise<{ acl: Acl[]; stat: Stat }> {
    const problem = pathProblem(path);
    if (problem) return badArgument('getACL', path, problem);
    const conn = this.connection;
    return this.send(
      OP.getACL,
      'getACL',
      path,
      (w) => w.ustring(conn.serverPath(path)),
      (r) => {
        const acl = r.acls();
        return { acl, stat: r.stat() };
      },
    );
  }

  /** Set a node's ACL (`version` -1: any). */
  setAcl(path: string, acl: readonly Acl[], version = -1): Promise<Stat> {
    const problem = pathProblem(path);
    if (problem) return badArgument('setACL', path, problem);
    const conn = this.connection;
    return this.send(
      OP.setACL,
      'setACL',
      path,
      (w) => {
        w.ustring(conn.serverPath(path));
        w.raw(encodedAcl(acl));
        w.int(version);
      },
      readStat,
    );
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
    this.connection.addAuth(scheme, Buffer.from(credentials));
  }

  /** The current session id as 16 hex digits. */
  get sessionId(): string {
    return this.connection.sessionId;
  }
}

const readStat = (r: Reader): Stat => r.stat();
const readChildren = (r: Reader): string[] => r.stringVector();
function readData(r: Reader): { data: Buffer; stat: Stat } {
  const data = r.buffer() ?? EMPTY;
  return { data, stat: r.stat() };
}

function writeMultiEnd(w: Writer): void {
  w.int(-1);
  w.bool(true);
  w.int(-1);
}

type TxOp =
  | { type: typeof OP.create; path: string; data: Buffer; acl: Buffer; mode: number }
  | { type: typeof OP.delete | typeof OP.check; path: string; version: number }
  | { type: typeof OP.setData; path: string; data: Buffer; version: number };

/**
 * A transaction builder. `commit()` sends one `multi`; on failure it rejects with the ZkError of the
 * operation that failed (its `opIndex` says which) and nothing was applied. Versions are exact.
 */
export class Transaction {
  readonly #client: ZkClient;
  readonly #ops: TxOp[] = [];
  #problem: ZkError | undefined;

  constructor(client: ZkClient) {
    this.#client = client;
  }

  get size(): number {
    return this.#ops.length;
  }

  #check(op: string, path: string, sequential = false, data?: Buffer): boolean {
    if (this.#problem) return false;
    const why = pathProblem(path, sequential) ?? (data ? dataProblem(data) : undefined);
    if (why)
      this.#problem = new ZkError(ZK_CODES.BAD_ARGUMENTS, op, path, why, { opIndex: this.#ops.length });
    return why === undefined;
  }

  create(
    path: string,
    data?: Data,
    mode: CreateModeValue = CreateMode.PERSISTENT,
    acl?: readonly Acl[],
  ): this {
    const buf = toBuffer(data);
    if (this.#check('create', path, (mode & 2) !== 0, buf))
      this.#ops.push({ type: OP.create, path, data: buf, acl: encodedAcl(acl ?? this.#client.acl), mode });
    return this;
  }

  remove(path: string, version = -1): this {
    if (this.#check('remove', path)) this.#ops.push({ type: OP.delete, path, version });
    return this;
  }

  setData(path: string, data: Data, version = -1): this {
    const buf = toBuffer(data);
    if (this.#check('setData', path, false, buf))
      this.#ops.push({ type: OP.setData, path, data: buf, version });
    return this;
  }

  /** Require `path` to exist, at `version` when given (≥ 0). */
  check(path: string, version = -1): this {
    if (this.#check('check', path)) this.#ops.push({ type: OP.check, path, version });
    return this;
  }

  commit(): Promise<OpResult[]> {
    if (this.#problem) return Promise.reject(this.#problem);
    const ops = this.#ops;
    if (ops.length === 0) return Promise.resolve([]);
    const conn = this.#client.connection;
    return this.#client.send<OpResult[]>(
      OP.multi,
      'multi',
      ops[0]!.path,
      (w) => {
        for (const op of ops) {
          w.int(op.type);
          w.bool(false);
          w.int(-1);
          w.ustring(conn.serverPath(op.path));
          switch (op.type) {
            case OP.create:
              w.buffer(op.data);
              w.raw(op.acl);
              w.int(op.mode);
              break;
            case OP.setData:
              w.buffer(op.data);
              w.int(op.version);
              break;
            default:
              w.int(op.version);
          }
        }
        writeMultiEnd(w);
      },
      (r) => {
        const results: OpResult[] = [];
        let failure: ZkError | undefined;
        for (;;) {
          const type = r.int();
          const done = r.bool();
          r.int();
          if (done) break;
          const i = results.length;
          switch (type) {
            case OP.create:
              results.push({ path: conn.clientPath(r.ustring() ?? ops[i]?.path ?? '') });
              break;
            case OP.create2: {
              const path = conn.clientPath(r.ustring() ?? ops[i]?.path ?? '');
              results.push({ path, stat: r.stat() });
              break;
            }
            case OP.setData:
              results.push({ stat: r.stat() });
              break;
            case OP.delete:
            case OP.check:
              results.push({});
              break;
            case OP.error: {
              const err = r.int();
              // Operations before the failing one report 0, those after it RUNTIME_INCONSISTENCY.
              if (err !== 0 && failure === undefined)
                failure = new ZkError(err, 'multi', ops[i]?.path, undefined, { opIndex: i });
              results.push({});
              break;
            }
            default:
              throw new ZkError(
                ZK_CODES.MARSHALLING_ERROR,
                'multi',
                ops[i]?.path,
                `unexpected result type ${type}`,
              );
          }
        }
        if (failure) throw failure;
        return results;
      },
    );
  }
}
