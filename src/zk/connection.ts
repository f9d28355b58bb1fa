/**
 * One ZooKeeper session over TCP: zkfarm's own client of ZooKeeper's wire protocol (3.6+ servers).
 *
 * It does what ZooKeeper's Java client does, in the parts zkfarm uses, and nothing else:
 *
 * - Time is a monotonic clock (`performance.now`, injectable as `options.now`), never the wall clock.
 * - Servers are tried one at a time, with backoff between rounds (servers.ts). Each attempt has one
 *   deadline for the TCP connect and the handshake together.
 * - Resumes the same session on a new connection (session id and password), re-sending the
 *   authentication (handshake.ts) and registering every watch again, persistent ones included
 *   (watch-manager.ts).
 * - Pings, drops a silent connection, and takes the session as gone when no server has answered for
 *   4/3 of the session timeout (liveness.ts); a server refusing to resume the session says the same.
 *   Either way it emits `expired` (with the reason) and every request fails with SESSION_EXPIRED.
 * - Answers come in request order (pending.ts): each request has a deadline (`requestTimeout`);
 *   requests sent on a connection that drops fail with CONNECTION_LOSS (their outcome is unknown);
 *   requests made while disconnected wait for the next connection. A request larger than the servers'
 *   jute.maxbuffer (`maxBuffer`) is refused before it is sent (request-frame.ts): the server would drop
 *   the connection.
 *   Xids wrap before 2^31 (jute.ts `nextXid`). Requests made in one tick go out in one socket write
 *   (outbox.ts).
 * - User callbacks (watchers, listeners, `onAnswer`, event listeners) are isolated (callbacks.ts): one
 *   that throws is reported as `callbackError` and nothing else is disturbed.
 * - A close is orderly: requests already sent keep their place in the queue until their answers come,
 *   so the close-session answer is matched and the session ends at once on the server.
 *
 * Events: `connected` (a handshake succeeded: the first, or a resumption), `disconnected` (a connected
 * socket was lost, or the session was closed), `expired` (reason), `authenticationFailed`,
 * `protocolError` (err: the connection was out of step and is dropped), `callbackError` (err, where),
 * `reconnectDelay` (ms: the pause before the next round of servers), `transport` (a TLS problem
 * retrying will not mend, see transport.ts).
 */
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import { AnswerReader } from './answers.js';
import { emitSafely, reportCallbackError } from './callbacks.js';
import { withChroot, withoutChroot } from './chroot-paths.js';
import {
  type ConnectionOptions,
  DEFAULT_MAX_ANSWER_BYTES,
  DEFAULT_MAX_BUFFER,
} from './connection-options.js';
import { ZK_CODES, ZkError } from './errors.js';
import { FrameReader } from './frames.js';
import { SessionHandshake } from './handshake.js';
import { nextXid, OP, pingRequest, type Reader, Writer, XID } from './jute.js';
import { Liveness } from './liveness.js';
import { Outbox } from './outbox.js';
import { PendingQueue, type RequestExtra } from './pending.js';
import { closedError, endedError } from './request-frame.js';
import { type ServerAddress, ServerList } from './servers.js';
import { openSocket } from './transport.js';
import { type PersistentListener, type PersistentMode, WatchManager } from './watch-manager.js';

type State =
  | 'idle'
  | 'connecting'
  | 'handshaking'
  | 'connected'
  | 'closing'
  | 'closed'
  | 'expired'
  | 'authFailed';

export class ZkConnection extends EventEmitter {
  readonly #servers: ServerList;
  readonly #chroot: string;
  readonly #options: ConnectionOptions;
  readonly #now: () => number;
  readonly #maxBuffer: number;
  #state: State = 'idle';
  #socket: net.Socket | undefined;
  #server: ServerAddress | undefined;
  #attemptTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  readonly #handshake: SessionHandshake;
  /** The last xid used; protected so that a test can start near the wrap, as ZooKeeper's own tests do. */
  protected xid = 0;
  readonly #queue: PendingQueue;
  /** Requests framed and queued, sent once per tick (outbox.ts). */
  readonly #outbox: Outbox;
  readonly #liveness: Liveness;
  readonly #frames: FrameReader;
  readonly #watches = new WatchManager();
  readonly #answers: AnswerReader;
  /** Why requests fail from now on (closed, expired, authentication failed). */
  #deadError: ZkError | undefined;

  constructor(servers: ServerAddress[], chroot: string, options: ConnectionOptions) {
    super();
    this.#servers = new ServerList(servers, options.spinDelay, options.sessionTimeout);
    this.#chroot = chroot;
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
    this.#maxBuffer = options.maxBuffer ?? DEFAULT_MAX_BUFFER;
    this.#frames = new FrameReader(options.maxAnswerBytes ?? DEFAULT_MAX_ANSWER_BYTES);
    this.#queue = new PendingQueue(this.#now, options.requestTimeout);
    this.#outbox = new Outbox(this.#queue, this.#maxBuffer, () => this.#flush());
    this.#answers = new AnswerReader(this.#queue, this.#watches, chroot, this.#reportCallbackError);
    this.#liveness = new Liveness({
      now: this.#now,
      connected: () => this.#state === 'connected' || this.#state === 'closing',
      ping: () => this.#socket?.write(pingRequest()),
      drop: () => this.#socket?.destroy(),
      expire: (why) => this.#finish('expired', why),
    });
    this.#handshake = new SessionHandshake(options.session);
  }

  /** Start connecting (once). */
  connect(): void {
    if (this.#state === 'idle') this.#nextAttempt();
  }

  /** The session timeout the server granted (0 before the first handshake). */
  get sessionTimeout(): number {
    return this.#handshake.timeout;
  }

  /**
   * When a server last answered (the handshake, a reply to a request or ping; not a watch notification:
   * see liveness.ts), on the connection's monotonic clock (`performance.now()` unless injected): whoever
   * must act before the servers expire the session counts from here.
   */
  get lastAnswerAt(): number {
    return this.#liveness.lastAnswer;
  }

  /** The session id as 16 hex digits (zeros before the first handshake). */
  get sessionId(): string {
    return this.#handshake.sessionId;
  }

  /** The session's password (a copy), which with its id lets another connection resume the session. */
  get sessionPassword(): Buffer {
    return this.#handshake.password;
  }

  /** The server of the current (or last) connection attempt. */
  get server(): ServerAddress | undefined {
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

  /**
   * Listen to a persistent watch's events (the `addWatch` request is the caller's); the path is registered
   * again on every new connection. Returns the function that removes the listener.
   */
  addPersistentListener(mode: PersistentMode, path: string, listener: PersistentListener): () => void {
    return this.#watches.addPersistent(mode, path, listener);
  }

  /** Whether any watch (one-shot or persistent) is at `path` (without chroot), or on its way there. */
  hasWatches(path: string): boolean {
    return this.#watches.hasAny(path) || this.#queue.watching(path);
  }

  /** Add an authentication identity: sent now when connected, and on every later connection. */
  addAuth(scheme: string, auth: Buffer): void {
    const packet = this.#handshake.addAuth(scheme, auth);
    if (this.#state === 'connected' && this.#socket) this.#socket.write(packet);
  }

  /** Path as the server sees it (with the chroot; chroot-paths.ts). */
  serverPath(path: string): string {
    return withChroot(this.#chroot, path);
  }

  /** Path as the caller sees it (without the chroot; chroot-paths.ts). */
  clientPath(path: string): string {
    return withoutChroot(this.#chroot, path);
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
    extra?: RequestExtra,
  ): Promise<T> {
    if (this.#deadError || this.#state === 'closing') {
      return Promise.reject(
        this.#deadError ?? new ZkError(ZK_CODES.CONNECTION_LOSS, op, path, 'the session is closing'),
      );
    }
    const xid = nextXid(this.xid);
    const answer = this.#outbox.add<T>({ xid, type, op, path }, encode, decode, extra);
    if (answer instanceof ZkError) return Promise.reject(answer);
    this.xid = xid;
    if (this.#state === 'connected') this.#outbox.schedule();
    return answer;
  }

  /**
   * Reject every request waiting, and every later one, with `err`. Requests already on the wire stay in
   * the queue (settled) until their answers come, so the answers that follow still match.
   */
  failAll(err: Error): void {
    this.#queue.failAll(err);
    this.#outbox.clear();
  }

  /** Close the session (its ephemeral nodes go at once); `disconnected` is emitted when it is done. */
  close(): void {
    if (this.closed || this.#state === 'closing') return;
    clearTimeout(this.#retryTimer);
    if (this.#state !== 'connected') {
      this.#finish('closed');
      return;
    }
    // Requests not sent yet would only race the close: fail them now. Those sent keep their place.
    this.#queue.failUnsent(closedError());
    this.#outbox.clear();
    const p = this.request<void>(OP.closeSession, 'closeSession', undefined, () => {}, undefined);
    this.#state = 'closing';
    const done = () => this.#finish('closed');
    p.then(done, done);
  }

  /** Report a user callback's failure (never thrown into the frame loop). */
  #reportCallbackError = (err: unknown, where: string): void => reportCallbackError(this, err, where);

  #emit(event: string, ...args: unknown[]): void {
    emitSafely(this, event, args, this.#reportCallbackError);
  }

  // -------------------------------------------------------------------------------------------------
  // Connecting
  // -------------------------------------------------------------------------------------------------

  #nextAttempt(): void {
    if (this.closed || this.#state === 'closing') return;
    this.#state = 'connecting';
    const { server, delayMs } = this.#servers.next();
    if (delayMs === 0) {
      this.#attempt(server);
      return;
    }
    this.#emit('reconnectDelay', delayMs);
    this.#retryTimer = setTimeout(() => this.#attempt(server), delayMs);
  }

  /**
   * The socket to a server: the one place a transport is made. `ready` names the socket event after
   * which the handshake can be sent.
   */
  #openSocket(server: ServerAddress): { socket: net.Socket; ready: string } {
    return openSocket(server, this.#options.tls, (p) => this.#emit('transport', p));
  }

  #attempt(server: ServerAddress): void {
    if (this.closed || this.#state === 'closing') return;
    this.#server = server;
    this.#frames.reset();
    let socket: net.Socket;
    let ready: string;
    try {
      ({ socket, ready } = this.#openSocket(server));
    } catch (err) {
      // A socket that cannot even be made is a failed attempt, never an exception from a timer.
      this.#emit('protocolError', err);
      this.#nextAttempt();
      return;
    }
    this.#socket = socket;
    const deadline = this.#servers.attemptDeadline(this.#handshake.timeout || this.#options.sessionTimeout);
    this.#attemptTimer = setTimeout(() => socket.destroy(), deadline);
    this.#attemptTimer.unref();
    socket.on(ready, () => {
      if (this.#socket !== socket) return;
      this.#state = 'handshaking';
      socket.write(this.#handshake.request(this.#answers.lastZxid, this.#options.sessionTimeout));
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

  #onClose(): void {
    clearTimeout(this.#attemptTimer);
    this.#socket = undefined;
    const was = this.#state;
    if (this.closed) return;
    if (was === 'closing') {
      this.#finish('closed');
      return;
    }
    this.#queue.rejectInflight('the connection to ZooKeeper was lost');
    this.#state = 'connecting';
    if (was === 'connected') this.#emit('disconnected');
    this.#liveness.arm();
    this.#nextAttempt();
  }

  /** End for good: fail everything, close the socket, emit the matching event. */
  #finish(state: 'closed' | 'expired' | 'authFailed', reason?: string): void {
    if (this.closed) return;
    const was = this.#state;
    this.#state = state;
    const why = reason ?? 'the server refused to resume the session: it has expired';
    this.#deadError = endedError(state, why);
    clearTimeout(this.#attemptTimer);
    clearTimeout(this.#retryTimer);
    this.#liveness.stop();
    this.#queue.close(this.#deadError);
    this.#outbox.clear();
    const socket = this.#socket;
    this.#socket = undefined;
    socket?.destroy();
    if (state === 'expired') this.#emit('expired', why);
    else if (state === 'authFailed') this.#emit('authenticationFailed');
    else if (was === 'connected' || was === 'closing') this.#emit('disconnected');
  }

  #onHandshake(r: Reader): void {
    const timeout = this.#handshake.accept(r);
    if (timeout === 'expired') {
      this.#finish('expired');
      return;
    }
    clearTimeout(this.#attemptTimer);
    this.#servers.connected();
    this.#state = 'connected';
    this.#liveness.start(timeout);
    // Authentication and watches go before anything queued, as in ZooKeeper's own client.
    const pre = new Writer(256);
    this.#handshake.writeAuths(pre);
    this.#watches.writeSetWatches(pre, this.#answers.lastZxid, (p) => this.serverPath(p));
    if (pre.pos > 0) this.#socket!.write(pre.take());
    this.#flush();
    this.#emit('connected');
  }

  // -------------------------------------------------------------------------------------------------
  // Sending and receiving
  // -------------------------------------------------------------------------------------------------

  #flush(): void {
    const socket = this.#socket;
    if (!socket || (this.#state !== 'connected' && this.#state !== 'closing')) return;
    const bytes = this.#outbox.take();
    if (bytes.length === 0) return;
    this.#liveness.lastSend = this.#now();
    socket.write(bytes);
  }

  #onData(socket: net.Socket, chunk: Buffer): void {
    let answered = false;
    try {
      this.#frames.push(chunk, (r) => {
        if (this.#state === 'handshaking') this.#onHandshake(r);
        else {
          // Every frame but a watch notification answers something: only those keep the connection
          // alive (liveness.ts).
          if (!answered && r.buf.readInt32BE(r.pos) !== XID.notification) {
            answered = true;
            this.#liveness.lastAnswer = this.#now();
          }
          if (this.#answers.read(r) === 'authFailed') this.#finish('authFailed');
        }
        return this.#socket === socket && !this.closed;
      });
    } catch (err) {
      // Out of step with the server: drop this connection (the session can be resumed on the next).
      this.#emit('protocolError', err);
      socket.destroy();
    }
  }
}
