/**
 * Named queues and priorities against a real ZooKeeper, in one process: routing to the workers that
 * serve a queue, weights between queues, priorities within one, and what the leader says waits.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Handler } from '../src/exec/index.js';
import { type MasterInfo, PATHS, type Task } from '../src/farm/protocol.js';
import { QueueAdmin } from '../src/farm/queue-admin.js';
import type { QueueWait } from '../src/farm/queue-view.js';
import { CreateMode } from '../src/zk/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { useFarm } from './helpers/farm.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();
const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-queues-test-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir });

/** A handler that records the order tasks start in (by their input), then sleeps `ms`. */
function recorder(ms = 0): { order: string[]; handler: Handler } {
  const order: string[] = [];
  return {
    order,
    handler: async (input) => {
      order.push(String(input));
      if (ms > 0) await new Promise((r) => setTimeout(r, ms));
      return input;
    },
  };
}

const task = (input: string, queue?: string, priority?: number): Task => ({
  handler: 'rec',
  input,
  ...(queue ? { queue } : {}),
  ...(priority !== undefined ? { priority } : {}),
});

/** What the leader says waits in `queue` (its /master summary), once it says so. */
async function waitsIn(root: string, queue: string, cond: (q: QueueWait) => boolean): Promise<QueueWait> {
  const admin = await farm.admin(root);
  let found: QueueWait | undefined;
  await until(
    async () => {
      const m = await admin.getJson<MasterInfo>(PATHS.master).catch(() => undefined);
      found = m?.value.queue?.queues?.find((q) => q.queue === queue);
      return found !== undefined && cond(found);
    },
    30_000,
    `the leader's summary of queue ${queue}`,
  );
  return found!;
}

test('routing: tasks of a queue run only on workers serving it; a queue nobody serves waits, and says so', async () => {
  const root = await zk.chroot('routing');
  await farm.master(root, 'm1');
  const a = recorder();
  const b = recorder();
  await farm.worker(root, 'wa', { queues: ['a'], handlers: { rec: a.handler } });
  await farm.worker(root, 'wb', { queues: ['b'], handlers: { rec: b.handler } });
  const sub = await farm.submitter(root);
  const nobody = await sub.submitMany(Array.from({ length: 5 }, (_, i) => task(`c${i}`, 'c')));
  const ids = await sub.submitMany([
    ...Array.from({ length: 20 }, (_, i) => task(`a${i}`, 'a')),
    ...Array.from({ length: 20 }, (_, i) => task(`b${i}`, 'b')),
  ]);
  const statuses = await Promise.all(ids.map((id) => sub.waitFor(id, { timeoutMs: 60_000 })));
  for (const [i, s] of statuses.entries())
    assert.equal(s.worker, i < 20 ? 'wa' : 'wb', `task ${ids[i]} ran on the worker serving its queue`);
  assert.ok(
    a.order.every((x) => x.startsWith('a')) && b.order.every((x) => x.startsWith('b')),
    'no task ran on a worker that does not serve its queue',
  );
  const c = await waitsIn(root, 'c', (q) => q.waiting === 5);
  assert.deepEqual(c.blocked, [{ reason: 'no live worker serves queue "c"', tasks: 5 }]);
  const admin = await farm.admin(root);
  for (const id of nobody) assert.equal((await admin.exists(`${PATHS.tasks}/${id}`)) !== null, true);
  // A worker for it comes: they run.
  const cw = recorder();
  await farm.worker(root, 'wc', { queues: ['c'], handlers: { rec: cw.handler } });
  const done = await Promise.all(nobody.map((id) => sub.waitFor(id, { timeoutMs: 60_000 })));
  assert.ok(done.every((s) => s.worker === 'wc' && s.state === 'succeeded'));
});

test('weights: one worker serving a:3 and b takes from both, three of a for one of b', async () => {
  const root = await zk.chroot('weights');
  await farm.master(root, 'm1');
  const sub = await farm.submitter(root);
  const ids = await sub.submitMany([
    ...Array.from({ length: 16 }, (_, i) => task(`a${i}`, 'a')),
    ...Array.from({ length: 16 }, (_, i) => task(`b${i}`, 'b')),
  ]);
  // Every task read before the worker comes, so the leader's choice alone decides the order.
  await waitsIn(root, 'b', (q) => q.waiting === 16);
  const rec = recorder();
  await farm.worker(root, 'w', {
    queues: ['a:3', 'b'],
    capacity: 1,
    prefetch: 0,
    handlers: { rec: rec.handler },
  });
  await Promise.all(ids.map((id) => sub.waitFor(id, { timeoutMs: 60_000 })));
  const first = rec.order.slice(0, 16).map((x) => x[0]);
  assert.equal(first.filter((q) => q === 'a').length, 12, `three of a for one of b: ${first.join('')}`);
  assert.equal(first.filter((q) => q === 'b').length, 4);
  // Within each queue, FIFO.
  for (const q of ['a', 'b'])
    assert.deepEqual(
      rec.order.filter((x) => x[0] === q),
      Array.from({ length: 16 }, (_, i) => `${q}${i}`),
    );
});

test('strict order: a worker serving urgent then bulk takes urgent first while it has tasks', async () => {
  const root = await zk.chroot('strict');
  await farm.master(root, 'm1');
  const sub = await farm.submitter(root);
  const ids = await sub.submitMany([
    ...Array.from({ length: 6 }, (_, i) => task(`b${i}`, 'bulk')),
    ...Array.from({ length: 6 }, (_, i) => task(`u${i}`, 'urgent')),
  ]);
  await waitsIn(root, 'urgent', (q) => q.waiting === 6);
  const rec = recorder();
  await farm.worker(root, 'w', {
    queues: ['urgent', 'bulk'],
    queueOrder: 'strict',
    capacity: 1,
    prefetch: 0,
    handlers: { rec: rec.handler },
  });
  await Promise.all(ids.map((id) => sub.waitFor(id, { timeoutMs: 60_000 })));
  assert.deepEqual(rec.order, [
    ...Array.from({ length: 6 }, (_, i) => `u${i}`),
    ...Array.from({ length: 6 }, (_, i) => `b${i}`),
  ]);
});

test('priorities: with one busy worker, high-priority tasks submitted after low ones run first; equal ones keep FIFO', async () => {
  const root = await zk.chroot('priorities');
  await farm.master(root, 'm1');
  const rec = recorder(400);
  await farm.worker(root, 'w', { capacity: 1, prefetch: 0, handlers: { rec: rec.handler } });
  const sub = await farm.submitter(root);
  const low = await sub.submitMany(Array.from({ length: 5 }, (_, i) => task(`low${i}`)));
  await until(() => rec.order.length > 0, 30_000, 'the first low task running');
  const high = await sub.submitMany([
    task('high0', undefined, 7),
    task('mid0', undefined, 3),
    task('high1', undefined, 7),
  ]);
  await Promise.all([...low, ...high].map((id) => sub.waitFor(id, { timeoutMs: 60_000 })));
  assert.deepEqual(rec.order, ['low0', 'high0', 'high1', 'mid0', 'low1', 'low2', 'low3', 'low4']);
});

test('a bad queue or priority is bad task data: a failed status that says what was wrong', async () => {
  const root = await zk.chroot('bad-queue');
  await farm.master(root, 'm1');
  await farm.worker(root, 'w');
  const admin = await farm.admin(root);
  const sub = await farm.submitter(root);
  // A foreign client skips the submitter's checks: one create of the public contract.
  const made = await admin.create(
    `${PATHS.tasks}/task-`,
    Buffer.from('{"handler":"echo","priority":12}'),
    CreateMode.PERSISTENT_SEQUENTIAL,
  );
  const id = made.slice(made.lastIndexOf('/') + 1);
  const s = await sub.waitFor(id, { timeoutMs: 30_000 });
  assert.equal(s.state, 'failed');
  assert.equal(s.errorCode, 'ZKFARM_INVALID_TASK');
  assert.match(String(s.error), /"priority": must be a whole number from 0 to 9/);
  await assert.rejects(sub.submit({ handler: 'echo', queue: 'no/slash' }), { code: 'ZKFARM_INVALID_TASK' });
});

test('a pause and a concurrency cap hold across a leader that vanished without a word (its session expired)', async () => {
  const root = await zk.chroot('controls-crash');
  const admin = await farm.admin(root);
  const queues = new QueueAdmin(admin);
  await queues.pause('p');
  await queues.update('c', { concurrency: 2 });
  const { proxy, connect } = await farm.proxied(root);
  await farm.master(connect, 'm1');
  await farm.master(root, 'm2');
  let running = 0;
  let most = 0;
  const started: string[] = [];
  let release!: () => void;
  const held = new Promise<void>((r) => {
    release = r;
  });
  const rec: Handler = async (input) => {
    started.push(String(input));
    most = Math.max(most, ++running);
    await held; // the capped queue's first two stay running across the change of leader
    running--;
    return input;
  };
  await farm.worker(root, 'w', { queues: ['p', 'c'], capacity: 8, handlers: { rec } });
  const sub = await farm.submitter(root);
  const paused = await sub.submitMany(Array.from({ length: 4 }, (_, i) => task(`p${i}`, 'p')));
  const capped = await sub.submitMany(Array.from({ length: 10 }, (_, i) => task(`c${i}`, 'c')));
  await until(() => started.length === 2, 30_000, 'two tasks of the capped queue running under m1');
  // m1 is cut off without closing its session: it is gone only when ZooKeeper expires it.
  proxy.blackhole(true);
  await until(
    async () => (await admin.getJson<MasterInfo>(PATHS.master).catch(() => undefined))?.value.name === 'm2',
    30_000,
    'm2 leading once m1 expired',
  );
  // m2 counts m1's two assignments (it did not make them) and says the cap holds the rest.
  await waitsIn(root, 'c', (q) => q.blocked.some((b) => /2 tasks out, its concurrency cap/.test(b.reason)));
  assert.deepEqual(
    started.sort(),
    ['c0', 'c1'],
    'nothing more of the capped queue, nothing of the paused one',
  );
  release();
  await Promise.all(capped.map((id) => sub.waitFor(id, { timeoutMs: 60_000 })));
  assert.ok(most <= 2, `at most 2 of the capped queue ran at once, across the change (${most})`);
  assert.ok(!started.some((x) => x.startsWith('p')), 'nothing of the paused queue started');
  await queues.resume('p');
  await Promise.all(paused.map((id) => sub.waitFor(id, { timeoutMs: 30_000 })));
});
