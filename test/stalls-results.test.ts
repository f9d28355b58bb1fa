/**
 * Stall 9, against a real ZooKeeper: retention must remove the oldest results by finish time (not the
 * lowest ids), and a waiter whose task is nowhere must say so instead of waiting for ever. Each failed
 * on the code before the farm core was rebuilt on recipes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encode, PATHS, statusPath } from '../src/farm/protocol.js';
import { sweepStatuses } from '../src/farm/retention.js';
import { useCleanups } from './helpers/cleanups.js';
import { useFarm } from './helpers/farm.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();
const farm = useFarm(cleanups, { workdir: '/nonexistent' });

const status = (worker: string) =>
  encode({ state: 'succeeded', worker, attempts: 1, startedAt: 1, finishedAt: Date.now() });

test('stall 9: retention by count removes the results that finished first, not the lowest ids', async () => {
  const root = await zk.chroot('retention-order');
  const c = await farm.admin(root);
  await c.ensurePath(PATHS.status);
  // Finished in this order: high ids first, then a long task with a low id (its fresh result).
  const finishOrder = [
    'task-0000000005',
    'task-0000000004',
    'task-0000000001',
    'task-0000000002',
    'task-0000000003',
  ];
  for (const id of finishOrder) await c.create(statusPath(id), status('w'));
  const removed = await sweepStatuses(c, { maxCount: 3 });
  assert.equal(removed, 2);
  assert.deepEqual((await c.getChildren(PATHS.status)).sort(), [
    'task-0000000001',
    'task-0000000002',
    'task-0000000003',
  ]);
});

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
