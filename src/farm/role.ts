/**
 * What masters and workers share: a name, a session supervisor that re-runs the role's setup on every
 * new session, a lifecycle (`start()` / `stop()`, both safe to call twice), and claiming a name with an
 * ephemeral node without racing a stale node of our own.
 *
 * On SUSPENDED a role keeps going (its session may still be alive; requests wait or time out).
 * On LOST its `session.signal` aborts: everything tied to that session stops at once, and the setup
 * runs again on the next session.
 */
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { describeError, ErrorCodes, ZkfarmError } from '../errors.js';
import { ensureChroot } from '../zk/chroot.js';
import type { Stat } from '../zk/client.js';
import type { ConnectOptions, Logger } from '../zk/connect-options.js';
import { splitConnectString } from '../zk/connect-string.js';
import { isZkError } from '../zk/errors.js';
import type { Session } from '../zk/session.js';
import { connect, fatal, type SessionState, type Supervisor } from '../zk/supervisor.js';
import type { ZkTlsOptions } from '../zk/transport.js';
import { ensureLayout } from './layout.js';
import { checkRoleOptions } from './options.js';
import { validateName } from './protocol.js';

export interface RoleOptions {
  /** Unique name of this role in the farm (letters, digits, '.', '_', '-'). */
  name: string;
  /** ZooKeeper connect string, optionally with a chroot: `h1:2181,h2:2181/farm-a`. @defaultValue 127.0.0.1:2181 */
  connect?: string;
  /** @defaultValue 10000 */
  sessionTimeout?: number;
  /** Digest identity `user:password` for an access-controlled farm. */
  auth?: string;
  /** TLS to ZooKeeper's secureClientPort (PEM contents). @defaultValue plain TCP */
  tls?: ZkTlsOptions;
  /** Give up starting when ZooKeeper cannot be reached within this many ms. @defaultValue Infinity */
  connectTimeout?: number;
  logger?: Logger;
}

export type RoleKind = 'master' | 'worker';
export type RoleState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

export interface RoleInfo {
  name: string;
  kind: RoleKind;
  state: RoleState;
  session: SessionState;
  sessionId?: string;
  sessions: number;
}

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export abstract class Role extends EventEmitter {
  readonly name: string;
  abstract readonly kind: RoleKind;
  protected readonly options: RoleOptions;
  protected readonly log: Logger;
  protected supervisor: Supervisor | undefined;
  #state: RoleState = 'idle';
  #started: Promise<void> | undefined;
  #stopped: Promise<void> | undefined;
  /** Aborted by stop(): ends a start still in progress. */
  readonly #stopping = new AbortController();
  /** Session ids this role held before; a node owned by one of them is our own stale node. */
  protected readonly pastSessions = new Set<string>();

  constructor(options: RoleOptions) {
    super();
    this.name = validateName('role', options.name);
    this.options = { ...options, ...checkRoleOptions(options) };
    this.log = options.logger ?? silent;
    this.on('error', () => {});
  }

  get state(): RoleState {
    return this.#state;
  }

  protected setState(s: RoleState): void {
    this.#state = s;
    this.emit('state', s);
  }

  /** Connect and run the role; resolves once its first session is set up (rejects with ZKFARM_STOPPED when stop() came first). */
  start(): Promise<void> {
    this.#started ??= this.#stopping.signal.aborted
      ? Promise.reject(new ZkfarmError(ErrorCodes.STOPPED, `${this.kind} ${this.name} was stopped`))
      : this.#start();
    return this.#started;
  }

  async #start(): Promise<void> {
    this.setState('starting');
    const opts: ConnectOptions = {
      connect: this.options.connect ?? '127.0.0.1:2181',
      sessionTimeout: this.options.sessionTimeout ?? 10_000,
      auth: this.options.auth,
      tls: this.options.tls,
      connectTimeout: this.options.connectTimeout,
      logger: this.log,
    };
    // stop() during the start ends it: a start may wait for ZooKeeper, or for a stale node of our name.
    const stopping = this.#stopping.signal;
    if (opts.auth && !splitConnectString(opts.connect).chroot) {
      this.log.warn(
        { connect: opts.connect },
        'access control without a chroot: the farm root is ZooKeeper\'s "/", open to anyone, so anyone can ' +
          'remove /master; give the connect string a chroot (host:2181/farm) to close it',
      );
    }
    try {
      await ensureChroot({ ...opts, signal: stopping });
      stopping.throwIfAborted();
      const sup = connect(opts, async (session) => {
        await this.ensureLayout(session);
        await this.onSession(session);
      });
      this.supervisor = sup;
      sup.on('state', (s: SessionState) => {
        this.emit('session', s);
        const id = sup.session?.id;
        if (id) this.pastSessions.add(id);
      });
      sup.done.then(
        () => {},
        (err) => {
          if (this.#state === 'stopping' || this.#state === 'stopped') return;
          this.log.error({ err }, `${this.kind} ${this.name} stopped: ${describeError(err)}`);
          this.setState('failed');
          this.emit('failed', err);
        },
      );
      const endStart = () => void sup.stop();
      stopping.addEventListener('abort', endStart, { once: true });
      try {
        await sup.ready;
      } finally {
        stopping.removeEventListener('abort', endStart);
      }
      this.pastSessions.add(sup.session?.id ?? '');
      if (!stopping.aborted) this.setState('running');
    } catch (err) {
      await this.supervisor?.stop();
      if (stopping.aborted) {
        throw new ZkfarmError(ErrorCodes.STOPPED, `${this.kind} ${this.name} was stopped while starting`, {
          cause: err,
        });
      }
      this.setState('failed');
      throw err;
    }
  }

  /** The nodes every role needs, closed to all but the farm identity with `auth` (layout.ts). */
  protected async ensureLayout(session: Session): Promise<void> {
    await ensureLayout(session, {
      auth: this.options.auth,
      chrooted: Boolean(splitConnectString(this.options.connect ?? '127.0.0.1:2181').chroot),
      deep: this.kind === 'master',
      worker: this.kind === 'worker' ? this.name : undefined,
      log: this.log,
    });
  }

  /** Set the role up on a (new) session. Throwing retries it on the same session unless the error is fatal. */
  protected abstract onSession(session: Session): Promise<void>;

  /** Release what the role holds before the session closes. */
  protected async beforeClose(_options: StopOptions): Promise<void> {}

  /**
   * Stop: release work (drain for workers), close the session (its ephemeral nodes vanish). Idempotent.
   * A role still starting has taken no work yet: its start is ended at once (it may be waiting for
   * ZooKeeper, or for a stale node of its name to expire), so a stop never waits on ZooKeeper to start.
   */
  stop(options: StopOptions = {}): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stopping.abort(new ZkfarmError(ErrorCodes.STOPPED, `${this.kind} ${this.name} is stopping`));
      if (this.#state === 'idle') {
        this.setState('stopped');
        return;
      }
      this.setState('stopping');
      const started = await this.#started!.then(
        () => true,
        () => false,
      );
      if (started) {
        try {
          await this.beforeClose(options);
        } catch (err) {
          this.log.warn(
            { err },
            `${this.kind} ${this.name}: clean-up before close failed: ${describeError(err)}`,
          );
        }
      }
      await this.supervisor?.stop();
      this.setState('stopped');
    })();
    return this.#stopped;
  }

  info(): RoleInfo {
    return {
      name: this.name,
      kind: this.kind,
      state: this.#state,
      session: this.supervisor?.state ?? 'connecting',
      sessionId: this.supervisor?.session?.id,
      sessions: this.supervisor?.sessionCount ?? 0,
    };
  }

  /** The session supervisor (for tools and tests: its state, its session, the requests it sent). */
  get sessionSupervisor(): Supervisor | undefined {
    return this.supervisor;
  }

  /**
   * How long to wait for a node held by another session to go before calling the name taken. ZooKeeper
   * expires sessions in buckets of its tick, so a dead session can outlive its timeout by up to two ticks
   * (4 s with the default tick), and a server that restarts gives restored sessions a full timeout again.
   */
  protected staleNodeWaitMs(): number {
    return (this.options.sessionTimeout ?? 10_000) * 2 + 4000;
  }

  /**
   * Create the ephemeral node `path` that stands for this role, coping with a stale one:
   * - owned by the current session: keep it (a retried setup);
   * - owned by one of our earlier sessions: delete it and create ours;
   * - owned by anyone else: wait up to `waitMs` for it to vanish (a crashed process of ours whose session
   *   has not expired yet looks like this), then fail with ZKFARM_NAME_TAKEN.
   */
  protected async claimEphemeral(
    session: Session,
    path: string,
    data: Buffer,
    waitMs: number,
  ): Promise<void> {
    const c = session.client;
    const deadline = Date.now() + waitMs;
    let wake = () => {};
    const onChange = () => wake();
    for (;;) {
      session.throwIfLost();
      try {
        await c.createEphemeral(path, data);
        return;
      } catch (err) {
        if (!isZkError(err, 'NODE_EXISTS')) throw err;
      }
      let stat: Stat | null;
      try {
        stat = await c.exists(path);
      } catch (err) {
        if (isZkError(err, 'NO_NODE')) continue;
        throw err;
      }
      if (!stat) continue;
      const owner = stat.ephemeralOwner;
      if (owner === session.id) return;
      if (this.pastSessions.has(owner)) {
        this.log.info({ path, owner }, 'removing our own node from an earlier session');
        await c.removeIfExists(path, stat.version);
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw fatal(
          new ZkfarmError(
            ErrorCodes.NAME_TAKEN,
            `the name "${this.name}" is held by another live ${this.kind} (${path}, session ${owner}); ` +
              'give this role another name, or stop the other one',
          ),
        );
      }
      this.log.warn(
        { path, owner, waitMs: left },
        `${path} is held by session ${owner}; waiting for it to expire`,
      );
      const gone = new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        wake = () => {
          clearTimeout(t);
          resolve();
        };
        // One watcher function for the whole wait: the library registers a function once per path.
        c.exists(path, onChange).then(
          (s) => {
            if (!s) wake();
          },
          () => wake(),
        );
      });
      await gone;
    }
  }
}

export interface StopOptions {
  /** Workers: finish running tasks before closing. @defaultValue true */
  drain?: boolean;
  /** Workers: how long to wait for running tasks when draining. @defaultValue 30000 */
  deadlineMs?: number;
}

export const HOST = hostname();
