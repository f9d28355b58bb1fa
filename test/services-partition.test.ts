/**
 * The fence: a worker silently partitioned from ZooKeeper (a blackholed link, its process alive and
 * able to act) stops its instance before the leader can place a replacement elsewhere. Copies of each
 * instance are counted from /proc throughout: never two of one instance at once. When the link heals,
 * the worker finds its session gone and starts nothing (its instance has moved).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createService, serviceState } from '../src/services/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { useFarm } from './helpers/farm.js';
import { copiesByInstance, serverCmd, waitHealthy } from './helpers/services.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper({ tickTime: 500 });
const cleanups = useCleanups();
const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-svc-partition-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir, sessionTimeout: 4000 });

test('a partitioned worker stops its instance before the replacement starts: never two copies of one instance', async () => {
  const root = await zk.chroot('services-partition');
  const { proxy, connect: cutOff } = await farm.proxied(root);
  await farm.master(root, 'm1');
  const a = await farm.worker(cutOff, 'a', { allowShell: true });
  await farm.worker(root, 'b', { allowShell: true });
  const client = await farm.admin(root);
  const tag = `svc-partition-${process.pid}`;
  // A stop grace of 3 s against T = 4 s: the fence starts stopping at T/2 of silence and the leader
  // waits what is left of the bound after the expiry (runner.ts).
  // The program ignores SIGTERM, so each stop takes the whole grace.
  await createService(client, {
    name: 'bg',
    cmd: serverCmd(tag),
    instances: 2,
    stopGraceMs: 3000,
    env: { IGNORE_TERM: '1' },
  });
  const before = await waitHealthy(client, 'bg', 2, 60_000);
  assert.ok(
    before.instances.some((i) => i.run?.worker === 'a'),
    'an instance on the worker to cut off',
  );

  let worst = 0;
  let probing = true;
  const probe = (async () => {
    while (probing) {
      const counts = new Map<number, number>();
      for (const c of copiesByInstance(tag)) counts.set(c.instance, (counts.get(c.instance) ?? 0) + 1);
      worst = Math.max(worst, ...counts.values());
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  cleanups.push(async () => {
    probing = false;
    await probe;
  });

  proxy.blackhole(true);
  await waitHealthy(client, 'bg', 2, 60_000, (s) => s.instances.every((i) => i.run?.worker === 'b'));
  proxy.blackhole(false);
  // The healed worker's session has expired: it gets a new one and runs nothing (its instance moved).
  await until(() => (a.sessionSupervisor?.sessionCount ?? 0) >= 2, 30_000, 'worker a on a new session');
  await new Promise((r) => setTimeout(r, 2000));
  probing = false;
  await probe;
  assert.equal(worst, 1, 'never two copies of one instance');
  assert.equal(copiesByInstance(tag).length, 2);
  assert.ok((await serviceState(client, 'bg')).instances.every((i) => i.run?.worker === 'b'));
});
