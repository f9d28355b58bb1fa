/**
 * What one connection (connection.ts) takes, and the limits it applies by default: the servers'
 * jute.maxbuffer for requests, a sanity bound for answers.
 */
import type { PreparedTls } from './transport.js';

/** ZooKeeper's default jute.maxbuffer: the largest request frame a server takes (bytes). */
export const DEFAULT_MAX_BUFFER = 0xfffff;
/** Largest answer frame accepted by default (bytes): see `ConnectionOptions.maxAnswerBytes`. */
export const DEFAULT_MAX_ANSWER_BYTES = 64 * 1024 * 1024;

export interface ConnectionOptions {
  /** Requested session timeout (ms); the server may change it within its bounds. */
  sessionTimeout: number;
  /** Pause after the first round of servers (ms); later rounds back off from it (servers.ts). */
  spinDelay: number;
  /** How long a request may wait for its answer (ms). */
  requestTimeout: number;
  /**
   * Resume this session instead of starting a new one (the Java client's `sessionId, sessionPasswd`
   * constructor, Kazoo's `client_id`): the server refuses it with `expired` when it has ended.
   */
  session?: { id: string; password: Buffer };
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
  /** Speak TLS (see transport.ts); problems it finds are emitted as `transport` events. */
  tls?: PreparedTls;
}
