/**
 * The ZooKeeper test harness: one real standalone server per test file, one chroot per test.
 *
 *   const zk = useZooKeeper();               // at the top level of a test file
 *   test('x', async () => {
 *     const connect = await zk.chroot('x');  // '127.0.0.1:PORT/t-x-…', node created, empty
 *     const client = await zk.rawClient(connect);
 *   });
 *
 * The server starts in a `before` hook and stops in an `after` hook; every raw client is closed in
 * that `after` hook too (closing one earlier yourself is fine).
 *
 * A TLS-only server: give the options as a function (read in the `before` hook, so certificates made
 * by an earlier hook can be used) and the clients' TLS options as another (test/helpers/tls.ts).
 */
import { after, before } from 'node:test';
import type { ZkClient } from '../../src/zk/client.js';
import { fourLetterWord } from '../../src/zk/four-letter.js';
import { openClient } from '../../src/zk/open-client.js';
import { startZkServer, type ZkServer, type ZkServerOptions } from '../../src/zk/server.js';
import type { ZkTlsOptions } from '../../src/zk/transport.js';

export interface RawClientOptions {
  /** @defaultValue 10000 */
  sessionTimeout?: number;
  /** @defaultValue 100 */
  spinDelay?: number;
  /** How long to wait for the first connection. @defaultValue 10000 */
  connectTimeoutMs?: number;
  /** @defaultValue the fixture's client TLS options (none for a plaintext server) */
  tls?: ZkTlsOptions;
}

export interface ZooKeeperFixture {
  /** The running server (throws before the `before` hook ran). */
  readonly server: ZkServer;
  /** A fresh, empty chroot: `127.0.0.1:PORT/t-<name>-<unique>`. */
  chroot(name?: string): Promise<string>;
  /**
   * A client on a session of its own, with no supervisor around it (nothing is retried or re-run for
   * it), closed automatically after the file.
   */
  rawClient(connect: string, opts?: RawClientOptions): Promise<ZkClient>;
}

let counter = 0;

/** Connect a client and wait for its session; closes it and rejects on timeout. */
export function connectRawClient(connect: string, opts: RawClientOptions = {}): Promise<ZkClient> {
  return openClient(connect, {
    sessionTimeout: opts.sessionTimeout ?? 10_000,
    spinDelay: opts.spinDelay ?? 100,
    timeoutMs: opts.connectTimeoutMs ?? 10_000,
    tls: opts.tls,
  });
}

export function useZooKeeper(
  opts: ZkServerOptions | (() => ZkServerOptions | Promise<ZkServerOptions>) = {},
  clientTls?: () => ZkTlsOptions,
): ZooKeeperFixture {
  let server: ZkServer | undefined;
  let admin: ZkClient | undefined;
  const clients = new Set<ZkClient>();

  before(async () => {
    server = await startZkServer(typeof opts === 'function' ? await opts() : opts);
  });
  after(async () => {
    for (const c of clients) c.connection.close();
    clients.clear();
    admin?.connection.close();
    await server?.stop();
  });

  const fixture: ZooKeeperFixture = {
    get server(): ZkServer {
      if (!server) throw new Error('useZooKeeper: the server is not started yet (use it inside a test)');
      return server;
    },
    async chroot(name = 'test') {
      const srv = fixture.server;
      const safe = name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40);
      const node = `/t-${safe}-${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;
      // A test may have killed or restarted the server: on any failure, retry once with a new client.
      for (let attempt = 1; ; attempt++) {
        try {
          admin ??= await connectRawClient(srv.connectString, { tls: clientTls?.() });
          await admin.create(node);
          return `${srv.connectString}${node}`;
        } catch (err) {
          // The first create may have worked with its answer lost: the name is unique, so that is ours.
          if (attempt === 2 && String(err).includes('NODE_EXISTS')) return `${srv.connectString}${node}`;
          admin?.connection.close();
          admin = undefined;
          if (attempt === 2) throw err;
        }
      }
    },
    async rawClient(connect, clientOpts) {
      const client = await connectRawClient(connect, { tls: clientTls?.(), ...clientOpts });
      clients.add(client);
      return client;
    },
  };
  return fixture;
}

/**
 * The paths the server holds watches on for one session (`wchc`), as the session's client sees them:
 * the chroot of `connect` taken off. `sessionId` as our client gives it (16 hex digits).
 */
export async function watchedPaths(connect: string, sessionId: string): Promise<string[]> {
  const slash = connect.indexOf('/');
  const [host, port] = (slash < 0 ? connect : connect.slice(0, slash)).split(',')[0]!.split(':');
  const chroot = slash < 0 ? '' : connect.slice(slash);
  const text = await fourLetterWord(host!, Number(port), 'wchc');
  const mine = BigInt(`0x${sessionId}`);
  const section = text
    .split(/\n(?=0x)/)
    .find((s) => s.startsWith('0x') && BigInt(s.split('\n')[0]!.trim()) === mine);
  return (section ?? '')
    .split('\n')
    .slice(1)
    .map((l) => l.trim())
    .filter((l) => l.startsWith(chroot) && l !== '')
    .map((l) => l.slice(chroot.length) || '/');
}
