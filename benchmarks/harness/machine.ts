/**
 * What a report says about where it ran: the machine, the versions of everything measured, the
 * ZooKeeper server's settings, and how busy the machine was (load average before and after).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ZkServer } from '../../src/zk/index.js';
import { FROM_SOURCE } from './child.js';
import { loadAverage } from './proc.js';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGb: number;
  os: string;
  loadAverageBefore: number[];
  loadAverageAfter?: number[];
}

export interface Versions {
  zkfarm: string;
  commit: string;
  node: string;
  java: string;
  zookeeper: string;
  /** The ZooKeeper client the farm speaks through. */
  zkClient?: string;
  /** Runs before zkfarm had its own client: the library's version. */
  nodeZookeeperClient?: string;
  redis?: string;
  bullmq?: string;
  /** How the measurement processes ran. */
  mode: string;
}

/** The repository root (the directory with zkfarm's package.json), from this module's location. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'zkfarm') return dir;
      } catch {
        // keep looking
      }
    }
    dir = dirname(dir);
  }
  return process.cwd();
}

/** The version of an installed package, or undefined when it is not installed. */
export function packageVersion(name: string): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    let dir = dirname(require.resolve(name));
    for (let i = 0; i < 6; i++) {
      const pkg = join(dir, 'package.json');
      if (existsSync(pkg)) {
        const v = JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string; version?: string };
        if (v.name === name && v.version) return v.version;
      }
      dir = dirname(dir);
    }
  } catch {
    // not installed
  }
  return undefined;
}

export function machineInfo(): MachineInfo {
  const c = cpus();
  return {
    cpuModel: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    memoryGb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${process.platform} ${release()}`,
    loadAverageBefore: loadAverage(),
  };
}

function gitCommit(root: string): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    return dirty ? `${sha} (with uncommitted changes)` : sha;
  } catch {
    return 'unknown';
  }
}

export async function versions(zk: ZkServer): Promise<Versions> {
  const root = repoRoot();
  let zkfarm = '?';
  try {
    zkfarm = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    // keep '?'
  }
  const java = spawnSync(zk.config.java, ['-version'], { encoding: 'utf8' });
  const srvr = await zk.fourLetter('srvr').catch(() => '');
  return {
    zkfarm,
    commit: gitCommit(root),
    node: process.version,
    java: (java.stderr || java.stdout || '').split('\n')[0]?.trim() || 'unknown',
    // Debian's build leaves an unexpanded `-${mvngit.commit.id}` in the version.
    zookeeper:
      /Zookeeper version: ([^,\n]+)/
        .exec(srvr)?.[1]
        ?.replace(/-\$\{[^}]*\}/, '')
        .trim() ?? 'unknown',
    zkClient: "zkfarm's own (src/zk/connection.ts)",
    bullmq: packageVersion('bullmq'),
    mode: FROM_SOURCE ? 'from source (node --import tsx)' : 'compiled JS (dist/)',
  };
}
