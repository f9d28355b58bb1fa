/**
 * Services tests: two `runtime` host processes on one ZooKeeper, a small HTTP server as the service
 * (test/fixtures/service-http.mjs), free ports for its instances, a count of its live copies read from
 * /proc (the truth about "how many run", whatever ZooKeeper says), and waits on its state.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ServiceState, serviceState } from '../../src/services/index.js';
import type { ZkClient } from '../../src/zk/index.js';
import { REPO_ROOT, type RuntimeProcess, spawnRuntime } from './chaos.js';
import type { Cleanup } from './cleanups.js';
import { until } from './wait.js';

export const FIXTURE = join(REPO_ROOT, 'test', 'fixtures', 'service-http.mjs');

/** The service's command: the fixture, tagged so that its copies can be counted. */
export const serverCmd = (tag: string) =>
  `exec ${JSON.stringify(process.execPath)} ${JSON.stringify(FIXTURE)} ${tag} "$ZKFARM_INSTANCE"`;

/** A base port with `count` free ports after it (loopback). */
export async function freePorts(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    let ok = true;
    for (let i = 0; i < count && ok; i++) ok = await portFree(base + i);
    if (ok) return base;
  }
  throw new Error('no free ports found');
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Live (not zombie) node processes running the fixture with `tag`. */
export function copiesOf(tag: string): number[] {
  return copiesByInstance(tag).map((c) => c.pid);
}

/** The live copies of the fixture with `tag`, with their instance numbers. */
export function copiesByInstance(tag: string): { pid: number; instance: number }[] {
  const found: { pid: number; instance: number }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (
        !argv[0]?.endsWith('node') ||
        !argv.includes(tag) ||
        !argv.some((a) => a.endsWith('service-http.mjs'))
      )
        continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z')
        found.push({ pid: Number(entry), instance: Number(argv[argv.indexOf(tag) + 1]) });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Ask instance n's port who answers; undefined when nothing does. */
export async function ask(
  port: number,
): Promise<{ instance: number; revision: number; version: string; pid: number } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
    return (await res.json()) as { instance: number; revision: number; version: string; pid: number };
  } catch {
    return undefined;
  }
}

export interface Hosts {
  hosts: RuntimeProcess[];
  workdir: string;
  start(prefix: string, extra?: string[]): Promise<RuntimeProcess>;
}

/** Runtime hosts on `connect`, each with one master and one worker that runs shell commands. */
export function useHosts(cleanups: Cleanup[], connect: string, sessionTimeout: number): Hosts {
  const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-services-'));
  const xdg = join(tmp, 'xdg');
  mkdirSync(xdg);
  const hosts: RuntimeProcess[] = [];
  cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
  return {
    hosts,
    workdir: tmp,
    async start(prefix, extra = []) {
      const p = spawnRuntime(
        [
          '--zk',
          connect,
          '--masters',
          '1',
          '--workers',
          '1',
          '--name-prefix',
          prefix,
          '--allow-shell',
          '--session-timeout',
          String(sessionTimeout),
          '--workdir',
          join(tmp, prefix),
          '--log-level',
          'info',
          ...extra,
        ],
        { xdgDir: xdg },
      );
      hosts.push(p);
      cleanups.push(() => p.stop('SIGKILL', 5000));
      await p.waitForOutput(/runtime: ready/, 90_000);
      return p;
    },
  };
}

/** Wait until the service has `count` healthy instances with endpoints (and matching `extra`). */
export async function waitHealthy(
  client: ZkClient,
  name: string,
  count: number,
  timeoutMs: number,
  extra: (s: ServiceState) => boolean = () => true,
): Promise<ServiceState> {
  let last: ServiceState | undefined;
  await until(
    async () => {
      last = await serviceState(client, name);
      const ready = last.instances.filter((i) => i.run?.state === 'healthy' && i.endpoint);
      return ready.length === count && extra(last);
    },
    timeoutMs,
    `${count} healthy instances of ${name}`,
    100,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last state: ${JSON.stringify(last?.instances)}`);
  });
  return last!;
}
