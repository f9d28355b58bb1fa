/**
 * Services as an operator runs them: a `runtime` host whose config file lists a service (created when
 * the host is ready), then `runtime service ls|status|endpoints|scale|update|restart|rm` from other
 * processes, each checked against what runs. A bad service file is a usage error that names the field.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { serviceState } from '../src/services/index.js';
import { connect } from '../src/zk/index.js';
import { runCli } from './helpers/chaos.js';
import { useCleanups } from './helpers/cleanups.js';
import { ask, copiesOf, freePorts, serverCmd, useHosts } from './helpers/services.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper({ tickTime: 500 });
const cleanups = useCleanups();

test('a service from the config file, then service ls, status, endpoints, scale, update, restart and rm', async () => {
  const root = await zk.chroot('services-cli');
  const farm = useHosts(cleanups, root, 4000);
  const tag = `svc-cli-${process.pid}`;
  const base = await freePorts(3);
  const health = { type: 'http', url: 'http://127.0.0.1:{port}/health', intervalMs: 200 };
  const config = join(farm.workdir, 'farm.yaml');
  writeFileSync(
    config,
    stringify({
      services: [
        { name: 'web', cmd: serverCmd(tag), instances: 2, ports: { http: base }, health, stopGraceMs: 1000 },
      ],
    }),
  );
  const http = await freePorts(1);
  const host = await farm.start('alpha', ['--config', config, '--http', `127.0.0.1:${http}`]);
  await host.waitForOutput(/service web: created from the config file/, 30_000);
  const sup = connect({ connect: root, sessionTimeout: 10_000 });
  cleanups.push(() => sup.stop());
  const client = (await sup.ready).client;
  const cli = (...args: string[]) => runCli(['service', ...args, '--zk', root]);
  const healthy = (n: number) =>
    until(async () => (await serviceState(client, 'web')).healthy === n, 60_000, `${n} healthy`, 100);

  await healthy(2);
  // The dashboard: /metrics and the services panel's data.
  const metrics = await (await fetch(`http://127.0.0.1:${http}/metrics`)).text();
  assert.match(metrics, /^zkfarm_service_instances_desired\{service="web"\} 2$/m);
  assert.match(metrics, /^zkfarm_service_instances_running\{service="web"\} 2$/m);
  assert.match(metrics, /^zkfarm_service_instances_healthy\{service="web"\} 2$/m);
  assert.match(metrics, /^zkfarm_service_restarts\{service="web"\} 0$/m);
  const panel = (await (await fetch(`http://127.0.0.1:${http}/api/services`)).json()) as {
    name: string;
    instances: { run?: { state: string; logDir?: string } }[];
  }[];
  assert.equal(panel[0]!.name, 'web');
  assert.deepEqual(
    panel[0]!.instances.map((i) => i.run?.state),
    ['healthy', 'healthy'],
  );
  assert.ok(panel[0]!.instances.every((i) => i.run?.logDir?.startsWith(farm.workdir)));
  // The reading commands side by side (each is a process of its own), and a bad service file.
  const bad = join(farm.workdir, 'bad.yaml');
  writeFileSync(bad, stringify({ name: 'x', cmd: 'true', instances: -1 }));
  const [ls, status, endpoints, refused] = await Promise.all([
    cli('ls'),
    cli('status', 'web'),
    cli('endpoints', 'web', '--json'),
    cli('create', bad),
  ]);
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /^web\s+2\s+2\s+2\s+0\s+1\s+-$/m);
  assert.match(status.stdout, /instances 2 desired, 2 running, 2 healthy/);
  assert.match(status.stdout, /alpha-worker-1/);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /instances/);
  const eps = JSON.parse(endpoints.stdout) as {
    instance: number;
    ports: { http: number };
  }[];
  assert.deepEqual(
    eps.map((e) => [e.instance, e.ports.http]),
    [
      [0, base],
      [1, base + 1],
    ],
  );

  assert.equal((await cli('scale', 'web', '3')).code, 0);
  await healthy(3);
  assert.equal((await ask(base + 2))?.instance, 2);

  const file = join(farm.workdir, 'web-v2.yaml');
  writeFileSync(file, stringify({ env: { VERSION: '2' } }));
  const upd = await cli('update', 'web', file);
  assert.match(upd.stdout, /revision 2/, upd.stderr);
  await until(
    async () => (await Promise.all([0, 1, 2].map((n) => ask(base + n)))).every((a) => a?.version === '2'),
    60_000,
    'version 2 everywhere',
    200,
  );

  const pids = (await Promise.all([0, 1, 2].map((n) => ask(base + n)))).map((a) => a!.pid);
  assert.match((await cli('restart', 'web')).stdout, /revision 3/);
  await until(
    async () =>
      (await Promise.all([0, 1, 2].map((n) => ask(base + n)))).every((a, n) => a && a.pid !== pids[n]),
    60_000,
    'every instance restarted',
    200,
  );

  // Instance logs: stdout.log under the workdir.
  const logDir = (await serviceState(client, 'web')).instances[0]!.run!.logDir!;
  assert.match(readFileSync(join(logDir, 'stdout.log'), 'utf8'), /listening/);

  assert.equal((await cli('rm', 'web')).code, 0);
  await until(async () => copiesOf(tag).length === 0, 30_000, 'no instance left');
  await until(async () => !(await cli('ls')).stdout.includes('web'), 30_000, 'web gone');
});
