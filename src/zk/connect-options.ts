/**
 * What `connect()` (the session supervisor) and `openClient()` take, and the check that refuses a bad
 * option before anything connects (ZKFARM_INVALID_ARGUMENT naming it).
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';
import type { Acl } from './client.js';
import { parseConnectString } from './connect-string.js';
import type { ZkTlsOptions } from './transport.js';

/** The subset of a pino logger the zk layer uses. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export interface ConnectOptions {
  /** Connect string, e.g. `127.0.0.1:2181` or `h1:2181,h2:2181,h3:2181/farm-a` (chroot suffix allowed). */
  connect: string;
  /** Requested session timeout in ms; the server may negotiate it. @defaultValue 10000 */
  sessionTimeout?: number;
  /** Timeout of each request in ms. @defaultValue the session timeout */
  requestTimeout?: number;
  /**
   * Give up when no session could be made within this many ms of starting (or of losing the last one):
   * `done` rejects with `ZKFARM_ZK_UNREACHABLE`. @defaultValue Infinity (keep trying)
   */
  connectTimeout?: number;
  /** Delay between connection attempts in ms. @defaultValue 250 */
  spinDelay?: number;
  /** Digest identity `user:password`; nodes are then created readable and writable by it alone. */
  auth?: string;
  /** ACL for created nodes. @defaultValue the `auth` identity's ACL when `auth` is set, else open */
  acl?: Acl[];
  /** Speak TLS to the servers' secureClientPort (see transport.ts). @defaultValue plain TCP */
  tls?: ZkTlsOptions;
  /** Stops the supervisor when aborted. */
  signal?: AbortSignal;
  /** Pause before re-running an action that threw, doubled each time up to 5 s. @defaultValue 200 */
  retryDelay?: number;
  /**
   * The servers' jute.maxbuffer: larger requests are refused locally (BAD_ARGUMENTS) instead of being
   * sent for the server to drop the connection. @defaultValue 0xfffff (ZooKeeper's default)
   */
  maxBuffer?: number;
  logger?: Logger;
}

/** Throw ZKFARM_INVALID_ARGUMENT naming the first option that makes no sense. */
export function checkConnectOptions(o: ConnectOptions): void {
  const bad = (msg: string) => new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, msg);
  parseConnectString(o?.connect);
  for (const key of ['sessionTimeout', 'requestTimeout', 'spinDelay', 'retryDelay', 'maxBuffer'] as const) {
    const v = o[key];
    if (v !== undefined && (!Number.isFinite(v) || v <= 0))
      throw bad(
        `${key}: expected a positive number${key === 'maxBuffer' ? ' of bytes' : ' of ms'}, got ${v}`,
      );
  }
  if (o.auth !== undefined && !/^[^:]+:.+$/.test(o.auth)) throw bad('auth: expected "user:password"');
}
