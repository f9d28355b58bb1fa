/**
 * The deep-queue backlog against a real ZooKeeper: a flood of raw creates whose /tasks listing passes
 * 1 MB, shelved by the leader without stalling; strict priorities and FIFO across inbox and backlog;
 * leader changes in the middle of shelving and of draining, each task ending with exactly one result.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readFarmState } from '../src/cli/farm-state.js';
import type { Handler } from '../src/exec/index.js';
import { SHELVE_HELD_AFTER } from '../src/farm/backlog.js';
import { backlogLanePath, type MasterInfo, PATHS, type Task } from '../src/farm/protocol.js';
import { QueueAdmin } from '../src/farm/queue-admin.js';
import type { QueueWait } from '../src/farm/queue-view.js';
import { allResultIds } from '../src/farm/status-store.js';
import type { ZkClient } from '../src/zk/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { useFarm } from './helpers/farm.js';
import { checkInvariants } from './helpers/invariants.js';
import { locateAll, NEVER_WAS } from './helpers/locator.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();
const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-backlog-test-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir });

/** Tasks in a queue's backlog, every priority, and the largest bucket. */
async function backlogOf(
  c: ZkClient,
  queue: string,
): Promise<{ tasks: number; largest: number; buckets: number }> {
  let tasks = 0;
  let largest = 0;
  let buckets = 0;
  for (let p = 0; p <= 9; p++) {
    const names = await c.getChildren(backlogLanePath(queue, p)).catch(() => [] as string[]);
    for (const b of names) {
      const n = (await c.exists(`${backlogLanePath(queue, p)}/${b}`))?.numChildren ?? 0;
      tasks += n;
      largest = Math.max(largest, n);
      buckets++;
    }
  }
  return { tasks, largest, buckets };
}

const inbox = async (c: ZkClient) => (await c.exists(PATHS.tasks))?.numChildren ?? 0;

/** The leader's published summary of `queue`. */
async function summaryOf(c: ZkClient, queue: string): Promise<QueueWait | undefined> {
  const m = await c.getJson<MasterInfo>(PATHS.master).catch(() => undefined);
  return m?.value.queue?.queues?.find((q) => q.queue === queue);
}

test('a flood of raw creates whose /tasks listing passes 1 MB is shelved without a stall, none lost; the locator finds a shelved task', async () => {
  const root = await zk.chroot('flood');
  const admin = await farm.admin(root);
  await admin.ensurePath(PATHS.tasks);
  // 60,000 names of 15 bytes (+4 of length each) are 1.14 MB: past ZooKeeper's default 1 MB packet.
  const N = 60_000;
  const data = Buffer.from('{"handler":"noop"}');
  for (let i = 0; i < N; i += 10_000) {
    const multis = Array.from({ length: 10 }, () => {
      const tx = admin.transaction();
      for (let j = 0; j < 1000; j++) tx.create(`${PATHS.tasks}/task-`, data, 2);
      return tx.commit();
    });
    await Promise.all(multis);
  }
  assert.equal(await inbox(admin), N);
  // No worker serves `default` yet: its tasks are held back, and the inbox is far from shallow.
  await farm.master(root, 'm1');
  await until(async () => (await inbox(admin)) <= SHELVE_HELD_AFTER, 60_000, 'the leader shelving the flood');
  const b = await backlogOf(admin, 'default');
  assert.equal(b.tasks + (await inbox(admin)), N, 'every task is in /tasks or in the backlog, once');
  assert.ok(b.largest <= 10_000, `no bucket over 10,000 tasks (largest ${b.largest})`);
  await until(
    async () => (await summaryOf(admin, 'default'))?.backlog === b.tasks,
    30_000,
    'the leader publishing the backlog',
  );
  const s = (await summaryOf(admin, 'default'))!;
  assert.ok(s.waiting >= b.tasks, 'the backlog counts as waiting');
  assert.ok(s.blocked.some((x) => /no live worker serves/.test(x.reason)));
  // `runtime status` counts shelved tasks as queued (they are: only somewhere else).
  const state = await readFarmState(admin);
  assert.equal(state.backlog, b.tasks);
  assert.equal(state.queued, N, 'every task counts as queued, inbox and backlog');
  // A waiter's locator finds a shelved task (and not a task that never was).
  // More than a few: the locator lists where they could be (the backlog's buckets among them).
  const shelved = (await admin.getChildren(`${backlogLanePath('default', 0)}/000000`)).slice(0, 40);
  const { nowhere } = await locateAll(admin, shelved, cleanups);
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(nowhere, [NEVER_WAS]);
});

test('strict priorities and FIFO hold across inbox and backlog; buckets go once empty; each task one result', async () => {
  const root = await zk.chroot('order');
  const admin = await farm.admin(root);
  const queues = new QueueAdmin(admin);
  await queues.pause('q');
  await farm.master(root, 'm1');
  const sub = await farm.submitter(root);
  const prio = (i: number) => [0, 5, 9][i % 3]!;
  const task = (i: number): Task => ({ handler: 'rec', input: i, queue: 'q', priority: prio(i) });
  const first = await sub.submitMany(Array.from({ length: SHELVE_HELD_AFTER + 300 }, (_, i) => task(i)));
  await until(async () => (await backlogOf(admin, 'q')).tasks > 0, 30_000, 'a paused deep queue shelved');
  await until(
    async () => (await inbox(admin)) <= SHELVE_HELD_AFTER,
    30_000,
    'the inbox drained into the backlog',
  );
  // More after: these stay in the inbox (it is shallow), and older backlog tasks must still go first.
  const more = await sub.submitMany(Array.from({ length: 90 }, (_, i) => task(first.length + i)));
  const ids = [...first, ...more];
  const order: number[] = [];
  const rec: Handler = async (input) => {
    order.push(Number(input));
    return input;
  };
  await farm.worker(root, 'w', { queues: ['q'], capacity: 1, handlers: { rec } });
  await queues.resume('q');
  await Promise.all(ids.map((id) => sub.waitFor(id, { timeoutMs: 120_000 })));
  const expected = ids
    .map((id, i) => ({ id, i }))
    .sort((a, b) => prio(b.i) - prio(a.i) || (a.id < b.id ? -1 : 1))
    .map((t) => t.i);
  assert.deepEqual(order, expected, 'highest priority first, lowest id first within one');
  assert.equal((await backlogOf(admin, 'q')).buckets, 0, 'every bucket removed once empty');
  const results = new Set(await allResultIds(admin));
  assert.ok(ids.every((id) => results.has(id)));
});

test('leader changes while shelving and while draining lose and duplicate nothing', async () => {
  const root = await zk.chroot('failover');
  const admin = await farm.admin(root);
  const queues = new QueueAdmin(admin);
  await queues.pause('default');
  const m1 = await farm.master(root, 'm1');
  const m2 = await farm.master(root, 'm2');
  await farm.master(root, 'm3');
  const sub = await farm.submitter(root);
  const ids = await sub.submitMany(Array.from({ length: 6000 }, (_, i) => ({ handler: 'noop', input: i })));
  await until(async () => (await backlogOf(admin, 'default')).tasks > 0, 30_000, 'shelving under way');
  await m1.stop();
  await until(
    async () => (await inbox(admin)) <= SHELVE_HELD_AFTER,
    30_000,
    'the next leader shelving the rest',
  );
  for (const w of ['w1', 'w2']) await farm.worker(root, w, { capacity: 8 });
  await queues.resume('default');
  await until(async () => (await allResultIds(admin)).length >= 1500, 60_000, 'draining under way');
  await m2.stop();
  await Promise.all(ids.map((id) => sub.waitFor(id, { timeoutMs: 120_000 })));
  const report = await checkInvariants(admin, ids, { runs: farm.runs(root) });
  assert.ok(report.ok, report.problems.join('; '));
  assert.equal((await allResultIds(admin)).length, ids.length, 'exactly one result per task');
  assert.equal((await backlogOf(admin, 'default')).tasks, 0);
});
