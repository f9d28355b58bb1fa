/**
 * Guards for two defects of node-zookeeper-client 1.1.3 (unmaintained), applied once at import.
 *
 * 1. "Unknown code" crash. The library's error table stops at AUTH_FAILED (-115). A server answer carrying
 *    any other code (QUOTA_EXCEEDED -125, THROTTLED_OP -127, REQUEST_TIMEOUT -122, ...) makes
 *    `Exception.create` throw inside the socket's data handler, which no caller can catch: the process dies.
 *    We wrap `Exception.create` so that an unknown code yields an Exception-shaped error instead; the
 *    request's callback receives it and zkfarm turns it into a `ZkError` with the right code name.
 *
 * 3. One write per request. The library writes every request to the socket the moment it is queued, one
 *    `write` system call each; on loopback each call also runs the server side's TCP receive, so a burst
 *    of pipelined requests (a batch of reads, a batch of moves) costs one syscall and one server wake-up
 *    per request. We defer the queue's flush to the end of the current tick and cork the socket around
 *    it: a burst goes out in one `writev`. Order is unchanged (the queue is FIFO, xids are assigned as
 *    before); a request waits at most until the current tick ends.
 *
 * 4. No multiRead. ZooKeeper 3.6+ answers many reads in one request (`multiRead`, op 22); the library
 *    cannot send it. `multiReadRequest(paths)` builds one from the library's own records, and the
 *    transaction response parser learns to read getData results. The request header says MULTI (14) to
 *    the library (so it parses the answer as a multi response) and 22 on the wire.
 *
 * 5. No deadline on the handshake. The library's connect timer covers the TCP connect only: once the socket
 *    is open it sends the ConnectRequest and waits for the answer with no timer at all. A server that
 *    takes the connection but never answers it (one that is starting up on a loaded machine, a peer behind
 *    a network split) leaves the client CONNECTING forever, on that one socket. We keep a deadline until
 *    the handshake is answered: the library's connect timeout (session timeout ÷ number of servers, as in
 *    ZooKeeper's own client), but at most a third of the session timeout (at least 1 s), so that even with
 *    one server a reconnect is tried again well before the session would expire. Past it the socket is
 *    closed and the library moves on to the next server, as after any failure.
 *
 * 6. Slow records. The library (de)serializes every record with generic code that re-parses type names
 *    on each call; jute-fast.ts compiles each record's field list once (same bytes on the wire).
 *
 * 7. No persistent watches. ZooKeeper 3.6+ keeps a watch armed (`addWatch`, op 106): a recursive one
 *    reports every node created, changed or deleted below a path, with its path. `addWatchRequest`
 *    builds the request (the library is told it is a DELETE, whose answer has no payload; the wire says
 *    106), and the library's watcher table learns to hand such events to zkfarm's listeners
 *    (`persistentListeners`). The library does not restore them after a reconnect: the caller re-adds.
 *    Event types the library does not know (a removed persistent watch, ...) are dropped instead of
 *    throwing inside the socket's data handler.
 *
 * 2. Transaction version bug. `Transaction.check/setData/remove` do `version = version || -1`, so version 0
 *    silently becomes "any version" and fencing on version 0 is off. zkfarm's transaction builder never
 *    calls those three methods: it pushes the operation records itself (see `pushOp`), keeping 0 as 0.
 */
import { createRequire } from 'node:module';
import { zkCodeName } from './errors.js';
import { installFastRecords } from './jute-fast.js';

const require = createRequire(import.meta.url);

interface RawException extends Error {
  code: number;
  path?: string;
  getCode(): number;
  getName(): string;
  getPath(): string | undefined;
}

interface ExceptionModule {
  (code: number, name: string, path: string | undefined, ctor: unknown): void;
  prototype: RawException;
  create: (code: number, path?: string) => RawException;
  __zkfarmGuarded?: boolean;
}

const Exception = require('node-zookeeper-client/lib/Exception.js') as ExceptionModule;
interface JuteRecord {
  byteLength(): number;
  serialize(buffer: Buffer, offset: number): number;
  deserialize(buffer: Buffer, offset: number): number;
  setChrootPath(path: string | undefined): void;
  [field: string]: unknown;
}
type RecordClass = new (...args: unknown[]) => JuteRecord;
const jute = require('node-zookeeper-client/lib/jute/index.js') as {
  OP_CODES: Record<string, number>;
  protocol: Record<string, RecordClass>;
  Request: new (header: unknown, payload: unknown) => unknown;
  TransactionRequest: { prototype: object };
  TransactionResponse: {
    prototype: {
      deserialize(buffer: Buffer, offset: number): number;
      results: unknown[];
      chrootPath?: string;
    };
  };
};

/** The library's operation codes (CREATE, DELETE, SET_DATA, CHECK, ...). */
export const OP_CODES = jute.OP_CODES as {
  CREATE: number;
  DELETE: number;
  SET_DATA: number;
  CHECK: number;
  MULTI: number;
  [k: string]: number;
};

if (!Exception.__zkfarmGuarded) {
  const original = Exception.create;
  Exception.create = function guardedCreate(code: number, path?: string): RawException {
    try {
      return original(code, path);
    } catch {
      // Build an Exception without its constructor (which re-validates and would throw again).
      const e = Object.create(Exception.prototype) as RawException;
      Error.captureStackTrace(e, guardedCreate);
      const name = zkCodeName(code);
      Object.assign(e, {
        code,
        name: name === 'UNKNOWN' ? `UNKNOWN_${Math.abs(code)}` : name,
        path,
        message: `Exception: ${name}[${code}]${path ? `@${path}` : ''}`,
      });
      return e;
    }
  };
  Exception.__zkfarmGuarded = true;
}

interface ConnectionManagerProto {
  onPacketQueueReadable(this: ConnectionManagerLike): void;
  onSocketConnected(this: ConnectionManagerLike): void;
  __zkfarmCorked?: boolean;
  __zkfarmHandshakeDeadline?: boolean;
}
interface SocketLike {
  cork?(): void;
  uncork?(): void;
  destroy(): void;
  destroyed?: boolean;
  once(event: 'close', fn: () => void): void;
}
interface ConnectionManagerLike {
  socket?: SocketLike;
  state: number;
  connectTimeout: number;
  sessionTimeout: number;
  __zkfarmFlushScheduled?: boolean;
}
const ConnectionManager = require('node-zookeeper-client/lib/ConnectionManager.js') as {
  prototype: ConnectionManagerProto;
};
if (!ConnectionManager.prototype.__zkfarmCorked) {
  const flush = ConnectionManager.prototype.onPacketQueueReadable;
  ConnectionManager.prototype.onPacketQueueReadable = function deferredFlush(this: ConnectionManagerLike) {
    if (this.__zkfarmFlushScheduled) return;
    this.__zkfarmFlushScheduled = true;
    process.nextTick(() => {
      this.__zkfarmFlushScheduled = false;
      const socket = this.socket;
      const cork = socket && !socket.destroyed && typeof socket.cork === 'function';
      if (cork) socket.cork!();
      try {
        flush.call(this);
      } finally {
        if (cork) socket.uncork!();
      }
    });
  };
  ConnectionManager.prototype.__zkfarmCorked = true;
}

/** The library's CONNECTING state (lib/ConnectionManager.js, STATES). */
const STATE_CONNECTING = 1;
if (!ConnectionManager.prototype.__zkfarmHandshakeDeadline) {
  const connected = ConnectionManager.prototype.onSocketConnected;
  ConnectionManager.prototype.onSocketConnected = function handshakeDeadline(this: ConnectionManagerLike) {
    connected.call(this);
    const socket = this.socket;
    if (!socket) return;
    const deadline = Math.min(this.connectTimeout, Math.max(1000, Math.floor(this.sessionTimeout / 3)));
    const timer = setTimeout(() => {
      if (this.socket === socket && this.state === STATE_CONNECTING && !socket.destroyed) socket.destroy();
    }, deadline);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  };
  ConnectionManager.prototype.__zkfarmHandshakeDeadline = true;
}

installFastRecords();

const MULTI_READ = 22;
const OP_GET_DATA = 4;
const OP_ERROR = -1;

interface TransactionResponseLike {
  results: Array<{ type: number; err?: number; data?: Buffer; stat?: unknown; path?: string }>;
  chrootPath?: string;
}

const txResponse = jute.TransactionResponse.prototype as unknown as {
  deserialize(this: TransactionResponseLike, buffer: Buffer, offset: number): number;
  __zkfarmReads?: boolean;
};
if (!txResponse.__zkfarmReads) {
  const original = txResponse.deserialize;
  // Read getData results (from a multiRead); anything else goes to the library's own parser, which
  // continues from the same header onwards.
  txResponse.deserialize = function (this: TransactionResponseLike, buffer: Buffer, offset: number): number {
    let read = 0;
    for (;;) {
      const header = new jute.protocol.MultiHeader!();
      const headerBytes = header.deserialize(buffer, offset + read);
      if (header['done'] || (header['type'] !== OP_GET_DATA && header['type'] !== OP_ERROR)) {
        return read + original.call(this, buffer, offset + read);
      }
      read += headerBytes;
      if (header['type'] === OP_GET_DATA) {
        const r = new jute.protocol.GetDataResponse!();
        read += r.deserialize(buffer, offset + read);
        this.results.push({ type: OP_GET_DATA, data: r['data'] as Buffer, stat: r['stat'] });
      } else {
        const r = new jute.protocol.ErrorResponse!();
        read += r.deserialize(buffer, offset + read);
        this.results.push({ type: OP_ERROR, err: r['err'] as number });
      }
    }
  };
  txResponse.__zkfarmReads = true;
}

/** A library request that reads the data of every path in one round trip (ZooKeeper 3.6+ multiRead). */
export function multiReadRequest(paths: readonly string[]): unknown {
  const records: JuteRecord[] = [];
  for (const path of paths) {
    records.push(new jute.protocol.MultiHeader!(OP_GET_DATA, false, -1));
    const get = new jute.protocol.GetDataRequest!();
    get['path'] = path;
    get['watch'] = false;
    records.push(get);
  }
  records.push(new jute.protocol.MultiHeader!(-1, true, -1));
  const payload = Object.create(jute.TransactionRequest.prototype) as {
    records: JuteRecord[];
    ops: unknown[];
  };
  payload.records = records;
  payload.ops = [];
  // The library picks the answer's parser by the header's type (MULTI); the server must see multiRead.
  return new jute.Request(disguisedHeader(OP_CODES.MULTI, MULTI_READ), payload);
}

/**
 * A request header that says `libraryType` to the library (which picks the answer's parser by it) and
 * `wireType` to the server.
 */
function disguisedHeader(libraryType: number, wireType: number): JuteRecord {
  const header = new jute.protocol.RequestHeader!();
  header['type'] = libraryType;
  const serialize = header.serialize.bind(header);
  header.serialize = (buffer: Buffer, offset: number) => {
    header['type'] = wireType;
    try {
      return serialize(buffer, offset);
    } finally {
      header['type'] = libraryType;
    }
  };
  return header;
}

/** Push an operation record onto a library Transaction without its `version || -1` defect. */
export function pushOp(
  tx: unknown,
  op: { type: number; path: string; version?: number; data?: Buffer; acls?: unknown[]; mode?: number },
): void {
  (tx as { ops: unknown[] }).ops.push(op);
}

const ADD_WATCH = 106;
const ADD_WATCH_SPEC = [
  { name: 'path', type: 'ustring' },
  { name: 'mode', type: 'int' },
];
const recordPrototype = Object.getPrototypeOf(jute.protocol.RequestHeader!.prototype) as object;

/** `addWatch` modes (ZooKeeper's AddWatchMode). */
export const ADD_WATCH_MODE = { persistent: 0, persistentRecursive: 1 } as const;

/** A library request that adds a persistent watch on `path` (ZooKeeper 3.6+ addWatch). */
export function addWatchRequest(path: string, mode: number): unknown {
  const payload = Object.create(recordPrototype) as JuteRecord;
  Object.assign(payload, { specification: ADD_WATCH_SPEC, chrootPath: undefined, path, mode });
  // A DELETE's answer has no payload, like addWatch's.
  return new jute.Request(disguisedHeader(OP_CODES.DELETE, ADD_WATCH), payload);
}

/** A persistent watch's listener: the event type (1 created, 2 deleted, 3 data changed, 4 children changed) and path. */
export type PersistentListener = (type: number, path: string) => void;

interface WatcherEventLike {
  type: number;
  path: string;
}
interface WatcherManagerLike {
  emit(event: WatcherEventLike): void;
  __zkfarmPersistent?: Map<string, Set<PersistentListener>>;
}
const WatcherManager = require('node-zookeeper-client/lib/WatcherManager.js') as {
  prototype: WatcherManagerLike & { __zkfarmPersistentHook?: boolean };
};
if (!WatcherManager.prototype.__zkfarmPersistentHook) {
  const emit = WatcherManager.prototype.emit;
  WatcherManager.prototype.emit = function persistentAware(
    this: WatcherManagerLike,
    event: WatcherEventLike,
  ) {
    const roots = this.__zkfarmPersistent;
    if (roots !== undefined && roots.size > 0 && typeof event.path === 'string') {
      for (const [root, listeners] of roots) {
        if (event.path === root || event.path.startsWith(root === '/' ? '/' : `${root}/`)) {
          for (const fn of listeners) fn(event.type, event.path);
        }
      }
    }
    if (event.type < 1 || event.type > 4) return;
    emit.call(this, event);
  };
  WatcherManager.prototype.__zkfarmPersistentHook = true;
}

/** The persistent-watch listeners of a raw client, by watched path. */
export function persistentListeners(raw: unknown): Map<string, Set<PersistentListener>> {
  const wm = (raw as { connectionManager: { watcherManager: WatcherManagerLike } }).connectionManager
    .watcherManager;
  wm.__zkfarmPersistent ??= new Map();
  return wm.__zkfarmPersistent;
}
