/**
 * How client commands on this machine find a running `runtime`'s embedded ZooKeeper: the discovery file
 * `${XDG_RUNTIME_DIR ?? os.tmpdir()}/zkfarm-<uid>/embedded.json` and the lock file in its data dir.
 * Apart from embedded.ts (the server's launcher) so that a short-lived command such as `runtime submit`
 * does not load the launcher, the config file's parsers or the heap planner to read one small file.
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ZkTlsFiles } from '../zk/transport.js';

/** Where a client connects when nothing says otherwise (ZooKeeper's usual port on loopback). */
export const DEFAULT_CONNECT = '127.0.0.1:2181';

/** What the discovery file holds. */
export interface DiscoveryInfo {
  connect: string;
  pid: number;
  workdir: string;
  dataDir?: string;
  startedAt: number;
  /** Present when the server is TLS-only: the client's certificate files. */
  tls?: ZkTlsFiles;
}

/** What the lock file `<workdir>/zookeeper/runtime.lock` holds. */
export interface LockInfo {
  pid: number;
  javaPid?: number;
  connect?: string;
  startedAt: number;
  tls?: ZkTlsFiles;
}

function uid(): string {
  return typeof process.getuid === 'function' ? String(process.getuid()) : 'user';
}

/** `${XDG_RUNTIME_DIR ?? os.tmpdir()}/zkfarm-<uid>/embedded.json` */
export function discoveryFilePath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env['XDG_RUNTIME_DIR'] || tmpdir();
  return join(base, `zkfarm-${uid()}`, 'embedded.json');
}

/** Is a process with this pid alive (ours or another user's)? */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

/** A JSON file's content, or undefined when it is missing or not JSON. */
export function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** The pid of the java process of the embedded ZooKeeper a runtime on `workdir` runs (its lock file), if any. */
export function embeddedJavaPid(workdir: string): number | undefined {
  return readJson<Partial<LockInfo>>(join(workdir, 'zookeeper', 'runtime.lock'))?.javaPid;
}

/** The discovery file's content when it names a live runtime, else undefined. */
export function readDiscovery(env: NodeJS.ProcessEnv = process.env): DiscoveryInfo | undefined {
  const info = readJson<Partial<DiscoveryInfo>>(discoveryFilePath(env));
  if (!info || typeof info.connect !== 'string' || typeof info.pid !== 'number') return undefined;
  if (!pidAlive(info.pid)) return undefined;
  return info as DiscoveryInfo;
}

export type ConnectSource = 'flag' | 'env' | 'embedded' | 'default';

/**
 * Where a client command should connect: `--zk` > env `ZKFARM_ZK` > the embedded ZooKeeper of a running
 * `runtime` on this machine (its discovery file, when its pid is alive) > `127.0.0.1:2181`.
 */
export function discoverConnect(
  flag?: string,
  env: NodeJS.ProcessEnv = process.env,
): { connect: string; source: ConnectSource; tls?: ZkTlsFiles } {
  if (flag !== undefined && flag !== '') return { connect: flag, source: 'flag' };
  const fromEnv = env['ZKFARM_ZK'];
  if (fromEnv !== undefined && fromEnv.trim() !== '') return { connect: fromEnv.trim(), source: 'env' };
  const found = readDiscovery(env);
  // A TLS-only embedded server comes with the client files to reach it.
  if (found) return { connect: found.connect, source: 'embedded', ...(found.tls ? { tls: found.tls } : {}) };
  return { connect: DEFAULT_CONNECT, source: 'default' };
}

/** A few words on where a connect string came from, for messages. */
export function describeSource(source: ConnectSource): string {
  switch (source) {
    case 'flag':
      return 'from --zk';
    case 'env':
      return 'from ZKFARM_ZK';
    case 'embedded':
      return 'the embedded ZooKeeper of a running `runtime` on this machine';
    default:
      return 'the default: no --zk, no ZKFARM_ZK, and no running `runtime` found on this machine';
  }
}
