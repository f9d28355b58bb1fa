/**
 * The ZooKeeper test harness: one real standalone server per test file, one chroot per test.
 *
 *   const zk = useZooKeeper();               // at the top level of a test file
 *   test('x', async () => {
 *     const connect = await zk.chroot('x');  // '127.0.0.1:PORT/t-x-…', node created, empty
 *     const raw = await zk.rawClient(connect);
 *   });
 *
 * The server starts in a `before` hook and stops in an `after` hook; every raw client is closed in
 * that `after` hook too (closing one earlier yourself is fine).
 */
import { after, before } from 'node:test';
import zookeeper from 'node-zookeeper-client';
import { startZkServer, type ZkServer, type ZkServerOptions } from '../../src/zk/server.js';

export interface RawClientOptions {
  /** @defaultValue 10000 */
  sessionTimeout?: number;
  /** @defaultValue 100 */
  spinDelay?: number;
  /** How long to wait for `connected`. @defaultValue 10000 */
  connectTimeoutMs?: number;
}

export interface ZooKeeperFixture {
  /** The running server (throws before the `before` hook ran). */
  readonly server: ZkServer;
  /** A fresh, empty chroot: `127.0.0.1:PORT/t-<name>-<unique>`. */
  chroot(name?: string): Promise<string>;
  /** A connected node-zookeeper-client client, closed automatically after the file. */
  rawClient(connect: string, opts?: RawClientOptions): Promise<zookeeper.Client>;
}

let counter = 0;

/** Connect a raw client and wait for `connected`; closes it and rejects on timeout. */
export function connectRawClient(connect: string, opts: RawClientOptions = {}): Promise<zookeeper.Client> {
  const client = zookeeper.createClient(connect, {
    sessionTimeout: opts.sessionTimeout ?? 10_000,
    spinDelay: opts.spinDelay ?? 100,
    retries: 0,
  });
  const timeoutMs = opts.connectTimeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.close();
      reject(new Error(`raw client: no connection to ${connect} within ${timeoutMs} ms`));
    }, timeoutMs);
    client.once('connected', () => {
      clearTimeout(timer);
      resolve(client);
    });
    client.connect();
  });
}

/** Create a persistent node; the library has no request timeout, so we add one. */
function createNode(client: zookeeper.Client, path: string, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`create ${path}: no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    client.create(path, (err) => {
      clearTimeout(timer);
      if (err) reject(new Error(`create ${path}: ${String(err)}`));
      else resolve();
    });
  });
}

export function useZooKeeper(opts: ZkServerOptions = {}): ZooKeeperFixture {
  let server: ZkServer | undefined;
  let admin: zookeeper.Client | undefined;
  const clients = new Set<zookeeper.Client>();

  before(async () => {
    server = await startZkServer(opts);
  });
  after(async () => {
    for (const c of clients) c.close();
    clients.clear();
    admin?.close();
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
          admin ??= await connectRawClient(srv.connectString);
          await createNode(admin, node, 10_000);
          return `${srv.connectString}${node}`;
        } catch (err) {
          // The first create may have worked with its answer lost: the name is unique, so that is ours.
          if (attempt === 2 && String(err).includes('NODE_EXISTS')) return `${srv.connectString}${node}`;
          admin?.close();
          admin = undefined;
          if (attempt === 2) throw err;
        }
      }
    },
    async rawClient(connect, clientOpts) {
      const client = await connectRawClient(connect, clientOpts);
      clients.add(client);
      return client;
    },
  };
  return fixture;
}
