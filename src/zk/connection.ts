/**
 * One ZooKeeper session over TCP: zkfarm's own client of ZooKeeper's wire protocol (3.6+ servers).
 *
 * It does what ZooKeeper's Java client does, in the parts zkfarm uses, and nothing else:
 *
 * - Time is a monotonic clock (`performance.now`, injectable as `options.now`), never the wall clock:
 *   a clock stepped back or forward changes nothing.
 * - Connects to the servers of the connect string in a shuffled order, one at a time; a failed attempt
 *   moves on to the next server. Between rounds of servers it waits as src/backoff.ts says (exponential
 *   from `spinDelay`, with jitter, capped at 2 s or a third of the session timeout); a handshake resets
 *   it. Each attempt has one deadline for the TCP connect and the handshake together.
 * - Resumes the same session on a new connection (session id and password), re-sending the
 *   authentication and registering every watch again, persistent ones included (watch-manager.ts).
 * - Pings when it has sent nothing for a third of the session timeout, and drops a connection that has
 *   received nothing for two thirds of it (the next server is tried while the session can be resumed).
 * - Considers the session gone when it has heard nothing from any server for 4/3 of the negotiated
 *   session timeout (ZooKeeper 3.9's client does the same): by then the servers have expired it. It
 *   also learns of an expiry when a server refuses to resume the session. Either way it emits `expired`
 *   (with the reason) and every request fails with SESSION_EXPIRED.
 * - Answers come in request order: requests wait in one FIFO; each has a deadline (`requestTimeout`).
 *   A request that times out is rejected with OPERATION_TIMEOUT; its answer, should it come, is
 *   skipped. Requests sent on a connection that drops fail with CONNECTION_LOSS (their outcome is
 *   unknown); requests made while disconnected wait for the next connection. A request larger than the
 *   servers' jute.maxbuffer (`maxBuffer`) is refused before it is sent: the server would drop the
 *   connection. Xids wrap before 2^31 (jute.ts `nextXid`).
 * - User callbacks (watchers, listeners, `onAnswer`, event listeners) are isolated (callbacks.ts): one
 *   that throws is reported as `callbackError` and nothing else is disturbed.
 * - A close is orderly: requests already sent keep their place in the queue until their answers come
 *   (rejected for the caller, skipped on arrival), so the close-session answer is matched and the
 *   session ends at once on the server.
 *
 * Events: `connected` (a handshake succeeded: the first, or a resumption), `disconnected` (a connected
 * socket was lost, or the session was closed), `expired` (reason), `authenticationFailed`,
 * `protocolError` (err: the connection was out of step and is dropped), `callbackError` (err, where),
 * `reconnectDelay` (ms: the pause before the next round of servers).
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Backoff } from '../backoff.js';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { callSafely, emitSafely } from './callbacks.js';
import { ZK_CODES, ZkError } from './errors.js';
import { FrameReader } from './frames.js';
import { nextXid, OP, type Reader, Writer, XID } from './jute.js';
import { type Pending, PendingQueue } from './pending.js';
import {
  type PersistentListener,
  type PersistentMode,
  W_DATA,
  W_EXIST,
  type WatchCallback,
  type WatchKind,
  WatchManager,
} from './watch-manager.js';

export {
  EVENT,
  type PersistentListener,
  W_CHILD,
  W_DATA,
  W_EXIST,
  type WatchCallback,
  type WatchEvent,
  type WatchKind,
} from './watch-manager.js';

/** ZooKeeper's default jute.maxbuffer: the largest request frame a server takes (bytes). */
export const DEFAULT_MAX_BUFFER = 0xfffff;
/** Largest answer frame accepted by default (bytes): see `ConnectionOptions.maxAnswerBytes`. */
export const DEFAULT_MAX_ANSWER_BYTES = 64 * 1024 * 1024;

export interface ConnectionOptions {
  /** Requested session timeout (ms); the server may change it within its bounds. */
  sessionTimeout: number;
  /** Pause after the first round of servers (ms); later rounds back off from it. */
  spinDelay: number;
  /** How long a request may wait for its answer (ms). */
  requestTimeout: number;
  /**
   * The servers' jute.maxbuffer: a request whose frame is larger is refused with BAD_ARGUMENTS before it
   * is sent (the server would drop the connection). Raise it only with the servers' own setting.
   * @defaultValue 0xfffff (ZooKeeper's default)
   */
  maxBuffer?: number;
  /**
   * Largest answer frame accepted (bytes). Servers do not bound their answers (a listing of many children
   * can pass 1 MB), so this is a sanity bound: a larger or negative length drops the connection.
   * @defaultValue 64 MiB
   */
  maxAnswerBytes?: number;
  /** A monotonic clock in ms. @defaultValue performance.now */
  now?: () => number;
}

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
const MAX_PORT = 65535;

/** A server address of a connect string; throws ZKFARM_INVALID_ARGUMENT when it cannot be one. */
export function checkServer(s: { host: string; port: number }): void {
  if (
    typeof s?.host !== 'string' ||
    s.host === '' ||
    !Number.isInteger(s.port) ||
    s.port < 1 ||
    s.port > MAX_PORT
  )
    throw new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      `ZooKeeper server ${JSON.stringify(s)}: expected a host and a port from 1 to ${MAX_PORT}`,
    );
}

export class ZkConnection extends EventEmitter {
  readonly #servers: Array<{ host: string; port: number }>;
  readonly #chroot: string;
  readonly #options: ConnectionOptions;
  readonly #now: () => number;
  readonly #maxBuffer: number;
  #state: State = 'idle';
  #socket: net.Socket | undefined;
  #server: { host: string; port: number } | undefined;
  #serverIndex = 0;
  #attemptsThisRound = 0;
  #attemptTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  readonly #backoff: Backoff;
  #sessionId = Buffer.alloc(8);
  #password: Buffer = Buffer.alloc(16);
  #negotiatedTimeout = 0;
  readonly #lastZxid = Buffer.alloc(8);
  /** The last xid used; protected so that a test can start near the wrap, as ZooKeeper's own tests do. */
  protected xid = 0;
  readonly #credentials: Array<{ scheme: string; auth: Buffer }> = [];
  readonly #queue: PendingQueue;
  readonly #out = new Writer();
  #flushScheduled = false;
  #liveness: NodeJS.Timeout | undefined;
  #lastSend = 0;
  #lastRecv = 0;
  readonly #frames: FrameReader;
  readonly #watches = new WatchManager();
  /** Why requests fail from now on (closed, expired, authentication failed). */
  #deadError: ZkError | undefined;

  constructor(servers: Array<{ host: string; port: number }>, chroot: string, options: ConnectionOptions) {
    super();
    if (servers.length === 0)
      throw new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, 'a ZooKeeper connection needs at least one server');
    for (const s of servers) checkServer(s);
    this.#servers = shuffle(servers);
    this.#chroot = chroot;
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
    this.#maxBuffer = options.maxBuffer ?? DEFAULT_MAX_BUFFER;
    this.#frames = new FrameReader(options.maxAnswerBytes ?? DEFAULT_MAX_ANSWER_BYTES);
    this.#queue = new PendingQueue(this.#now, options.requestTimeout);
    const t = options.sessionTimeout;
    this.#backoff = new Backoff({
      initialMs: options.spinDelay,
      maxMs: Math.max(options.spinDelay, Math.min(2000, t / 3)),
      jitter: 'equal',
    });
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

  /** The server of the current (or last) connection attempt. */
  get server(): { host: string; port: number } | undefined {
    return this.#server;
  }

  /** The largest request frame this connection sends (the servers' jute.maxbuffer). */
  get maxBuffer(): number {
    return this.#maxBuffer;
  }

  get connected(): boolean {
    return this.#state === 'connected';
  }

  get closed(): boolean {
    return this.#state === 'closed' || this.#state === 'expired' || this.#state === 'authFailed';
  }

  /** Requests waiting for an answer (sent or not). */
  get pendingCount(): number {
    return this.#queue.pendingCount;
  }

  /** Plain persistent watch listeners by watched path (without chroot). */
  get persistent(): Map<string, Set<PersistentListener>> {
    return this.#watches.persistent;
  }

  /** Persistent recursive watch listeners by watched path (without chroot). */
  get persistentRecursive(): Map<string, Set<PersistentListener>> {
    return this.#watches.persistentRecursive;
  }

  /**
   * Listen to a persistent watch's events (the `addWatch` request is the caller's); the path is registered
   * again on every new connection. Returns the function that removes the listener.
   */
  addPersistentListener(mode: PersistentMode, path: string, listener: PersistentListener): () => void {
    return this.#watches.addPersistent(mode, path, listener);
  }

  /** Add an authentication identity: sent now when connected, and on every later connection. */
  addAuth(scheme: string, auth: Buffer): void {
    this.#credentials.push({ scheme, auth });
    if (this.#state === 'connected' && this.#socket) {
      const w = new Writer(64);
      writeAuth(w, { scheme, auth });
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
    decode: ((r: Reader) => unknown) | undefined,
    extra?: { watch?: WatchCallback; watchKind?: WatchKind; onAnswer?: () => void; noNodeIsNull?: boolean },
  ): Promise<T> {
    if (this.#deadError || this.#state === 'closing') {
      return Promise.reject(
        this.#deadError ?? new ZkError(ZK_CODES.CONNECTION_LOSS, op, path, 'the session is closing'),
      );
    }
    const w = this.#out;
    const start = w.pos;
    const xid = nextXid(this.xid);
    try {
      w.int(0); // length, filled in below
      w.int(xid);
      w.int(type);
      encode(w);
    } catch (err) {
      w.pos = start;
      return Promise.reject(new ZkError(ZK_CODES.BAD_ARGUMENTS, op, path, (err as Error).message));
    }
    const length = w.pos - start - 4;
    if (length > this.#maxBuffer) {
      w.pos = start;
      return Promise.reject(
        new ZkError(ZK_CODES.BAD_ARGUMENTS, op, path, tooLarge(op, length, this.#maxBuffer)),
      );
    }
    this.xid = xid;
    w.buf.writeInt32BE(length, start);
    return new Promise<T>((resolve, reject) => {
      this.#queue.add({
        xid,
        op,
        path,
        decode,
        resolve: resolve as (v: unknown) => void,
        reject,
        deadline: 0,
        settled: false,
        start,
        end: w.pos,
        watch: extra?.watch,
        watchKind: extra?.watchKind ?? 0,
        onAnswer: extra?.onAnswer,
        noNodeIsNull: extra?.noNodeIsNull ?? false,
      });
      if (this.#state === 'connected') this.#scheduleFlush();
    });
  }

  /**
   * Reject every request waiting, and every later one, with `err`. Requests already on the wire stay in
   * the queue (settled) until their answers come, so the answers that follow still match.
   */
  failAll(err: Error): void {
    this.#queue.failAll(err);
    this.#out.pos = 0;
  }

  /** Close the session (its ephemeral nodes go at once); `disconnected` is emitted when it is done. */
  close(): void {
    if (this.closed || this.#state === 'closing') return;
    clearTimeout(this.#retryTimer);
    const closing = new ZkError(ZK_CODES.CONNECTION_LOSS, 'request', undefined, 'the client was closed');
    if (this.#state !== 'connected') {
      this.#finish('closed', closing);
      return;
    }
    // Requests not sent yet would only race the close: fail them now. Those sent keep their place.
    this.#queue.failUnsent(closing);
    this.#out.pos = 0;
    const p = this.request<void>(OP.closeSession, 'closeSession', undefined, () => {}, undefined);
    this.#state = 'closing';
    const done = () => this.#finish('closed', closing);
    p.then(done, done);
  }

  /** Report a user callback's failure (never thrown into the frame loop). */
  #reportCallbackError = (err: unknown, where: string): void => {
    if (this.listenerCount('callbackError') > 0) {
      for (const fn of this.rawListeners('callbackError') as Array<(...a: unknown[]) => unknown>) {
        try {
          fn.call(this, err, where);
        } catch {
          // A reporter that throws has nowhere left to report to.
        }
      }
      return;
    }
    process.emitWarning(
      `a ZooKeeper ${where} threw: ${(err as Error)?.stack ?? String(err)}`,
      'ZkfarmCallbackError',
    );
  };

  #emit(event: string, ...args: unknown[]): void {
    emitSafely(this, event, args, this.#reportCallbackError);
  }

  // -------------------------------------------------------------------------------------------------
  // Connecting
  // -------------------------------------------------------------------------------------------------

  #nextAttempt(): void {
    if (this.closed || this.#state === 'closing') return;
    this.#state = 'connecting';
    if (this.#attemptsThisRound >= this.#servers.length) {
      this.#attemptsThisRound = 0;
      const delay = Math.round(this.#backoff.next());
      this.#emit('reconnectDelay', delay);
      this.#retryTimer = setTimeout(() => this.#attempt(), delay);
      return;
    }
    this.#attempt();
  }

  /** The socket to a server: the one place a transport is made. */
  #openSocket(server: { host: string; port: number }): net.Socket {
    const socket = net.connect({ host: server.host, port: server.port });
    socket.setNoDelay(true);
    return socket;
  }

  #attempt(): void {
    if (this.closed || this.#state === 'closing') return;
    const server = this.#servers[this.#serverIndex % this.#servers.length]!;
    this.#serverIndex++;
    this.#attemptsThisRound++;
    this.#server = server;
    this.#frames.reset();
    let socket: net.Socket;
    try {
      socket = this.#openSocket(server);
    } catch (err) {
      // A socket that cannot even be made is a failed attempt, never an exception from a timer.
      this.emit('protocolError', err);
      this.#nextAttempt();
      return;
    }
    this.#socket = socket;
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
    socket.on('connect', () => {
      if (this.#socket !== socket) return;
      this.#state = 'handshaking';
      socket.write(this.#handshakeRequest());
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.#socket === socket) this.#onData(socket, chunk);
    });
    socket.on('error', () => {
      // 'close' follows; that is where the next attempt starts.
    });
    socket.on('close', () => {
      if (this.#socket === socket) this.#onClose();
    });
  }

  #handshakeRequest(): Buffer {
    const w = new Writer(64);
    w.int(0);
    w.int(PROTOCOL_VERSION);
    w.raw(this.#lastZxid);
    w.int(this.#options.sessionTimeout);
    w.raw(this.#sessionId);
    w.buffer(this.#password);
    w.bool(false); // not read-only
    w.buf.writeInt32BE(w.pos - 4, 0);
    return w.take();
  }

  #onClose(): void {
    clearTimeout(this.#attemptTimer);
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
    this.#queue.rejectInflight('the connection to ZooKeeper was lost');
    this.#state = 'connecting';
    if (was === 'connected') this.#emit('disconnected');
    if (this.#negotiatedTimeout > 0) this.#armLiveness();
    this.#nextAttempt();
  }

  /** End for good: fail everything with `err`, close the socket, emit the matching event. */
  #finish(state: 'closed' | 'expired' | 'authFailed', err: ZkError, reason?: string): void {
    if (this.closed) return;
    const was = this.#state;
    this.#state = state;
    this.#deadError =
      state === 'expired'
        ? new ZkError(ZK_CODES.SESSION_EXPIRED, 'request', undefined, reason ?? 'the session expired')
        : state === 'authFailed'
          ? new ZkError(ZK_CODES.AUTH_FAILED, 'request', undefined, 'authentication failed')
          : new ZkError(ZK_CODES.CONNECTION_LOSS, 'request', undefined, 'the client was closed');
    clearTimeout(this.#attemptTimer);
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#liveness);
    this.#queue.close(err);
    this.#out.pos = 0;
    const socket = this.#socket;
    this.#socket = undefined;
    socket?.destroy();
    if (state === 'expired') this.#emit('expired', reason ?? 'the server expired the session');
    else if (state === 'authFailed') this.#emit('authenticationFailed');
    else if (was === 'connected' || was === 'closing') this.#emit('disconnected');
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
        'the server refused to resume the session: it has expired',
      );
      return;
    }
    clearTimeout(this.#attemptTimer);
    this.#attemptsThisRound = 0;
    this.#backoff.reset();
    sessionId.copy(this.#sessionId);
    if (password) this.#password = password;
    this.#negotiatedTimeout = timeout;
    this.#state = 'connected';
    this.#lastRecv = this.#lastSend = this.#now();
    this.#armLiveness();
    // Authentication and watches go before anything queued, as in ZooKeeper's own client.
    const pre = new Writer(256);
    for (const c of this.#credentials) writeAuth(pre, c);
    this.#watches.writeSetWatches(pre, this.#lastZxid, (p) => this.serverPath(p));
    if (pre.pos > 0) this.#socket!.write(pre.take());
    this.#flush();
    this.#emit('connected');
  }

  // -------------------------------------------------------------------------------------------------
  // Liveness: pings, the read timeout, and the client-side expiry
  // -------------------------------------------------------------------------------------------------

  /**
   * One timer for the session's liveness, armed at the earliest of: the next ping (connected, nothing sent
   * for readTimeout/2), the read timeout (connected, nothing received for 2/3 of the session timeout),
   * the client-side expiry (nothing received for 4/3 of it, whatever the state).
   */
  #armLiveness(): void {
    clearTimeout(this.#liveness);
    if (this.closed) return;
    const t = this.#negotiatedTimeout;
    const now = this.#now();
    let due = this.#lastRecv + (t * 4) / 3;
    if (this.#state === 'connected' || this.#state === 'closing')
      due = Math.min(due, this.#lastRecv + (t * 2) / 3, this.#lastSend + t / 3);
    this.#liveness = setTimeout(() => this.#checkLiveness(false), Math.max(1, Math.ceil(due - now)));
    this.#liveness.unref();
  }

  #checkLiveness(deferred: boolean): void {
    if (this.closed) return;
    const t = this.#negotiatedTimeout;
    const idleRecv = this.#now() - this.#lastRecv;
    const connected = this.#state === 'connected' || this.#state === 'closing';
    const overdue = idleRecv >= (t * 4) / 3 || (connected && idleRecv >= (t * 2) / 3);
    if (overdue && !deferred) {
      // Timers run before I/O in Node's loop: after a long pause of this thread, answers may be waiting
      // in the socket. Look again once they have been read.
      setImmediate(() => this.#checkLiveness(true));
      return;
    }
    if (idleRecv >= (t * 4) / 3) {
      const why =
        `no answer from any ZooKeeper server for ${Math.round(idleRecv)} ms, 4/3 of the ${t} ms session ` +
        'timeout: the servers have expired the session by now';
      this.#finish('expired', new ZkError(ZK_CODES.SESSION_EXPIRED, 'request', undefined, why), why);
      return;
    }
    if (connected && idleRecv >= (t * 2) / 3) {
      // A silent server or network: drop this connection and try the next server while the session lives.
      this.#socket?.destroy();
      this.#armLiveness();
      return;
    }
    if (connected && this.#now() - this.#lastSend >= t / 3 && this.#socket) {
      const w = new Writer(16);
      w.int(8);
      w.int(XID.ping);
      w.int(OP.ping);
      this.#socket.write(w.take());
      this.#lastSend = this.#now();
    }
    this.#armLiveness();
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
    if (!socket || (this.#state !== 'connected' && this.#state !== 'closing')) return;
    const bytes = this.#queue.takeUnsent(this.#out);
    if (bytes.length === 0) return;
    this.#lastSend = this.#now();
    socket.write(bytes);
  }

  // -------------------------------------------------------------------------------------------------
  // Receiving
  // -------------------------------------------------------------------------------------------------

  #onData(socket: net.Socket, chunk: Buffer): void {
    this.#lastRecv = this.#now();
    try {
      this.#frames.push(chunk, (r) => {
        if (this.#state === 'handshaking') this.#onHandshake(r);
        else this.#onFrame(r);
        return this.#socket === socket && !this.closed;
      });
    } catch (err) {
      // Out of step with the server: drop this connection (the session can be resumed on the next).
      this.#emit('protocolError', err);
      socket.destroy();
    }
  }

  #onFrame(r: Reader): void {
    const xid = r.int();
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
    const b = r.buf;
    const hi = b.readInt32BE(zxidAt);
    if (hi > 0 || (hi === 0 && b.readUInt32BE(zxidAt + 4) !== 0))
      b.copy(this.#lastZxid, 0, zxidAt, zxidAt + 8);
    const p = this.#queue.shift(xid);
    if (p.onAnswer) callSafely(p.onAnswer, [], 'onAnswer callback', this.#reportCallbackError);
    if (p.settled) return;
    this.#onAnswer(p, err, r);
  }

  #onAnswer(p: Pending, err: number, r: Reader): void {
    if (err !== 0) {
      if (err === ZK_CODES.NO_NODE && p.watchKind === W_EXIST && p.watch)
        this.#watches.register(W_EXIST, p.path!, p.watch);
      if (err === ZK_CODES.NO_NODE && p.noNodeIsNull) this.#queue.settle(p, undefined, null);
      else this.#queue.settle(p, new ZkError(err, p.op, p.path));
      return;
    }
    let value: unknown;
    try {
      value = p.decode ? p.decode(r) : undefined;
    } catch (e) {
      // A ZkError is the answer's own verdict (a multi that failed); anything else means the bytes were
      // not what the request expects: fail the request and drop the connection (see #onData).
      if (e instanceof ZkError) {
        this.#queue.settle(p, e);
        return;
      }
      this.#queue.settle(p, new ZkError(ZK_CODES.MARSHALLING_ERROR, p.op, p.path, (e as Error).message));
      throw e;
    }
    if (p.watch) this.#watches.register(p.watchKind === W_EXIST ? W_DATA : p.watchKind, p.path!, p.watch);
    this.#queue.settle(p, undefined, value);
  }

  #onEvent(r: Reader): void {
    const type = r.int();
    const state = r.int();
    const path = this.clientPath(r.ustring() ?? '');
    const { oneShot, persistent } = this.#watches.materialize(type, path);
    const report = this.#reportCallbackError;
    for (const fn of persistent) callSafely(fn, [type, path], 'persistent watch listener', report);
    if (oneShot.size === 0) return;
    const event = { type, state, path };
    for (const fn of oneShot) callSafely(fn, [event], 'watch callback', report);
  }
}

function writeAuth(w: Writer, c: { scheme: string; auth: Buffer }): void {
  const start = w.pos;
  w.int(0);
  w.int(XID.auth);
  w.int(OP.auth);
  w.int(0);
  w.ustring(c.scheme);
  w.buffer(c.auth);
  w.buf.writeInt32BE(w.pos - start - 4, start);
}

function tooLarge(op: string, length: number, max: number): string {
  return (
    `the ${op} request is ${length} bytes, over the servers' jute.maxbuffer of ${max} bytes (ZooKeeper would ` +
    'drop the connection): keep node data smaller, split the multi into smaller ones, or, if the servers run ' +
    'with a larger -Djute.maxbuffer, set the client option maxBuffer to match'
  );
}

function shuffle<T>(list: T[]): T[] {
  const out = [...list];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
