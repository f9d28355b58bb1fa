/**
 * A frozen host (SIGSTOP past its session timeout) on two `runtime` hosts: while it is frozen its
 * instances' processes run on (nothing on that host can act), the leader places replacements on the
 * other host once the frozen worker's session has expired; when it resumes it learns that its session
 * is gone (or finds ZooKeeper silent past its fence deadline) and stops its instances, so that exactly
 * one copy of each instance runs again, and none is started again on the resumed host.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createService, serviceState } from '../src/services/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { copiesByInstance, serverCmd, twoHosts, waitHealthy } from './helpers/services.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper({ tickTime: 500 });
const cleanups = useCleanups();
const SESSION_TIMEOUT = 4000;

test('a host frozen past its session timeout stops its instances when it resumes: one copy of each instance again', async () => {
  const root = await zk.chroot('services-frozen');
  const { farm, client, tag } = await twoHosts(cleanups, root, SESSION_TIMEOUT, 'frozen');
  // No ports: the frozen host's copies and their replacements can run side by side on this one machine.
  await createService(client, { name: 'bg', cmd: serverCmd(tag), instances: 3, stopGraceMs: 1000 });
  const before = await waitHealthy(client, 'bg', 3, 60_000);
  const perWorker = new Map<string, number[]>();
  for (const i of before.instances)
    perWorker.set(i.run!.worker, [...(perWorker.get(i.run!.worker) ?? []), i.instance]);
  const [frozenWorker, frozenInstances] = [...perWorker].sort((a, b) => b[1].length - a[1].length)[0]!;
  const frozen = farm.hosts[frozenWorker.startsWith('alpha') ? 0 : 1]!;
  const other = farm.hosts.find((h) => h !== frozen)!;
  cleanups.push(() => {
    try {
      process.kill(frozen.pid, 'SIGCONT');
    } catch {
      // gone
    }
  });
  // An instance without a health check counts as healthy once spawned, which can be a moment before
  // its shell has exec'd the program that /proc is searched for.
  await until(() => copiesByInstance(tag).length === 3, 15_000, 'three copies running');

  process.kill(frozen.pid, 'SIGSTOP');
  // Replacements start on the other host once the frozen worker's session has expired.
  await waitHealthy(client, 'bg', 3, 60_000, (s) => s.instances.every((i) => i.run?.worker !== frozenWorker));
  // The replacements run beside the frozen host's copies, which nothing on that host can stop.
  await until(
    () => copiesByInstance(tag).length === 3 + frozenInstances.length,
    15_000,
    "the frozen host's copies still running beside their replacements",
  );

  process.kill(frozen.pid, 'SIGCONT');
  await until(() => copiesByInstance(tag).length === 3, 15_000, 'the resumed host stopped its copies');
  const counts = new Map<number, number>();
  for (const c of copiesByInstance(tag)) counts.set(c.instance, (counts.get(c.instance) ?? 0) + 1);
  assert.deepEqual(
    [...counts].sort(),
    [
      [0, 1],
      [1, 1],
      [2, 1],
    ],
    'one copy of each instance',
  );
  // The resumed host starts nothing again (its placements moved away), and nothing else changes.
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(copiesByInstance(tag).length, 3);
  const after = await serviceState(client, 'bg');
  assert.equal(after.healthy, 3);
  assert.ok(after.instances.every((i) => i.run?.worker !== frozenWorker));
  assert.match(frozen.stdout(), /stopping the service instance|session/, 'the resumed host says why');
  void other;
});
