/**
 * The embedded ZooKeeper that `runtime` starts when it is given no `--zk`, and how other commands on
 * the same machine find it.
 *
 * - Data lives in `<workdir>/zookeeper` and is kept across restarts, so queued tasks survive one.
 * - Loopback only; port 2181 when it is free, else any free port.
 * - A lock file `<workdir>/zookeeper/runtime.lock` (our pid, the java pid, the connect string) keeps
 *   a second runtime off the same data dir: two servers on one data dir would corrupt it. A lock whose
 *   pid is dead is taken over, unless its ZooKeeper still answers for this data dir.
 * - A discovery file (discovery.ts) `${XDG_RUNTIME_DIR ?? os.tmpdir()}/zkfarm-<uid>/embedded.json`
 *   ({connect, pid, workdir, dataDir, startedAt}) lets `runtime submit` and `runtime status` in another
 *   terminal find the farm without flags. It is removed on stop (and on process exit); the newest
 *   runtime's file wins when several run.
 * - With `tls`, the server is TLS-only (port 2281 when free) with certificates of its own in
 *   `<workdir>/tls/` (embedded-tls.ts); the lock and the discovery file name the client's files.
 */
import { chmodSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { describeError, ErrorCodes, ZkfarmError } from '../errors.js';
import { fourLetterWord } from '../zk/four-letter.js';
import { startZkServer, type ZkServer } from '../zk/server.js';
import { withJavaOpts } from '../zk/server-config.js';
import { prepareTls, readTlsFiles, type ZkTlsFiles } from '../zk/transport.js';
import { type DiscoveryInfo, discoveryFilePath, type LockInfo, pidAlive, readJson } from './discovery.js';
import {
  type AdmissionFigures,
  EMBEDDED_SERVER_CONFIG,
  embeddedJavaOpts,
  type HeapPlan,
  planEmbeddedHeap,
} from './embedded-heap.js';
import { embeddedCertificates } from './embedded-tls.js';

/**
 * JVM options an operator adds to the embedded server's (env ZKFARM_ZK_JAVA_OPTS, split on whitespace):
 * they come last, so they override the planned heap; a collector named there replaces ours (withJavaOpts).
 */
export function extraJavaOpts(env: NodeJS.ProcessEnv): string[] {
  return (env['ZKFARM_ZK_JAVA_OPTS'] ?? '').split(/\s+/).filter((o) => o !== '');
}

/** The port the embedded ZooKeeper tries first (ZooKeeper's usual one). */
export const EMBEDDED_DEFAULT_PORT = 2181;
/** The port a TLS-only embedded ZooKeeper tries first (the usual secureClientPort). */
export const EMBEDDED_TLS_PORT = 2281;

export interface EmbeddedOptions {
  /** The farm's workdir; the server's data goes in `<workdir>/zookeeper`. */
  workdir: string;
  /** Listen on exactly this port (fail if taken). @defaultValue 2181 if free, else a free port */
  port?: number;
  /** @defaultValue 30000 */
  startTimeoutMs?: number;
  /** Where XDG_RUNTIME_DIR is read from. @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** What the farm admits, which the server's heap is sized for (embedded-heap.ts). @defaultValue the farm's defaults */
  admission?: AdmissionFigures;
  /** Serve TLS only, with certificates of its own in `<workdir>/tls/`. @defaultValue false */
  tls?: boolean;
}

export interface EmbeddedZooKeeper {
  /** `127.0.0.1:<port>` */
  readonly connect: string;
  readonly port: number;
  readonly dataDir: string;
  readonly discoveryFile: string;
  readonly server: ZkServer;
  /** The heap the server got, and how many large tasks it holds (embedded-heap.ts). */
  readonly heap: HeapPlan;
  /** For a TLS-only server: the files a client on this machine connects with. */
  readonly tls: ZkTlsFiles | undefined;
  /** Graceful stop (SIGTERM, then SIGKILL after a few seconds); keeps the data. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL now; keeps the data. */
  kill(): Promise<void>;
}

function writeAtomic(path: string, value: unknown): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const srv = createServer();
    srv.once('error', () => resolvePromise(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolvePromise(true)));
  });
}

function inUse(message: string): ZkfarmError {
  return new ZkfarmError(ErrorCodes.ZK_SERVER_FAILED, message);
}

/** Does the server a lock names still serve this data dir (asked over TLS when it was TLS-only)? */
async function servesDataDir(held: Partial<LockInfo>, dataDir: string): Promise<boolean> {
  const [host, port] = (held.connect ?? '').split(':');
  let tls: ReturnType<typeof prepareTls> | undefined;
  if (held.tls) {
    try {
      tls = prepareTls(readTlsFiles(held.tls));
    } catch {
      // Its certificates are gone: trust the java pid it recorded instead.
      return held.javaPid !== undefined && pidAlive(held.javaPid);
    }
  }
  const conf = await fourLetterWord(host ?? '127.0.0.1', Number(port), 'conf', 1000, tls).catch(() => '');
  return conf.includes(`dataDir=${dataDir}`);
}

/** Take the data dir's lock, or explain who holds it. */
async function acquireLock(lockFile: string, dataDir: string, workdir: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const mine: LockInfo = { pid: process.pid, startedAt: Date.now() };
    try {
      writeFileSync(lockFile, `${JSON.stringify(mine)}\n`, { flag: 'wx', mode: 0o600 });
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw err;
    }
    const held = readJson<Partial<LockInfo>>(lockFile);
    if (held && typeof held.pid === 'number' && pidAlive(held.pid)) {
      const where = held.connect ? `, ZooKeeper at ${held.connect}` : '';
      throw inUse(
        `the workdir ${workdir} is in use by another runtime (pid ${held.pid}${where}): ` +
          `stop it first, or give this one its own --workdir` +
          (held.connect ? `, or join that farm with --zk ${held.connect}` : ''),
      );
    }
    // The runtime that held it is gone. Its ZooKeeper must be gone too, or the data dir would be shared.
    if (held?.connect) {
      if (await servesDataDir(held, dataDir)) {
        throw inUse(
          `a ZooKeeper left by an earlier runtime still serves ${dataDir} at ${held.connect}` +
            (held.javaPid ? ` (java pid ${held.javaPid}: kill ${held.javaPid})` : '') +
            '; stop it first, or give this runtime its own --workdir',
        );
      }
    }
    rmSync(lockFile, { force: true });
  }
  throw inUse(`could not take the lock ${lockFile}: another runtime keeps taking it`);
}

/**
 * Start the embedded ZooKeeper for a workdir and publish where it listens. Throws ZK_NOT_FOUND when
 * Java or ZooKeeper is missing, ZK_SERVER_FAILED when the workdir is in use or the server fails.
 */
export async function startEmbeddedZooKeeper(options: EmbeddedOptions): Promise<EmbeddedZooKeeper> {
  const env = options.env ?? process.env;
  const workdir = resolve(options.workdir);
  const dataDir = join(workdir, 'zookeeper');
  try {
    // Owner-only: the snapshots hold every task and result.
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    chmodSync(dataDir, 0o700);
  } catch (err) {
    throw new ZkfarmError(
      ErrorCodes.WORKDIR_UNWRITABLE,
      `cannot create ${dataDir} for the embedded ZooKeeper: ${describeError(err)}; pass --workdir DIR`,
    );
  }
  const heap = planEmbeddedHeap(options.admission);
  const lockFile = join(dataDir, 'runtime.lock');
  await acquireLock(lockFile, dataDir, workdir);
  const discoveryFile = discoveryFilePath(env);

  const cleanUpFiles = () => {
    const lock = readJson<LockInfo>(lockFile);
    if (lock?.pid === process.pid) rmSync(lockFile, { force: true });
    const disc = readJson<DiscoveryInfo>(discoveryFile);
    if (disc?.pid === process.pid && disc.workdir === workdir) rmSync(discoveryFile, { force: true });
  };
  // A runtime that exits without stop() (a second Ctrl-C, process.exit) still leaves no stale files.
  process.once('exit', cleanUpFiles);

  let server: ZkServer;
  let tls: ZkTlsFiles | undefined;
  try {
    const certs = options.tls ? await embeddedCertificates(workdir) : undefined;
    tls = certs?.client;
    const common = {
      dataDir,
      keepData: true,
      startTimeoutMs: options.startTimeoutMs ?? 30_000,
      javaOpts: withJavaOpts(embeddedJavaOpts(heap), extraJavaOpts(env)),
      extraConfig: EMBEDDED_SERVER_CONFIG,
      ...(certs ? { tls: certs.server } : {}),
    };
    const preferred = certs ? EMBEDDED_TLS_PORT : EMBEDDED_DEFAULT_PORT;
    if (options.port !== undefined) {
      server = await startZkServer({ ...common, port: options.port });
    } else if (await portFree(preferred)) {
      server = await startZkServer({ ...common, port: preferred }).catch((err: unknown) => {
        // Taken between our check and java's bind: any free port will do.
        if (/Address already in use|BindException|another server/.test(describeError(err))) {
          return startZkServer(common);
        }
        throw err;
      });
    } else {
      server = await startZkServer(common);
    }
  } catch (err) {
    cleanUpFiles();
    process.removeListener('exit', cleanUpFiles);
    throw err;
  }

  const connect = server.connectString;
  const lock: LockInfo = { pid: process.pid, javaPid: server.pid, connect, startedAt: Date.now(), tls };
  writeAtomic(lockFile, lock);
  const discovery: DiscoveryInfo = {
    connect,
    pid: process.pid,
    workdir,
    dataDir,
    startedAt: Date.now(),
    tls,
  };
  try {
    mkdirSync(join(discoveryFile, '..'), { recursive: true, mode: 0o700 });
    writeAtomic(discoveryFile, discovery);
  } catch {
    // Discovery is a convenience: clients can still be given --zk.
  }

  let stopping: Promise<void> | undefined;
  const finish = async (how: 'stop' | 'kill') => {
    try {
      await (how === 'stop' ? server.stop() : server.kill());
    } finally {
      cleanUpFiles();
      process.removeListener('exit', cleanUpFiles);
    }
  };
  return {
    connect,
    port: server.port,
    dataDir,
    discoveryFile,
    server,
    heap,
    tls,
    stop() {
      stopping ??= finish('stop');
      return stopping;
    },
    kill() {
      return finish('kill');
    },
  };
}
