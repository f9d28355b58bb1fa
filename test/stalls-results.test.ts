/**
 * Stall 9, against a real ZooKeeper: a waiter whose task is nowhere must say so instead of waiting for
 * ever. It failed on the code before the farm core was rebuilt on recipes. (Retention by finish time,
 * across result buckets, is tested in results-layout.test.ts.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useCleanups } from './helpers/cleanups.js';
import { useFarm } from './helpers/farm.js';
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
