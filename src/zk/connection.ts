/**
 * One ZooKeeper session over TCP: zkfarm's own client of ZooKeeper's wire protocol (3.6+ servers).
 *
 * It does what ZooKeeper's Java client does, in the parts zkfarm uses, and nothing else:
 *
 * - Connects to the servers of the connect string in a shuffled order, one at a time; a failed attempt
 *   moves on to the next server, and after a full round it waits a random part of `spinDelay`. Each
 *   attempt has one deadline for the TCP connect and the handshake together (a server that takes the
 *   connection and never answers is left like one that refuses it).
 * - Resumes the same session on a new connection (session id and password), re-sending the
 *   authentication and re-registering one-shot watches (SetWatches, relative to the last zxid seen, so
 *   the server fires those whose node changed meanwhile). Persistent watches are the caller's to re-add.
 * - Learns that the session expired when a server refuses to resume it (`expired`): the connection is
 *   then dead and every request fails with SESSION_EXPIRED.
 * - Pings when it has sent nothing for a third of the session timeout, and drops a connection that has
 *   received nothing for two thirds of it (a stalled server or a silent network is noticed, and the next
 *   server is tried while the session can still be resumed).
 * - Answers come in request order: requests wait in one FIFO; each has a deadline (`requestTimeout`),
 *   watched by a single timer on the oldest. A request that times out is rejected with
 *   OPERATION_TIMEOUT; its answer, should it come, is skipped. Requests sent on a connection that drops
 *   fail with CONNECTION_LOSS (their outcome is unknown); requests made while disconnected wait for the
 *   next connection.
 * - Requests made in one tick go out in one socket write.
 * - Every failure is a ZkError with ZooKeeper's code, whatever the code (none is unknown to it).
 *
 * Events: `connected` (a handshake succeeded: the first, or a resumption), `disconnected` (a connected
 * socket was lost, or the session was closed), `expired`, `authenticationFailed`, `transport` (a TLS
 * problem retrying will not mend, see transport.ts).
 */
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { ZK_CODES, ZkError } from './errors.js';
import { DecodeError, OP, Reader, Writer, XID } from './jute.js';
import { openSocket, type PreparedTls } from './transport.js';

export interface ConnectionOptions {
  /** Requested session timeout (ms); the server may change it within its bounds. */
  sessionTimeout: number;
  /** Pause after every server was tried once, at most this long (ms). */
  spinDelay: number;
  /** How long a request may wait for its answer (ms). */
  requestTimeout: number;
  /**
   * Resume this session instead of starting a new one (the Java client's `sessionId, sessionPasswd`
   * constructor, Kazoo's `client_id`): the server refuses it with `expired` when it has ended.
   */
  session?: { id: string; password: Buffer };
  /** Speak TLS (see transport.ts); problems it finds are emitted as `transport` events. */
  tls?: PreparedTls;
}

/** A one-shot watch callback: called once, with the event, when the node changes. */
export type WatchCallback = (event: WatchEvent) => void;

/** A notification: `type` 1 created, 2 deleted, 3 data changed, 4 children changed; `path` without chroot. */
export interface WatchEvent {
  type: number;
  state: number;
  path: string;
}

/** A persistent watch's listener: the event type and the path it concerns. */
export type PersistentListener = (type: number, path: string) => void;

export const EVENT = { created: 1, deleted: 2, dataChanged: 3, childrenChanged: 4 } as const;

type Decoder = (r: Reader) => unknown;

interface Pending {
  xid: number;
  op: string;
  path: string | undefined;
  decode: Decoder | undefined;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  deadline: number;
  settled: boolean;
  /** Byte range in the unsent buffer (only while unsent). */
  start: number;
  end: number;
  /** A one-shot watch to register with the answer. */
  watch: WatchCallback | undefined;
  watchKind: WatchKind;
  /** Called as the answer is read, before any later event: see `ZkConnection.request`. */
  onAnswer: (() => void) | undefined;
  /** exists: a NO_NODE answer is a value (null), not a failure. */
  noNodeIsNull: boolean;
}

/** Which table a one-shot watch goes to once its request is answered: none, data, exists, children. */
export type WatchKind = 0 | 1 | 2 | 3;
export const W_DATA = 1;
export const W_EXIST = 2;
export const W_CHILD = 3;

type State =
  | 'idle'
  | 'connecting'
  | 'handshaking'
  | 'connected'
  | 'closing'
  | 'closed'
  | 'expired'
  | 'authFailed';

const PROTOCOL_VERSION = 0;

export class ZkConnection extends EventEmitter {
  readonly #servers: Array<{ host: string; port: number }>;
  readonly #chroot: string;
  readonly #options: ConnectionOptions;
  #state: State = 'idle';
  #socket: net.Socket | undefined;
  #serverIndex = 0;
  #attemptsThisRound = 0;
  #attemptTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #sessionId = Buffer.alloc(8);
  #password: Buffer = Buffer.alloc(16);
  #negotiatedTimeout = 0;
  readonly #lastZxid = Buffer.alloc(8);
  #xid = 1;
  readonly #credentials: Array<{ scheme: string; auth: Buffer }> = [];
  /** Requests sent and not answered yet, oldest first (`#head` is the first live index). */
  #inflight: Pending[] = [];
  #head = 0;
  /** Requests encoded into `#out`, not sent yet. */
  #unsent: Pending[] = [];
  readonly #out = new Writer();
  #flushScheduled = false;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #deadlineAt = 0;
  #heartbeat: NodeJS.Timeout | undefined;
  #lastSend = 0;
  #lastRecv = 0;
  /** Received bytes of a frame not complete yet, and how many bytes that frame needs in all. */
  #partial: Buffer[] = [];
  #partialBytes = 0;
  #partialNeed = 0;
  readonly #dataWatches = new Map<string, Set<WatchCallback>>();
  readonly #existWatches = new Map<string, Set<WatchCallback>>();
  readonly #childWatches = new Map<string, Set<WatchCallback>>();
  /** Persistent recursive watch listeners by watched path (without chroot). */
  readonly persistent = new Map<string, Set<PersistentListener>>();
  /** Why requests fail from now on (closed, expired, authentication failed). */
  #deadError: ZkError | undefined;

  constructor(servers: Array<{ host: string; port: number }>, chroot: string, options: ConnectionOptions) {
    super();
    this.#servers = shuffle(servers);
    this.#chroot = chroot;
    this.#options = options;
    if (options.session) {
      this.#sessionId = Buffer.from(options.session.id.padStart(16, '0'), 'hex');
      this.#password = Buffer.from(options.session.password);
    }
  }

  /** Start connecting (once). */
  connect(): void {
    if (this.#state !== 'idle') return;
    this.#nextAttempt();
  }

  /** The session timeout the server granted (0 before the first handshake). */
  get sessionTimeout(): number {
    return this.#negotiatedTimeout;
  }

  /** The session id as 16 hex digits (zeros before the first handshake). */
  get sessionId(): string {
    return this.#sessionId.toString('hex');
  }

  /** The session's password (a copy), which with its id lets another connection resume the session. */
  get sessionPassword(): Buffer {
    return Buffer.from(this.#password);
  }

  get connected(): boolean {
    return this.#state === 'connected';
  }

  get closed(): boolean {
    return this.#state === 'closed' || this.#state === 'expired' || this.#state === 'authFailed';
  }

  /** Requests waiting for an answer (sent or not). */
  get pendingCount(): number {
    let n = 0;
    for (let i = this.#head; i < this.#inflight.length; i++) if (!this.#inflight[i]!.settled) n++;
    for (const p of this.#unsent) if (!p.settled) n++;
    return n;
  }

  /** Add an authentication identity: sent now when connected, and on every later connection. */
  addAuth(scheme: string, auth: Buffer): void {
    this.#credentials.push({ scheme, auth });
    if (this.#state === 'connected' && this.#socket) {
      const w = new Writer(64);
      this.#writeAuth(w, { scheme, auth });
      this.#socket.write(w.take());
    }
  }

  /** Path as the server sees it (with the chroot). */
  serverPath(path: string): string {
    if (!this.#chroot) return path;
    return path === '/' ? this.#chroot : this.#chroot + path;
  }

  /** Path as the caller sees it (without the chroot). */
  clientPath(path: string): string {
    const c = this.#chroot;
    if (!c || !path.startsWith(c)) return path;
    return path.length === c.length ? '/' : path.slice(c.length);
  }

  /**
   * Send one request: `encode` writes its payload (the header is written here); `decode` reads the
   * answer's payload. Resolves with the decoded value, or rejects with a ZkError.
   */
  request<T>(
    type: number,
    op: string,
    path: string | undefined,
    encode: (w: Writer) => void,
    decode: Decoder | undefined,
    extra?: { watch?: WatchCallback; watchKind?: WatchKind; onAnswer?: () => void; noNodeIsNull?: boolean },
  ): Promise<T> {
    if (this.#deadError || this.#state === 'closing') {
      return Promise.reject(
        this.#deadError ?? new ZkError(ZK_CODES.CONNECTION_LOSS, op, path, 'the session is closing'),
      );
    }
    const w = this.#out;
    const start = w.pos;
    const xid = this.#xid++;
    try {
      w.int(0); // length, filled in below
      w.int(xid);
      w.int(type);
      encode(w);
    } catch (err) {
      w.pos = start;
      return Promise.reject(new ZkError(ZK_CODES.BAD_ARGUMENTS, op, path, (err as Error).message));
    }
    w.buf.writeInt32BE(w.pos - start - 4, start);
    return new Promise<T>((resolve, reject) => {
      const p: Pending = {
        xid,
        op,
        path,
        decode,
        resolve: resolve as (v: unknown) => void,
        reject,
        deadline: Date.now() + this.#options.requestTimeout,
        settled: false,
        start,
        end: w.pos,
        watch: extra?.watch,
        watchKind: extra?.watchKind ?? 0,
        onAnswer: extra?.onAnswer,
        noNodeIsNull: extra?.noNodeIsNull ?? false,
      };
      this.#unsent.push(p);
      if (this.#deadlineTimer === undefined) this.#armDeadline(p.deadline);
      if (this.#state === 'connected') this.#scheduleFlush();
    });
  }

  /** Register a one-shot watch directly (used for re-arming after an answer). */
  #register(kind: WatchKind, path: string, fn: WatchCallback): void {
    const table =
      kind === W_DATA ? this.#dataWatches : kind === W_EXIST ? this.#existWatches : this.#childWatches;
    let set = table.get(path);
    if (!set) {
      set = new Set();
      table.set(path, set);
    }
    set.add(fn);
  }

  /** Reject every request waiting, and every later one, with `err`. */
  failAll(err: Error): void {
    this.#rejectInflight(err);
    const unsent = this.#unsent;
    this.#unsent = [];
    this.#out.pos = 0;
    for (const p of unsent) this.#settle(p, err);
  }

  /** Close the session (its ephemeral nodes go at once); `disconnected` is emitted when it is done. */
  close(): void {
    if (this.closed || this.#state === 'closing') return;
    clearTimeout(this.#retryTimer);
    if (this.#state !== 'connected') {
      this.#finish(
        'closed',
        new ZkError(ZK_CODES.CONNECTION_LOSS, 'request', undefined, 'the client was closed'),
      );
      return;
    }
    // Requests not sent yet would only race the close: fail them now.
    const unsent = this.#unsent;
    this.#unsent = [];
    this.#out.pos = 0;
    const closing = new ZkError(ZK_CODES.CONNECTION_LOSS, 'request', undefined, 'the client was closed');
    for (const p of unsent) this.#settle(p, closing);
    const p = this.request<void>(OP.closeSession, 'closeSession', undefined, () => {}, undefined);
    this.#state = 'closing';
    p.then(
      () => this.#finish('closed', closing),
      () => this.#finish('closed', closing),
    );
  }

  // -------------------------------------------------------------------------------------------------
  // Connecting
  // -------------------------------------------------------------------------------------------------

  #nextAttempt(): void {
    if (this.closed || this.#state === 'closing') return;
    this.#state = 'connecting';
    if (this.#attemptsThisRound >= this.#servers.length) {
      this.#attemptsThisRound = 0;
      this.#retryTimer = setTimeout(() => this.#attempt(), Math.random() * this.#options.spinDelay);
      return;
    }
    this.#attempt();
  }

  #attempt(): void {
    if (this.closed || this.#state === 'closing') return;
    const server = this.#servers[this.#serverIndex % this.#servers.length]!;
    this.#serverIndex++;
    this.#attemptsThisRound++;
    this.#partial = [];
    this.#partialBytes = 0;
    this.#partialNeed = 0;
    const { socket, ready } = openSocket(server, this.#options.tls, (p) => this.emit('transport', p));
    this.#socket = socket;
    socket.setNoDelay(true);
    // One deadline for the TCP connect and the handshake: the session timeout shared among the servers,
    // but at most a third of it (at least 1 s), so even a single server is tried again well before the
    // session would expire.
    const timeout = this.#negotiatedTimeout || this.#options.sessionTimeout;
    const deadline = Math.min(
      Math.floor(timeout / this.#servers.length),
      Math.max(1000, Math.floor(timeout / 3)),
    );
    this.#attemptTimer = setTimeout(() => socket.destroy(), deadline);
    this.#attemptTimer.unref();
    socket.on(ready, () => {
      if (this.#socket !== socket) return;
      this.#state = 'handshaking';
      const w = new Writer(64);
      w.int(0);
      w.int(PROTOCOL_VERSION);
      w.raw(this.#lastZxid);
      w.int(this.#options.sessionTimeout);
      w.raw(this.#sessionId);
      w.buffer(this.#password);
      w.bool(false); // not read-only
      w.buf.writeInt32BE(w.pos - 4, 0);
      socket.write(w.take());
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.#socket === socket) this.#onData(chunk);
    });
    socket.on('error', () => {
      // 'close' follows; that is where the next attempt starts.
    });
    socket.on('close', () => {
      if (this.#socket === socket) this.#onClose();
    });
  }

  #onClose(): void {
    clearTimeout(this.#attemptTimer);
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    this.#socket = undefined;
    const was = this.#state;
    if (this.closed) return;
    if (was === 'closing') {
      this.#finish(
        'closed',
        new ZkError(ZK_CODES.CONNECTION_LOSS, 'request', undefined, 'the client was closed'),
      );
      return;
    }
    this.#rejectInflight(
      new ZkError(ZK_CODES.CONNECTION_LOSS, 'request', undefined, 'the connection to ZooKeeper was lost'),
    );
    this.#state = 'connecting';
    if (was === 'connected') this.emit('disconnected');
    this.#nextAttempt();
  }

  /** End for good: fail everything with `err`, close the socket, emit the matching event. */
  #finish(state: 'closed' | 'expired' | 'authFailed', err: ZkError): void {
    if (this.closed) return;
    const was = this.#state;
    this.#state = state;
    this.#deadError =
      state === 'expired'
        ? new ZkError(ZK_CODES.SESSION_EXPIRED, 'request', undefined, 'the session expired')
        : state === 'authFailed'
          ? new ZkError(ZK_CODES.AUTH_FAILED, 'request', undefined, 'authentication failed')
          : new ZkError(ZK_CODES.CONNECTION_LOSS, 'request', undefined, 'the client was closed');
    clearTimeout(this.#attemptTimer);
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#deadlineTimer);
    clearInterval(this.#heartbeat);
    this.#deadlineTimer = undefined;
    this.failAll(err);
    const socket = this.#socket;
    this.#socket = undefined;
    socket?.destroy();
    if (state === 'expired') this.emit('expired');
    else if (state === 'authFailed') this.emit('authenticationFailed');
    else if (was === 'connected' || was === 'closing') this.emit('disconnected');
  }

  #onHandshake(r: Reader): void {
    r.int(); // protocol version
    const timeout = r.int();
    const sessionId = r.buf.subarray(r.pos, r.pos + 8);
    r.skip(8);
    const password = r.buffer();
    if (timeout <= 0) {
      this.#finish(
        'expired',
        new ZkError(ZK_CODES.SESSION_EXPIRED, 'request', undefined, 'the session expired'),
      );
      return;
    }
    clearTimeout(this.#attemptTimer);
    this.#attemptsThisRound = 0;
    sessionId.copy(this.#sessionId);
    if (password) this.#password = password;
    this.#negotiatedTimeout = timeout;
    this.#state = 'connected';
    this.#lastRecv = this.#lastSend = Date.now();
    this.#heartbeat = setInterval(() => this.#beat(), Math.max(50, Math.floor(timeout / 6)));
    this.#heartbeat.unref();
    // Authentication and watches go before anything queued, as in ZooKeeper's own client.
    const pre = new Writer(256);
    for (const c of this.#credentials) this.#writeAuth(pre, c);
    this.#writeSetWatches(pre);
    if (pre.pos > 0) this.#socket!.write(pre.take());
    this.#flush();
    this.emit('connected');
  }

  #writeAuth(w: Writer, c: { scheme: string; auth: Buffer }): void {
    const start = w.pos;
    w.int(0);
    w.int(XID.auth);
    w.int(OP.auth);
    w.int(0);
    w.ustring(c.scheme);
    w.buffer(c.auth);
    w.buf.writeInt32BE(w.pos - start - 4, start);
  }

  /** Re-register one-shot watches, in packets of at most ~128 KB (as ZooKeeper's client does). */
  #writeSetWatches(w: Writer): void {
    const lists: string[][] = [
      [...this.#dataWatches.keys()],
      [...this.#existWatches.keys()],
      [...this.#childWatches.keys()],
    ];
    if (lists.every((l) => l.length === 0)) return;
    const limit = 128 * 1024;
    let idx = [0, 0, 0];
    while (idx.some((i, k) => i < lists[k]!.length)) {
      const start = w.pos;
      w.int(0);
      w.int(XID.setWatches);
      w.int(OP.setWatches);
      w.raw(this.#lastZxid);
      let budget = limit;
      const next = [...idx];
      for (let k = 0; k < 3; k++) {
        const list = lists[k]!;
        const countAt = w.pos;
        w.int(0);
        let n = 0;
        while (next[k]! < list.length && budget > 0) {
          const p = this.serverPath(list[next[k]!]!);
          w.ustring(p);
          budget -= p.length + 4;
          next[k]!++;
          n++;
        }
        w.buf.writeInt32BE(n, countAt);
      }
      w.buf.writeInt32BE(w.pos - start - 4, start);
      idx = next;
    }
  }

  /** Ping when idle; drop a connection that has heard nothing for two thirds of the session timeout. */
  #beat(): void {
    if (this.#state !== 'connected' && this.#state !== 'closing') return;
    const now = Date.now();
    const timeout = this.#negotiatedTimeout;
    if (now - this.#lastRecv > (timeout * 2) / 3) {
      this.#socket?.destroy();
      return;
    }
    if (now - this.#lastSend >= timeout / 3 && this.#socket) {
      const w = new Writer(16);
      w.int(8);
      w.int(XID.ping);
      w.int(OP.ping);
      this.#socket.write(w.take());
      this.#lastSend = now;
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Sending
  // -------------------------------------------------------------------------------------------------

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    process.nextTick(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    const socket = this.#socket;
    if (!socket || (this.#state !== 'connected' && this.#state !== 'closing') || this.#unsent.length === 0)
      return;
    const unsent = this.#unsent;
    this.#unsent = [];
    let bytes: Buffer;
    if (unsent.some((p) => p.settled)) {
      // Some timed out while waiting for a connection: they are not sent at all.
      const parts: Buffer[] = [];
      const src = this.#out.buf;
      for (const p of unsent) {
        if (p.settled) continue;
        parts.push(Buffer.from(src.subarray(p.start, p.end)));
        this.#inflight.push(p);
      }
      this.#out.pos = 0;
      bytes = Buffer.concat(parts);
    } else {
      for (const p of unsent) this.#inflight.push(p);
      bytes = this.#out.take();
    }
    if (bytes.length === 0) return;
    this.#lastSend = Date.now();
    socket.write(bytes);
  }

  // -------------------------------------------------------------------------------------------------
  // Receiving
  // -------------------------------------------------------------------------------------------------

  #onData(chunk: Buffer): void {
    this.#lastRecv = Date.now();
    let buf = chunk;
    if (this.#partialBytes > 0) {
      // A large answer comes in many chunks: join them once, when the frame is complete.
      this.#partial.push(chunk);
      this.#partialBytes += chunk.length;
      if (this.#partialNeed === 0 && this.#partialBytes >= 4) {
        const head = Buffer.concat(this.#partial);
        this.#partial = [head];
        this.#partialNeed = 4 + head.readInt32BE(0);
      }
      if (this.#partialNeed === 0 || this.#partialBytes < this.#partialNeed) return;
      buf = Buffer.concat(this.#partial, this.#partialBytes);
      this.#partial = [];
      this.#partialBytes = 0;
      this.#partialNeed = 0;
    }
    let pos = 0;
    try {
      while (buf.length - pos >= 4) {
        const len = buf.readInt32BE(pos);
        if (len < 0 || len > 256 * 1024 * 1024) throw new DecodeError(`bad frame length ${len}`);
        if (buf.length - pos - 4 < len) break;
        const r = new Reader(buf, pos + 4, pos + 4 + len);
        pos += 4 + len;
        if (this.#state === 'handshaking') this.#onHandshake(r);
        else this.#onFrame(r);
        if (this.#socket === undefined || this.closed) return;
      }
    } catch (err) {
      // Out of step with the server: drop this connection (the session can be resumed on the next).
      this.emit('protocolError', err);
      this.#socket?.destroy();
      return;
    }
    if (pos < buf.length) {
      const rest = buf.subarray(pos);
      this.#partial = [rest];
      this.#partialBytes = rest.length;
      this.#partialNeed = rest.length >= 4 ? 4 + rest.readInt32BE(0) : 0;
    }
  }

  #onFrame(r: Reader): void {
    const xid = r.int();
    const b = r.buf;
    const zxidAt = r.pos;
    r.skip(8);
    const err = r.int();
    switch (xid) {
      case XID.notification:
        this.#onEvent(r);
        return;
      case XID.ping:
      case XID.setWatches:
        return;
      case XID.auth:
        if (err === ZK_CODES.AUTH_FAILED)
          this.#finish(
            'authFailed',
            new ZkError(ZK_CODES.AUTH_FAILED, 'auth', undefined, 'authentication failed'),
          );
        return;
    }
    // A zxid > 0 is the newest this client has seen (used to resume the session and its watches).
    const hi = b.readInt32BE(zxidAt);
    if (hi > 0 || (hi === 0 && b.readUInt32BE(zxidAt + 4) !== 0))
      b.copy(this.#lastZxid, 0, zxidAt, zxidAt + 8);
    const p = this.#inflight[this.#head];
    if (!p || p.xid !== xid) throw new DecodeError(`answer for xid ${xid}, expected ${p?.xid ?? 'none'}`);
    this.#inflight[this.#head] = undefined as unknown as Pending;
    this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#inflight.length) {
      this.#inflight = this.#inflight.slice(this.#head);
      this.#head = 0;
    }
    p.onAnswer?.();
    if (p.settled) return;
    if (err !== 0) {
      if (err === ZK_CODES.NO_NODE && p.watchKind === W_EXIST && p.watch)
        this.#register(W_EXIST, p.path!, p.watch);
      if (err === ZK_CODES.NO_NODE && p.noNodeIsNull) this.#settle(p, undefined, null);
      else this.#settle(p, new ZkError(err, p.op, p.path));
      return;
    }
    let value: unknown;
    try {
      value = p.decode ? p.decode(r) : undefined;
    } catch (e) {
      // A ZkError is the answer's own verdict (a multi that failed); anything else means the bytes were
      // not what the request expects: fail the request and drop the connection (see #onData).
      if (e instanceof ZkError) {
        this.#settle(p, e);
        return;
      }
      this.#settle(p, new ZkError(ZK_CODES.MARSHALLING_ERROR, p.op, p.path, (e as Error).message));
      throw e;
    }
    if (p.watch) this.#register(p.watchKind === W_EXIST ? W_DATA : p.watchKind, p.path!, p.watch);
    this.#settle(p, undefined, value);
  }

  #onEvent(r: Reader): void {
    const type = r.int();
    const state = r.int();
    const path = this.clientPath(r.ustring() ?? '');
    if (this.persistent.size > 0) {
      for (const [root, listeners] of this.persistent) {
        if (path === root || path.startsWith(root === '/' ? '/' : `${root}/`)) {
          for (const fn of listeners) fn(type, path);
        }
      }
    }
    if (type < 1 || type > 4) return; // session events, removed watches: nothing one-shot to fire
    const fire: WatchCallback[] = [];
    const take = (table: Map<string, Set<WatchCallback>>) => {
      const set = table.get(path);
      if (!set) return;
      table.delete(path);
      for (const fn of set) fire.push(fn);
    };
    if (type === EVENT.childrenChanged) take(this.#childWatches);
    else {
      take(this.#dataWatches);
      take(this.#existWatches);
      if (type === EVENT.deleted) take(this.#childWatches);
    }
    if (fire.length === 0) return;
    const event: WatchEvent = { type, state, path };
    for (const fn of fire) fn(event);
  }

  // -------------------------------------------------------------------------------------------------
  // Settling and deadlines
  // -------------------------------------------------------------------------------------------------

  #settle(p: Pending, err: Error | undefined, value?: unknown): void {
    if (p.settled) return;
    p.settled = true;
    if (err) p.reject(err);
    else p.resolve(value);
  }

  #rejectInflight(err: Error): void {
    const list = this.#inflight;
    const head = this.#head;
    this.#inflight = [];
    this.#head = 0;
    for (let i = head; i < list.length; i++) {
      const p = list[i]!;
      this.#settle(p, new ZkError(ZK_CODES.CONNECTION_LOSS, p.op, p.path, err.message));
    }
  }

  #armDeadline(at: number): void {
    clearTimeout(this.#deadlineTimer);
    this.#deadlineAt = at;
    this.#deadlineTimer = setTimeout(() => this.#onDeadline(), Math.max(1, at - Date.now()));
    this.#deadlineTimer.unref();
  }

  /** Time out every request past its deadline; re-arm for the oldest one left. */
  #onDeadline(): void {
    this.#deadlineTimer = undefined;
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    const check = (p: Pending) => {
      if (p.settled) return;
      if (p.deadline <= now) {
        this.#settle(
          p,
          new ZkError(
            ZK_CODES.OPERATION_TIMEOUT,
            p.op,
            p.path,
            `no answer within ${this.#options.requestTimeout} ms; the connection may be stalled or the session lost`,
          ),
        );
      } else if (p.deadline < next) next = p.deadline;
    };
    // Deadlines grow along the queue: stop at the first one still in the future.
    for (let i = this.#head; i < this.#inflight.length; i++) {
      check(this.#inflight[i]!);
      if (next !== Number.POSITIVE_INFINITY) break;
    }
    if (next === Number.POSITIVE_INFINITY) {
      for (const p of this.#unsent) {
        check(p);
        if (next !== Number.POSITIVE_INFINITY) break;
      }
    }
    if (next !== Number.POSITIVE_INFINITY) this.#armDeadline(next);
    else if (this.#deadlineAt !== 0) this.#deadlineAt = 0;
  }
}

function shuffle<T>(list: T[]): T[] {
  const out = [...list];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
