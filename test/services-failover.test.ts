/**
 * A service of 3 instances of a small HTTP server across two `runtime` host processes: all healthy;
 * the host that runs two of them is SIGKILLed, and the replacements are healthy on the other host. The
 * instances' live copies are counted from /proc throughout: never more than 3 (an instance dies with
 * the host that supervises it, and a replacement waits for its fence). The failover time (SIGKILL to
 * 3 healthy endpoints again) is printed for benchmarks/README.md (`services` scenario).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createService, serviceState } from '../src/services/index.js';
import { connect } from '../src/zk/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { ask, copiesOf, freePorts, serverCmd, useHosts, waitHealthy } from './helpers/services.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper({ tickTime: 500 });
const cleanups = useCleanups();
const SESSION_TIMEOUT = 4000;

test('3 instances across two hosts: the host with two is SIGKILLed, replacements are healthy on the other, never more than 3 run', async () => {
  const root = await zk.chroot('services-failover');
  const farm = useHosts(cleanups, root, SESSION_TIMEOUT);
  await farm.start('alpha');
  await farm.start('beta');
  const sup = connect({ connect: root, sessionTimeout: 10_000 });
  cleanups.push(() => sup.stop());
  const client = (await sup.ready).client;

  const tag = `svc-failover-${process.pid}`;
  const base = await freePorts(3);
  await createService(client, {
    name: 'web',
    cmd: serverCmd(tag),
    instances: 3,
    ports: { http: base },
    health: {
      type: 'http',
      url: 'http://127.0.0.1:{port}/health',
      intervalMs: 200,
      timeoutMs: 1000,
      startPeriodMs: 5000,
    },
    stopGraceMs: 1000,
  });
  // Count the copies all along: the fence must never let a fourth run.
  let most = 0;
  let probing = true;
  const probe = (async () => {
    while (probing) {
      most = Math.max(most, copiesOf(tag).length);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  cleanups.push(async () => {
    probing = false;
    await probe;
  });

  const before = await waitHealthy(client, 'web', 3, 60_000);
  const byWorker = new Map<string, number>();
  for (const i of before.instances) byWorker.set(i.run!.worker, (byWorker.get(i.run!.worker) ?? 0) + 1);
  const [busiest] = [...byWorker].sort((a, b) => b[1] - a[1])[0]!;
  assert.equal(byWorker.get(busiest), 2, `two instances on one worker: ${JSON.stringify([...byWorker])}`);
  for (let n = 0; n < 3; n++) assert.equal((await ask(base + n))?.instance, n, `instance ${n} answers`);

  const victim = farm.hosts.find((h) => busiest.startsWith(h === farm.hosts[0] ? 'alpha' : 'beta'))!;
  const survivor = farm.hosts.find((h) => h !== victim)!;
  const killedAt = performance.now();
  await victim.stop('SIGKILL', 5000);
  // The instances of the killed host die with it (their guard reads end of file): no orphan answers.
  await until(() => copiesOf(tag).length === 1, 5000, "the killed host's instances gone");
  const after = await waitHealthy(client, 'web', 3, 60_000, (s) =>
    s.instances.every((i) => i.run?.worker !== busiest),
  );
  const failoverMs = performance.now() - killedAt;
  console.log(
    `services failover: SIGKILL to 3 healthy endpoints in ${Math.round(failoverMs)} ms (session timeout ${SESSION_TIMEOUT} ms)`,
  );
  assert.equal(new Set(after.instances.map((i) => i.run!.worker)).size, 1, 'all on the surviving host');
  for (let n = 0; n < 3; n++) assert.equal((await ask(base + n))?.instance, n, `instance ${n} answers again`);
  probing = false;
  await probe;
  assert.ok(most <= 3, `at most 3 copies ever ran; saw ${most}`);
  assert.equal(copiesOf(tag).length, 3);

  // Stopping the surviving host stops its instances.
  await survivor.stop('SIGTERM', 30_000);
  await until(() => copiesOf(tag).length === 0, 10_000, 'no instance left after the host stopped');
  assert.equal((await serviceState(client, 'web')).running, 0);
});
