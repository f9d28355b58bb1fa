/**
 * One try at a session for the supervisor (supervisor.ts): a connection and its client, with the
 * supervisor's ACL and credentials, the connection's events turned into the supervisor's calls, and a
 * watch on its transport (a TLS problem that every server shows ends the supervisor instead of being
 * retried for ever). An attempt that connected holds its Session; a lost session ends its attempt, and
 * the supervisor makes a new one.
 */
import { describeError, ErrorCodes, ZkfarmError } from '../errors.js';
import { type Acl, ZkClient } from './client.js';
import type { ConnectOptions, Logger } from './connect-options.js';
import { splitConnectString } from './connect-string.js';
import type { ZkConnection } from './connection.js';
import { createConnection } from './open-client.js';
import type { Session } from './session.js';
import { type PreparedTls, watchTransport } from './transport.js';

export interface Attempt {
  connection: ZkConnection;
  client: ZkClient;
  everConnected: boolean;
  session?: Session;
  /** Remove the supervisor's listeners. */
  unlisten(): void;
  /** Remove the listeners and close the connection. */
  dispose(): void;
}

/** What the supervisor hears of an attempt. */
export interface AttemptEvents {
  connected(): void;
  disconnected(): void;
  expired(why: string): void;
  callbackError(err: unknown, where: string): void;
  /** Retrying cannot help (TLS refused by every server, authentication refused): stop. */
  failed(err: Error): void;
}

/** Make an attempt's connection and client and listen to them; the caller starts it (`connect()`). */
export function newAttempt(
  options: Readonly<ConnectOptions>,
  setup: { tls: PreparedTls | undefined; acl: readonly Acl[]; log: Logger },
  events: AttemptEvents,
): Attempt {
  const { log } = setup;
  const connection = createConnection(options.connect, {
    sessionTimeout: options.sessionTimeout ?? 10_000,
    spinDelay: options.spinDelay ?? 250,
    requestTimeout: options.requestTimeout ?? options.sessionTimeout ?? 10_000,
    maxBuffer: options.maxBuffer,
    tls: setup.tls,
  });
  const client = new ZkClient(connection, { acl: setup.acl });
  if (options.auth) client.addAuth('digest', options.auth);
  const unwatch = watchTransport(connection, {
    servers: splitConnectString(options.connect).hosts.length,
    onFatal: (err) => events.failed(err),
    onRefusal: (err) => log.warn({ err }, err.message),
  });
  const listeners: Array<[string, (...args: unknown[]) => void]> = [
    ['connected', () => events.connected()],
    ['disconnected', () => events.disconnected()],
    ['expired', (why) => events.expired(typeof why === 'string' ? why : 'the session expired')],
    ['callbackError', (err, where) => events.callbackError(err, String(where))],
    ['protocolError', (err) => log.warn({ err }, `zk connection dropped: ${describeError(err)}`)],
    ['reconnectDelay', (ms) => log.debug({ ms }, 'zk: every server tried; backing off')],
    [
      'authenticationFailed',
      () =>
        events.failed(
          new ZkfarmError(
            ErrorCodes.SESSION_LOST,
            'ZooKeeper refused the authentication; check the --auth user:password',
          ),
        ),
    ],
  ];
  for (const [event, fn] of listeners) connection.on(event, fn);
  const attempt: Attempt = {
    connection,
    client,
    everConnected: false,
    unlisten: () => {
      unwatch();
      for (const [event, fn] of listeners) connection.off(event, fn);
    },
    dispose: () => {
      attempt.unlisten();
      connection.close();
    },
  };
  return attempt;
}
