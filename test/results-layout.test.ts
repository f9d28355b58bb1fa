/**
 * The sharded result layout against a real ZooKeeper: a result is at /status/<bucket>/<task-id>, read
 * with one get by any client; retention sweeps across buckets by finish time and removes empty buckets;
 * a writer whose bucket was removed makes it again.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { encode, PATHS, statusBucketPath, statusPath } from '../src/farm/protocol.js';
import { RetentionSweeper, sweepStatuses } from '../src/farm/retention.js';
import { useCleanups } from './helpers/cleanups.js';
import { useFarm } from './helpers/farm.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();
const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-results-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir });

const status = () =>
  encode({ state: 'succeeded', worker: 'w', attempts: 1, startedAt: 1, finishedAt: Date.now() });

async function put(c: Awaited<ReturnType<typeof farm.admin>>, ids: string[]): Promise<void> {
  for (const id of ids) await c.ensurePath(statusPath(id), status());
}

test('a result is at /status/<six leading digits>/<task-id>: a raw client reads it with one get', async () => {
  const root = await zk.chroot('raw-get');
  await farm.master(root, 'm1');
  await farm.worker(root, 'w1');
  const raw = await zk.rawClient(root);
  // A foreign client: one create to submit, one get to read, the path spelled out by hand.
  const path = await raw.createSequential(`${PATHS.tasks}/task-`, '{"handler":"echo","input":"raw"}');
  const id = path.slice(PATHS.tasks.length + 1);
  const documented = `/status/${id.slice(5, 11)}/${id}`;
  await until(async () => (await raw.exists(documented)) !== null, 30_000, `a result at ${documented}`);
  const { data } = await raw.getData(documented);
  assert.equal(JSON.parse(data.toString()).result, 'raw');
  assert.deepEqual(await raw.getChildren(PATHS.status), [id.slice(5, 11)], '/status holds buckets only');
});

test('retention by count removes the results that finished first across buckets, then empty buckets', async () => {
  const root = await zk.chroot('retention-buckets');
  const c = await farm.admin(root);
  // Finished in this order, across three buckets: ids say nothing about it.
  await put(c, [
    'task-0000020001',
    'task-0000010002',
    'task-0000000003',
    'task-0000020004',
    'task-0000000005',
  ]);
  // One sweeper for every sweep, as the leader keeps it (it remembers each bucket's oldest result).
  const sweeper = new RetentionSweeper(c, { maxCount: 3, minAgeMs: 0 }); // written a moment ago
  assert.equal(await sweeper.sweep(), 2);
  assert.deepEqual((await c.getChildren(statusBucketPath('000000'))).sort(), [
    'task-0000000003',
    'task-0000000005',
  ]);
  assert.deepEqual(await c.getChildren(statusBucketPath('000002')), ['task-0000020004']);
  assert.deepEqual(await c.getChildren(statusBucketPath('000001')), [], 'its only result finished first');
  // The next sweep removes the bucket left empty (not the highest: it is being written).
  assert.equal(await sweeper.sweep(), 0);
  assert.deepEqual((await c.getChildren(PATHS.status)).sort(), ['000000', '000002']);
  // Two more finish: the two oldest left go, whichever bucket they are in.
  await put(c, ['task-0000020006', 'task-0000000007']);
  assert.equal(await sweeper.sweep(), 2);
  assert.deepEqual((await c.getChildren(statusBucketPath('000000'))).sort(), [
    'task-0000000005',
    'task-0000000007',
  ]);
  assert.deepEqual(await c.getChildren(statusBucketPath('000002')), ['task-0000020006']);
});

test('retention by age removes what finished before the cut in every bucket, and keeps the rest', async () => {
  const root = await zk.chroot('retention-age');
  const c = await farm.admin(root);
  await put(c, ['task-0000030001', 'task-0000000002']);
  await sleep(20); // distinct creation times (ms) for the two generations
  await put(c, ['task-0000000003', 'task-0000030004']);
  const young = (await c.exists(statusPath('task-0000000003')))!.ctime;
  const maxAgeMs = 60_000;
  // At this `now` the second generation is just under maxAge old, the first over it.
  assert.equal(await sweepStatuses(c, { maxCount: 100, maxAgeMs }, young - 1 + maxAgeMs), 2);
  assert.deepEqual(await c.getChildren(statusBucketPath('000000')), ['task-0000000003']);
  assert.deepEqual(await c.getChildren(statusBucketPath('000003')), ['task-0000030004']);
});

test('a worker whose bucket was removed (retention, while it knew it) makes it again and records the result', async () => {
  const root = await zk.chroot('bucket-gone');
  await farm.master(root, 'm1');
  await farm.worker(root, 'w1', { capacity: 1 });
  const sub = await farm.submitter(root);
  const c = await farm.admin(root);
  const first = await sub.submit({ handler: 'echo', input: 1 });
  await sub.waitFor(first, { timeoutMs: 30_000 });
  // What retention does to an old bucket: its results go, then the empty bucket.
  await c.remove(statusPath(first));
  await c.remove(statusBucketPath('000000'));
  const second = await sub.submit({ handler: 'echo', input: 2 });
  const s = await sub.waitFor(second, { timeoutMs: 30_000 });
  assert.equal(s.result, 2);
  assert.equal((await c.getChildren(statusBucketPath('000000'))).length, 1);
});
