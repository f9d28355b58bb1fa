/**
 * Real Apache ZooKeeper servers on demand: one standalone server on loopback, plaintext or TLS-only.
 * Used by the tests, by `runtime` as its embedded ZooKeeper, and by the benchmarks. The parts: where
 * Java and ZooKeeper are (server-install.ts), the settings (server-config.ts), one process and its
 * hygiene (server-process.ts, server-reaper.ts), TLS (server-tls.ts); a small ensemble is ensemble.ts.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { freePorts } from './free-ports.js';
import {
  baseSettings,
  checkPositive,
  javaOptions,
  LOOPBACK,
  stringify,
  type ZkServerSettings,
} from './server-config.js';
import { type FindZooKeeperOptions, findZooKeeper, type ZooKeeperInstall } from './server-install.js';
import { type ZkServer, ZkServerProcess } from './server-process.js';
import { makeTempDir } from './server-reaper.js';
import { probeTls, tlsClasspath, tlsSettings, type ZkServerTlsOptions } from './server-tls.js';
import type { PreparedTls } from './transport.js';

export type { ZkServerConfig } from './server-config.js';
export type { ZkServer } from './server-process.js';
export type { ClientAuth, ZkServerTlsOptions } from './server-tls.js';

export interface ZkServerOptions extends FindZooKeeperOptions, ZkServerSettings {
  /** Client port on 127.0.0.1. @defaultValue a free loopback port */
  port?: number;
  /** Data dir (also holds zoo.cfg and zookeeper.log). @defaultValue a fresh temp dir, removed on stop() */
  dataDir?: string;
  /** Keep a temp data dir on stop(). @defaultValue false */
  keepData?: boolean;
  /** @defaultValue 30000 */
  startTimeoutMs?: number;
  /** Wait this long after SIGTERM before SIGKILL. @defaultValue 5000 */
  stopTimeoutMs?: number;
  /** Serve TLS only, on `port` (see server-tls.ts). @defaultValue plaintext */
  tls?: ZkServerTlsOptions;
}

/** Start one standalone ZooKeeper on 127.0.0.1 and wait until it serves. */
export async function startZkServer(opts: ZkServerOptions = {}): Promise<ZkServer> {
  const install = findZooKeeper(opts);
  checkPositive('port', opts.port);
  const probe = opts.tls ? probeTls(opts.tls) : undefined;
  const attempts = opts.port === undefined ? 3 : 1;
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePorts(1))[0]!;
    const owns = opts.dataDir === undefined;
    const server = standaloneProcess(opts, install, port, probe);
    try {
      await server.start();
      return server;
    } catch (err) {
      const retry = attempt < attempts && server.portConflict();
      await server.kill();
      if (!retry) {
        if (owns && !opts.keepData) await server.stop();
        throw err;
      }
      await server.stop();
    }
  }
}

/** The process of a standalone server on `port` (not started), with its data dir made. */
function standaloneProcess(
  opts: ZkServerOptions,
  install: ZooKeeperInstall,
  port: number,
  probe: PreparedTls | undefined,
): ZkServerProcess {
  const owns = opts.dataDir === undefined;
  // Absolute, as ZooKeeper echoes it in `conf` (which is how we recognise our own server).
  const dataDir =
    opts.dataDir !== undefined ? resolvePath(opts.dataDir) : makeTempDir('zkfarm-zk-', !opts.keepData);
  mkdirSync(dataDir, { recursive: true });
  const base = baseSettings(opts, dataDir, port);
  const settings = {
    ...(opts.tls ? tlsSettings(base, dataDir, opts.tls) : base),
    ...stringify(opts.extraConfig),
  };
  return new ZkServerProcess({
    host: LOOPBACK,
    port,
    dataDir,
    ownsDataDir: owns && !opts.keepData,
    ...(owns && !opts.keepData ? { orphanRemoveDir: dataDir } : {}),
    startTimeoutMs: opts.startTimeoutMs ?? 30_000,
    stopTimeoutMs: opts.stopTimeoutMs ?? 5_000,
    ...(probe ? { probeTls: probe } : {}),
    config: {
      mode: 'standalone',
      java: install.java,
      classpath: opts.tls ? tlsClasspath(install.classpath) : install.classpath,
      mainClass: 'org.apache.zookeeper.server.ZooKeeperServerMain',
      javaOpts: javaOptions(opts.javaOpts),
      configFile: join(dataDir, 'zoo.cfg'),
      settings,
    },
  });
}
