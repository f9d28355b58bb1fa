/**
 * The session supervisor: zkfarm's `Connect-Zookeeper`.
 *
 * `connect(options, action)` keeps a ZooKeeper session alive and runs `action(session)` once the session is
 * connected, and again on every *new* session after the old one is lost. A reconnect within the same
 * session does not re-run it (its ephemeral nodes and watches are still there).
 *
 * States (readable as `supervisor.state`, reported as `'state'` events):
 *
 *   connecting ──▶ connected ──▶ suspended ──▶ reconnected ──▶ suspended ...
 *        ▲                            │
 *        └──────── lost ◀─────────────┘   (expired, or no answer for 4/3 of the session timeout)
 *   any ──▶ closed                          (stop(), abort signal, or the action returned 'completed')
 *
 * `lost` is decided two ways (connection.ts): a server says the session expired (learned only on
 * reconnect), or no server has answered for 4/3 of the negotiated session timeout, counted from the
 * last answer (a partitioned client is never told; ZooKeeper 3.9's client decides the same way). An
 * expired client is dead, so a lost session's client is closed, its pending requests fail at once with
 * `ZKFARM_SESSION_LOST`, its `session.signal` aborts, and a new client starts a new session (attempt.ts).
 *
 * Each new session is checked before the action runs (server-check.ts): a server older than 3.6 and a
 * chroot that does not exist stop the supervisor with a clear error.
 *
 * Listeners of the supervisor's events are called one by one: one that throws is reported (logger and
 * `'error'`) and never keeps the others, or the client, from going on.
 *
 * The three modes of the original:
 *   - run until stopped:   `await connect(opts, action).done`   (ends on `stop()` or `signal`)
 *   - run until completed: the action returns `'completed'`; `done` resolves and the session closes
 *   - pass-through:        `const session = await connect(opts, action).ready` — the live session, while
 *                          watches and the action keep running on every new session
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Backoff } from '../backoff.js';
import { describeError, ErrorCodes, ZkfarmError } from '../errors.js';
import { digestAcl, OPEN_ACL } from './acl.js';
import { fatal, stoppingError } from './action-errors.js';
import { type Attempt, newAttempt } from './attempt.js';
import { emitSafely } from './callbacks.js';
import { type ConnectOptions, checkConnectOptions, type Logger, silentLogger } from './connect-options.js';
import type { Acl } from './jute.js';
import { checkServer } from './server-check.js';
import { Session } from './session.js';
import { type PreparedTls, prepareTls } from './transport.js';
import {
  type ChildrenChange,
  type ChildrenWatcher,
  type ClientSource,
  childrenWatch,
  type DataChange,
  DataWatch,
  type WatchOptions,
} from './watchers.js';

export type SessionState = 'connecting' | 'connected' | 'suspended' | 'reconnected' | 'lost' | 'closed';

/** Return `'completed'` from an action to end the supervisor; anything else keeps it running. */
export type ActionResult = undefined | 'completed';
export type Action = (session: Session) => unknown;

export { fatal } from './action-errors.js';

export class Supervisor extends EventEmitter {
  readonly options: Readonly<ConnectOptions>;
  readonly ready: Promise<Session>;
  readonly done: Promise<void>;
  #state: SessionState = 'connecting';
  #attempt: Attempt | undefined;
  #sessions = 0;
  #stopped = false;
  #resolveReady!: (s: Session) => void;
  #rejectReady!: (e: Error) => void;
  #resolveDone!: () => void;
  #rejectDone!: (e: Error) => void;
  #readyDone = false;
  #action: Action | undefined;
  /** Requests sent by the clients of sessions before the current one. */
  #requestsBefore = 0;
  #connectTimer: NodeJS.Timeout | undefined;
  #newSessionListeners = new Set<() => void>();
  #watches = new Set<{ close(): void }>();
  readonly #log: Logger;
  readonly #acl: readonly Acl[];
  readonly #tls: PreparedTls | undefined;

  constructor(options: ConnectOptions, action?: Action) {
    super();
    // Every persistent watch listens for reconnects: a farm's leader has one per worker.
    this.setMaxListeners(0);
    checkConnectOptions(options);
    this.#tls = options.tls ? prepareTls(options.tls) : undefined;
    this.options = { ...options };
    this.#action = action;
    this.#log = options.logger ?? silentLogger;
    this.#acl = options.acl ?? (options.auth ? digestAcl(options.auth) : OPEN_ACL);
    this.ready = new Promise((res, rej) => {
      this.#resolveReady = res;
      this.#rejectReady = rej;
    });
    this.done = new Promise((res, rej) => {
      this.#resolveDone = res;
      this.#rejectDone = rej;
    });
    // Callers that only await one of the two must not see an unhandled rejection from the other.
    this.ready.catch(() => {});
    this.done.catch(() => {});
    // An 'error' event with no listener would throw; errors are reported through the logger as well.
    this.on('error', () => {});
    if (options.signal) {
      if (options.signal.aborted) queueMicrotask(() => void this.stop());
      else options.signal.addEventListener('abort', () => void this.stop(), { once: true });
    }
    this.#start();
  }

  get state(): SessionState {
    return this.#state;
  }

  /** The live session, if any. */
  get session(): Session | undefined {
    const s = this.#attempt?.session;
    return s?.alive ? s : undefined;
  }

  /** How many sessions were started so far. */
  get sessionCount(): number {
    return this.#sessions;
  }

  get sessionTimeout(): number {
    const connection = this.#attempt?.connection;
    const negotiated = connection && this.#attempt?.everConnected ? connection.sessionTimeout : 0;
    return negotiated > 0 ? negotiated : (this.options.sessionTimeout ?? 10_000);
  }

  /** ZooKeeper requests sent on every session of this supervisor so far (a multi counts once). */
  get requests(): number {
    return this.#requestsBefore + (this.#attempt?.client.requests ?? 0);
  }

  #start(): void {
    this.#armConnectTimer();
    this.#newAttempt();
  }

  #armConnectTimer(): void {
    const limit = this.options.connectTimeout;
    if (limit === undefined || !Number.isFinite(limit)) return;
    clearTimeout(this.#connectTimer);
    this.#connectTimer = setTimeout(() => {
      this.#fail(
        new ZkfarmError(
          ErrorCodes.ZK_UNREACHABLE,
          `could not reach ZooKeeper at ${this.options.connect} within ${limit} ms; check that the server runs ` +
            'and the connect string (host:port[,host:port...][/chroot]) is right',
        ),
      );
    }, limit);
    this.#connectTimer.unref?.();
  }

  #newAttempt(): void {
    if (this.#stopped) return;
    const attempt: Attempt = newAttempt(
      this.options,
      { tls: this.#tls, acl: this.#acl, log: this.#log },
      {
        connected: () => this.#onConnected(attempt),
        disconnected: () => this.#onDisconnected(attempt),
        expired: (why) => this.#onLost(attempt, why),
        callbackError: (err, where) => this.reportError(err, where),
        failed: (err) => {
          if (attempt === this.#attempt) this.#fail(fatal(err));
        },
      },
    );
    this.#attempt = attempt;
    this.#setState('connecting');
    attempt.connection.connect();
  }

  #onConnected(attempt: Attempt): void {
    if (attempt !== this.#attempt || this.#stopped) return;
    if (attempt.everConnected) {
      this.#setState('reconnected');
      return;
    }
    attempt.everConnected = true;
    clearTimeout(this.#connectTimer);
    this.#sessions++;
    const session = new Session(this, attempt.client, this.#sessions);
    attempt.session = session;
    this.#log.info(
      { sessionId: session.id, session: session.number, timeoutMs: this.sessionTimeout },
      'zk session started',
    );
    this.#setState('connected');
    for (const rearm of this.#newSessionListeners) rearm();
    void this.#runAction(session);
  }

  #onDisconnected(attempt: Attempt): void {
    if (attempt !== this.#attempt || this.#stopped || !attempt.everConnected) return;
    if (this.#state === 'lost') return;
    // The connection itself decides when the session must be taken as lost (4/3 of the session timeout
    // after the last answer): see connection.ts.
    this.#setState('suspended');
  }

  #onLost(attempt: Attempt, why: string): void {
    if (attempt !== this.#attempt || this.#stopped) return;
    const err = new ZkfarmError(ErrorCodes.SESSION_LOST, `the ZooKeeper session was lost: ${why}`);
    this.#log.warn({ sessionId: attempt.session?.id, why }, 'zk session lost');
    attempt.session?.end(err);
    attempt.client.failPending(err);
    attempt.dispose();
    this.#requestsBefore += attempt.client.requests;
    this.#attempt = undefined;
    this.#setState('lost');
    this.#armConnectTimer();
    setTimeout(() => this.#newAttempt(), 0);
  }

  async #runAction(session: Session): Promise<void> {
    const action = this.#action ?? (() => undefined);
    const backoff = new Backoff({ initialMs: this.options.retryDelay ?? 200, maxMs: 5000, jitter: 'equal' });
    let checked = false;
    while (session.alive && !this.#stopped) {
      try {
        if (!checked) {
          await checkServer(session.client, this.options.connect);
          checked = true;
        }
        const result = await action(session);
        if (!session.alive) return;
        this.#markReady(session);
        if (result === 'completed') await this.stop();
        return;
      } catch (err) {
        if (!session.alive || this.#stopped) return;
        const stopping = stoppingError(err);
        if (stopping) {
          this.#fail(stopping);
          return;
        }
        this.reportError(err, 'action');
        await sleep(backoff.next());
      }
    }
  }

  #markReady(session: Session): void {
    if (this.#readyDone) return;
    this.#readyDone = true;
    this.#resolveReady(session);
  }

  /** @internal report an error that did not stop anything (an action that will be retried, a watch callback). */
  reportError(err: unknown, where: string): void {
    this.#log.error({ err, where }, `${where} failed: ${describeError(err)}`);
    emitSafely(this, 'error', [err], (e, w) =>
      this.#log.error({ err: e }, `${w} failed: ${describeError(e)}`),
    );
  }

  #setState(state: SessionState): void {
    if (this.#state === state) return;
    this.#state = state;
    emitSafely(this, 'state', [state], (err, where) => this.reportError(err, where));
  }

  #fail(err: Error): void {
    if (this.#stopped) return;
    void this.#shutdown().then(() => {
      this.#rejectReady(err);
      this.#rejectDone(err);
    });
  }

  /** Close the session (its ephemeral nodes vanish at once) and stop. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.#stopped) return this.done.catch(() => {});
    await this.#shutdown();
    this.#rejectReady(
      new ZkfarmError(ErrorCodes.STOPPED, 'the supervisor was stopped before a session was ready'),
    );
    this.#resolveDone();
  }

  async #shutdown(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#connectTimer);
    for (const w of this.#watches) w.close();
    this.#watches.clear();
    const attempt = this.#attempt;
    this.#attempt = undefined;
    if (attempt) {
      this.#requestsBefore += attempt.client.requests;
      attempt.session?.end(new ZkfarmError(ErrorCodes.STOPPED, 'the session was closed'));
      attempt.unlisten();
      if (attempt.everConnected && (this.#state === 'connected' || this.#state === 'reconnected')) {
        // Close the session on the server (ephemeral nodes vanish now), waiting at most 2 s for the answer.
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 2000);
          attempt.connection.once('disconnected', () => {
            clearTimeout(t);
            resolve();
          });
          attempt.connection.close();
        });
      } else {
        attempt.connection.close();
      }
    }
    this.#setState('closed');
  }

  /** Call `fn` each time the live session is resumed on a new connection; returns an unsubscribe function. */
  onReconnect(fn: () => void): () => void {
    const listener = (state: SessionState) => {
      if (state === 'reconnected') fn();
    };
    this.on('state', listener);
    return () => this.off('state', listener);
  }

  /** Call `fn` each time a new session starts (after an expiry, too); returns an unsubscribe function. */
  onNewSession(fn: () => void): () => void {
    this.#newSessionListeners.add(fn);
    return () => this.#newSessionListeners.delete(fn);
  }

  #source(): ClientSource {
    return {
      client: () => this.session?.client,
      onNewSession: (rearm) => this.onNewSession(rearm),
      onReconnect: (rearm) => this.onReconnect(rearm),
      onError: (err) => this.reportError(err, 'watch'),
      onClosed: (w) => this.#watches.delete(w),
    };
  }

  /**
   * Watch a node's children across sessions: after a new session it re-lists and reports the difference
   * from the last list it reported.
   */
  watchChildren(
    path: string,
    onChange: (change: ChildrenChange) => void | Promise<void>,
    options?: WatchOptions,
  ): ChildrenWatcher {
    return this.#keep(childrenWatch(this.#source(), path, onChange, options));
  }

  /** Watch a node's data across sessions. */
  watchData(path: string, onChange: (change: DataChange) => void | Promise<void>): DataWatch {
    return this.#keep(new DataWatch(this.#source(), path, onChange));
  }

  /** Track a watch until it is closed (by its owner, then `onClosed` lets it go, or by stop()). */
  #keep<W extends { close(): void }>(w: W): W {
    this.#watches.add(w);
    return w;
  }

  /** Wait for a given state (e.g. `'connected'` after an expiry), up to `timeoutMs`. */
  waitFor(state: SessionState, timeoutMs = 30_000): Promise<void> {
    if (this.#state === state) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onState = (s: SessionState) => {
        if (s !== state) return;
        clearTimeout(t);
        this.off('state', onState);
        resolve();
      };
      const t = setTimeout(() => {
        this.off('state', onState);
        reject(new ZkfarmError(ErrorCodes.WAIT_TIMEOUT, `state ${state} not reached within ${timeoutMs} ms`));
      }, timeoutMs);
      this.on('state', onState);
    });
  }
}

/**
 * Keep a ZooKeeper session alive and run `action` on each new session. See the module comment for the
 * modes; returns the supervisor at once.
 */
export function connect(options: ConnectOptions, action?: Action): Supervisor {
  return new Supervisor(options, action);
}
