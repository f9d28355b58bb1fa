/**
 * Services tests: two `runtime` host processes on one ZooKeeper, a small HTTP server as the service
 * (test/fixtures/service-http.mjs), free ports for its instances, a count of its live copies read from
 * /proc (the truth about "how many run", whatever ZooKeeper says), and waits on its state. The /proc
 * count and the free ports are the benchmark's `services` scenario's, so both count alike.
 */

export { freePorts };

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, liveCopies } from '../../benchmarks/harness/scenarios/services.js';
import { type ServiceState, serviceState } from '../../src/services/index.js';
import { connect, type ZkClient } from '../../src/zk/index.js';
import { REPO_ROOT, type RuntimeProcess, spawnRuntime } from './chaos.js';
import type { Cleanup } from './cleanups.js';
import { until } from './wait.js';

export const FIXTURE = join(REPO_ROOT, 'test', 'fixtures', 'service-http.mjs');

/** The service's command: the fixture, tagged so that its copies can be counted. */
export const serverCmd = (tag: string) =>
  `exec ${JSON.stringify(process.execPath)} ${JSON.stringify(FIXTURE)} ${tag} "$ZKFARM_INSTANCE"`;

/** Live (not zombie) node processes running the fixture with `tag`. */
export function copiesOf(tag: string): number[] {
  return copiesByInstance(tag).map((c) => c.pid);
}

/** The live copies of the fixture with `tag`, with their instance numbers (from /proc). */
export function copiesByInstance(tag: string): { pid: number; instance: number }[] {
  return liveCopies(tag)
    .filter((c) => c.argv.some((a) => a.endsWith('service-http.mjs')))
    .map((c) => ({ pid: c.pid, instance: Number(c.argv[c.argv.indexOf(tag) + 1]) }));
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
  /** In the order of the `start` calls. */
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

/**
 * The usual setup: hosts `alpha` and `beta` started side by side (1 master, 1 worker with shell each,
 * session timeout `sessionTimeout`, `extra` flags), an admin client of its own, and a tag for the
 * service's copies.
 */
export async function twoHosts(
  cleanups: Cleanup[],
  root: string,
  sessionTimeout: number,
  name: string,
  extra: string[] = [],
): Promise<{ farm: Hosts; client: ZkClient; tag: string }> {
  const farm = useHosts(cleanups, root, sessionTimeout);
  await Promise.all([farm.start('alpha', extra), farm.start('beta', extra)]);
  const sup = connect({ connect: root, sessionTimeout: 10_000 });
  cleanups.push(() => sup.stop());
  const client = (await sup.ready).client;
  return { farm, client, tag: `svc-${name}-${process.pid}` };
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
