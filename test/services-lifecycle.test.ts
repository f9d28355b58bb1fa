/**
 * A service's life on two `runtime` hosts with real processes (one pair of hosts for both tests, each
 * test with services of its own):
 * - restarts: an instance that exits (SIGKILL of its process) is restarted on its worker, the others
 *   untouched; a failing health check restarts only that instance, which is healthy again once the
 *   check passes; an instance that crash-loops is failed on its worker after `restart.maxRestarts`,
 *   moved to the other worker, failed there too, and then marked failed for good, while the other
 *   instances of its service keep running;
 * - rolling updates: a change of the service's settings reaches every instance one at a time, with at
 *   least 2 of 3 answering throughout (probed all along); a bad update (the new version crashes at
 *   once) stops after its first instance, says why in the service's status, and leaves the other 2
 *   running the old version.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createService, serviceState, updateService } from '../src/services/index.js';
import { endpointsDir, type RunRecord, runningDir, servicePath } from '../src/services/model.js';
import type { ZkClient } from '../src/zk/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { ask, freePorts, serverCmd, twoHosts, waitHealthy } from './helpers/services.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper({ tickTime: 500 });
const cleanups = useCleanups();
// Both tests' services at once (3 + 3 + 3 instances) fit with room to spare; started by the first
// test that asks (the ZooKeeper fixture starts its server for the tests).
let hosts: ReturnType<typeof twoHosts> | undefined;
const sharedHosts = async () => {
  hosts ??= zk
    .chroot('services-lifecycle')
    .then((root) => twoHosts(cleanups, root, 4000, 'lifecycle', ['--capacity', '8']));
  return hosts;
};

const health = {
  type: 'http' as const,
  url: 'http://127.0.0.1:{port}/health',
  intervalMs: 200,
  timeoutMs: 1000,
  unhealthyThreshold: 2,
  startPeriodMs: 2000,
};

/**
 * After every change to an instance's record or endpoint, read both in one multiRead (one snapshot):
 * a record that says healthy must have its endpoint, and an endpoint must have a record that says
 * healthy. Returns what broke that, and how many snapshots showed a healthy instance with its endpoint.
 */
async function watchConsistency(client: ZkClient, service: string) {
  const broken: string[] = [];
  let serving = 0;
  const check = async (n: string) => {
    const [run, ep] = await client.getDataMany([
      `${runningDir(service)}/${n}`,
      `${endpointsDir(service)}/${n}`,
    ]);
    const state = run instanceof Error ? undefined : (JSON.parse(run!.data.toString()) as RunRecord).state;
    const hasEndpoint = !(ep instanceof Error);
    if ((state === 'healthy') !== hasEndpoint)
      broken.push(`instance ${n}: ${state ?? 'no record'}, endpoint ${hasEndpoint}`);
    else if (hasEndpoint) serving++;
  };
  const prefixes = [`${runningDir(service)}/`, `${endpointsDir(service)}/`];
  const remove = await client.addWatch(servicePath(service), 'persistentRecursive', (_type, path) => {
    const prefix = prefixes.find((x) => path.startsWith(x));
    if (prefix) void check(path.slice(prefix.length)).catch(() => {});
  });
  cleanups.push(() => remove());
  return { broken, serving: () => serving };
}

test('exits restart with backoff, a failing health check restarts only its instance, a crash loop fails one instance and spares the rest', async () => {
  const { farm, client } = await sharedHosts();
  const tag = `svc-restart-${process.pid}`;
  const base = await freePorts(3);
  const consistency = await watchConsistency(client, 'web');
  const unhealthy = (n: number) => join(farm.workdir, `unhealthy-${n}`);
  await createService(client, {
    name: 'web',
    cmd: serverCmd(tag),
    instances: 3,
    ports: { http: base },
    env: { FAIL_HEALTH_FILE: join(farm.workdir, 'unhealthy-{instance}') },
    health,
    restart: { initialDelayMs: 100, maxDelayMs: 1000 },
    stopGraceMs: 1000,
  });
  await waitHealthy(client, 'web', 3, 60_000);
  const pids = await Promise.all([0, 1, 2].map(async (n) => (await ask(base + n))!.pid));

  // An exit: instance 0's process is killed; it comes back on its worker with a new process.
  process.kill(pids[0]!, 'SIGKILL');
  const afterExit = await waitHealthy(
    client,
    'web',
    3,
    30_000,
    (s) => (s.instances[0]!.run?.restarts ?? 0) >= 1,
  );
  assert.equal(afterExit.instances[0]!.run!.restarts, 1);
  const pid0 = (await ask(base))!.pid;
  assert.notEqual(pid0, pids[0]);
  assert.equal((await ask(base + 1))!.pid, pids[1], 'instance 1 untouched');
  assert.equal((await ask(base + 2))!.pid, pids[2], 'instance 2 untouched');

  // A failing health check: only instance 2 is restarted.
  writeFileSync(unhealthy(2), 'x');
  await until(
    async () => ((await serviceState(client, 'web')).instances[2]!.run?.restarts ?? 0) >= 1,
    30_000,
    'instance 2 restarted for its health',
  );
  rmSync(unhealthy(2));
  const afterHealth = await waitHealthy(client, 'web', 3, 30_000);
  assert.match(afterHealth.instances[2]!.run!.lastExit ?? '', /health check failed/);
  assert.notEqual((await ask(base + 2))!.pid, pids[2], 'instance 2 runs a new process');
  assert.equal((await ask(base))!.pid, pid0, 'instance 0 untouched by the health restart');
  assert.equal((await ask(base + 1))!.pid, pids[1], 'instance 1 untouched by the health restart');
  // Through starts, an exit and an unhealthy run, a reader never saw the record and the endpoint disagree.
  assert.deepEqual(consistency.broken, [], 'record and endpoint written together');
  assert.ok(consistency.serving() >= 3, `${consistency.serving()} snapshots of a serving instance`);

  // A crash loop: instance 1 of another service exits at once, every time.
  const base2 = await freePorts(3);
  await createService(client, {
    name: 'crashy',
    cmd: serverCmd(tag),
    instances: 3,
    ports: { http: base2 },
    env: { CRASH_INSTANCE: '1' },
    health,
    restart: { initialDelayMs: 50, maxDelayMs: 400, maxRestarts: 3, windowMs: 60_000, maxWorkers: 2 },
    stopGraceMs: 1000,
  });
  let seen = new Set<string>();
  await until(
    async () => {
      const s = await serviceState(client, 'crashy');
      const one = s.instances.find((i) => i.instance === 1);
      if (one?.run) seen.add(`${one.run.worker}:${one.run.state}`);
      return one?.placement?.state === 'failed';
    },
    60_000,
    'instance 1 of crashy failed for good',
  );
  const crashy = await waitHealthy(client, 'crashy', 2, 30_000);
  const one = crashy.instances.find((i) => i.instance === 1)!;
  assert.match(one.placement!.reason ?? '', /crash loop: ended 4 times/);
  assert.equal(one.placement!.failedOn.length, 2, `failed on both workers: ${one.placement!.failedOn}`);
  assert.ok(
    [...seen].some((s) => s.endsWith(':backoff')),
    `restarted with backoff in between: ${[...seen]}`,
  );
  assert.equal(one.endpoint, undefined, 'no endpoint for the failed instance');
  seen = new Set();
  // The other services' instances kept running throughout.
  assert.equal((await ask(base))!.pid, pid0);
  assert.equal((await ask(base + 1))!.pid, pids[1]);
  assert.equal(await ask(base2 + 1), undefined);
  assert.ok(await ask(base2));
  assert.ok(await ask(base2 + 2));
});

test('a rolling update keeps 2 of 3 answering; a bad update stops after one instance and leaves 2 on the old version', async () => {
  const { client } = await sharedHosts();
  const tag = `svc-update-${process.pid}`;
  const base = await freePorts(3);
  await createService(client, {
    name: 'site',
    cmd: serverCmd(tag),
    instances: 3,
    ports: { http: base },
    env: { VERSION: '1' },
    health: {
      type: 'http',
      url: 'http://127.0.0.1:{port}/health',
      intervalMs: 200,
      timeoutMs: 1000,
      startPeriodMs: 3000,
    },
    restart: { initialDelayMs: 50, maxDelayMs: 200, maxRestarts: 2 },
    stopGraceMs: 1000,
  });
  await waitHealthy(client, 'site', 3, 60_000);

  const versions = async () => Promise.all([0, 1, 2].map(async (n) => (await ask(base + n))?.version));
  let fewest = 3;
  let probing = true;
  const probe = (async () => {
    while (probing) {
      fewest = Math.min(fewest, (await versions()).filter((v) => v !== undefined).length);
      await new Promise((r) => setTimeout(r, 30));
    }
  })();
  cleanups.push(async () => {
    probing = false;
    await probe;
  });

  const v2 = await updateService(client, 'site', { env: { VERSION: '2' } });
  assert.equal(v2.revision, 2);
  await until(async () => (await versions()).every((v) => v === '2'), 90_000, 'every instance on version 2');
  await until(
    async () => (await serviceState(client, 'site')).status?.rollout?.state === 'done',
    30_000,
    'the rollout done',
  );
  assert.ok(fewest >= 2, `at least 2 of 3 answered throughout the update; once only ${fewest}`);

  // A bad update: version 3 crashes at once.
  probing = false;
  await probe;
  await updateService(client, 'site', { env: { VERSION: '3', CRASH_ALL: '1' } });
  await until(
    async () => (await serviceState(client, 'site')).status?.rollout?.state === 'failed',
    60_000,
    'the bad rollout failed',
  );
  const s = await serviceState(client, 'site');
  assert.equal(s.status!.rollout!.revision, 3);
  assert.match(s.status!.rollout!.reason ?? '', /revision 3 failed/);
  const left = (await versions()).filter((v) => v !== undefined);
  assert.deepEqual(left, ['2', '2'], 'two instances still answer, on version 2');
  assert.equal(
    s.instances.filter((i) => i.placement?.revision === 3).length,
    1,
    'only one instance tried version 3',
  );
  // It stays stopped: nothing else is updated later.
  await new Promise((r) => setTimeout(r, 2000));
  assert.deepEqual(
    (await versions()).filter((v) => v !== undefined),
    ['2', '2'],
  );
  assert.equal(
    (await serviceState(client, 'site')).instances.filter((i) => i.placement?.revision === 3).length,
    1,
  );

  // A fixed update goes on from there: every instance ends on version 4.
  await updateService(client, 'site', { env: { VERSION: '4' } });
  await until(async () => (await versions()).every((v) => v === '4'), 90_000, 'every instance on version 4');
});
