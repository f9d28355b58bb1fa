/**
 * Stall 9, against a real ZooKeeper: a waiter whose task is nowhere must say so instead of waiting for
 * ever. It failed on the code before the farm core was rebuilt on recipes. (Retention by finish time,
 * across result buckets, is tested in results-layout.test.ts.) And what checking on many tasks costs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PATHS, statusPath } from '../src/farm/protocol.js';
import { useCleanups } from './helpers/cleanups.js';
import { useFarm } from './helpers/farm.js';
import { locateAll, NEVER_WAS } from './helpers/locator.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();
const farm = useFarm(cleanups, { workdir: '/nonexistent' });

test('stall 9: a waiter whose task is neither queued, assigned nor finished is told so', async () => {
  const root = await zk.chroot('nowhere');
  const sub = await farm.submitter(root);
  const outcome = await Promise.race([
    sub.waitFor('task-0000000077').then(
      () => 'resolved',
      (err: unknown) => err as Error & { code?: string },
    ),
    new Promise<'still waiting'>((r) => setTimeout(() => r('still waiting'), 30_000).unref()),
  ]);
  assert.notEqual(outcome, 'still waiting', 'the waiter must not wait for ever');
  assert.notEqual(outcome, 'resolved');
  const err = outcome as Error & { code?: string };
  assert.equal(err.code, 'ZKFARM_TASK_NOT_FOUND');
  assert.match(err.message, /task-0000000077 is neither queued, assigned nor finished/);
});

test('checking on many finished tasks whose waiters have not been told yet reads their results in bulk', async () => {
  const root = await zk.chroot('lagging');
  const admin = await farm.admin(root);
  // 400 results in their bucket, and three workers with nothing assigned: a waiter lagging a busy farm.
  const finished = Array.from({ length: 400 }, (_, i) => `task-${String(1000 + i).padStart(10, '0')}`);
  await admin.ensurePath(statusPath(finished[0]!).replace(/\/[^/]+$/, ''));
  for (const w of ['w1', 'w2', 'w3']) await admin.ensurePath(`${PATHS.assign}/${w}`);
  await admin.ensurePath(PATHS.tasks);
  const tx = admin.transaction();
  for (const id of finished) tx.create(statusPath(id), '{"state":"succeeded"}');
  await tx.commit();
  const { nowhere, requests: used } = await locateAll(admin, finished, cleanups);
  assert.deepEqual(nowhere, [NEVER_WAS]);
  // Two checks (a task is nowhere after two). An `exists` on each place for each finished task was
  // ~2,400 per check here (six places each).
  assert.ok(used < 100, `${used} requests for two checks of 401 tasks`);
});
