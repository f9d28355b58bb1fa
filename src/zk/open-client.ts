/**
 * A ZooKeeper client on a session of its own, without a supervisor: for tools, tests and checks that
 * want one session and nothing re-run (roles use `connect()`, supervisor.ts). Also the one place a
 * connect string becomes a connection.
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { type Acl, ZkClient } from './client.js';
import { checkConnectOptions } from './connect-options.js';
import { parseConnectString, splitConnectString } from './connect-string.js';
import { ZkConnection } from './connection.js';
import type { ConnectionOptions } from './connection-options.js';
import { checkServer } from './server-check.js';
import { prepareTls, watchTransport, type ZkTlsOptions } from './transport.js';

/** A connection (not connected yet) for a connect string `h1:p1,h2:p2[/chroot]`. */
export function createConnection(connect: string, options: ConnectionOptions): ZkConnection {
  const { servers, chroot } = parseConnectString(connect);
  return new ZkConnection(servers, chroot, options);
}

/**
 * A client on a session of its own, without a supervisor: nothing is re-run on a new session and an
 * expired session stays dead. Resolves once connected; rejects with ZKFARM_ZK_UNREACHABLE after
 * `timeoutMs`. Close it with `client.connection.close()`. For tools and tests; roles use `connect()`.
 */
export function openClient(
  connectString: string,
  options: Partial<Omit<ConnectionOptions, 'tls'>> & {
    timeoutMs?: number;
    acl?: readonly Acl[];
    tls?: ZkTlsOptions;
  } = {},
): Promise<ZkClient> {
  checkConnectOptions({ connect: connectString, maxBuffer: options.maxBuffer });
  const sessionTimeout = options.sessionTimeout ?? 10_000;
  const connection = createConnection(connectString, {
    ...options,
    sessionTimeout,
    spinDelay: options.spinDelay ?? 250,
    requestTimeout: options.requestTimeout ?? sessionTimeout,
    tls: options.tls ? prepareTls(options.tls) : undefined,
  });
  const client = new ZkClient(connection, { acl: options.acl });
  const timeoutMs = options.timeoutMs ?? 10_000;
  const connected = new Promise<void>((resolve, reject) => {
    const unwatch = watchTransport(connection, {
      servers: splitConnectString(connectString).hosts.length,
      onFatal: (err) => {
        clearTimeout(timer);
        connection.close();
        reject(err);
      },
    });
    const timer = setTimeout(() => {
      unwatch();
      connection.close();
      reject(
        new ZkfarmError(
          ErrorCodes.ZK_UNREACHABLE,
          `could not reach ZooKeeper at ${connectString} within ${timeoutMs} ms; check that the server runs`,
        ),
      );
    }, timeoutMs);
    connection.once('connected', () => {
      clearTimeout(timer);
      unwatch();
      resolve();
    });
    connection.connect();
  });
  return connected
    .then(() => checkServer(client, connectString))
    .then(
      () => client,
      (err: unknown) => {
        connection.close();
        throw err;
      },
    );
}
